#include "lvkeeper/sys/process_runner.hpp"

#include "lvkeeper/sys/unique_fd.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>

namespace lvkeeper::sys
{

namespace
{

// A runaway command must not eat the daemon's memory; LVM output is a few KiB.
constexpr std::size_t maxCapture = std::size_t{16} * 1024 * 1024;

std::system_error sysError(int error, const std::string& what)
{
    return std::system_error(error, std::generic_category(), what);
}

// The child's dup2 onto 0..2 must never find a pipe end already sitting there.
int aboveStdio(int fd)
{
    if (fd > STDERR_FILENO)
    {
        return fd;
    }
    int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    int error = errno;
    ::close(fd);
    if (moved < 0)
    {
        throw sysError(error, "fcntl F_DUPFD_CLOEXEC");
    }
    return moved;
}

std::pair<UniqueFd, UniqueFd> makePipe()
{
    std::array<int, 2> fds{};
    if (::pipe2(fds.data(), O_CLOEXEC) < 0)
    {
        throw sysError(errno, "pipe2");
    }
    UniqueFd readEnd(fds[0]);
    UniqueFd writeEnd(fds[1]);
    readEnd = UniqueFd(aboveStdio(readEnd.release()));
    writeEnd = UniqueFd(aboveStdio(writeEnd.release()));
    return {std::move(readEnd), std::move(writeEnd)};
}

[[noreturn]] void failChild(int statusFd, int error)
{
    // The parent blocks on this pipe until exec closes it or this errno arrives.
    [[maybe_unused]] auto n = ::write(statusFd, &error, sizeof error);
    ::_exit(127);
}

// ioprio_set(2) has no glibc wrapper; the values are the kernel's ABI (linux/ioprio.h).
constexpr int ioprioWhoProcess = 1;
constexpr int ioprioClassBestEffort = 2;
constexpr int ioprioClassShift = 13;

// Runs between fork and exec: async-signal-safe calls only, no allocation.
[[noreturn]] void execChild(char* const* argv, int outFd, int errFd, int statusFd, bool background)
{
    // Its own group: a timeout's SIGTERM reaches the helpers the command forks too.
    ::setpgid(0, 0);

    if (background)
    {
        // Raising the nice value needs no privilege; the daemon's -10 stays for the grows.
        ::setpriority(PRIO_PROCESS, 0, 0);
        ::syscall(SYS_ioprio_set, ioprioWhoProcess, 0, (ioprioClassBestEffort << ioprioClassShift) | 4);
    }

    // The daemon blocks SIGCHLD and may ignore SIGPIPE; tools expect neither.
    struct sigaction dfl
    {
    };
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig)
    {
        if (sig != SIGKILL && sig != SIGSTOP)
        {
            ::sigaction(sig, &dfl, nullptr);
        }
    }
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);

    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0)
    {
        failChild(statusFd, errno);
    }
    if (::dup2(null, STDIN_FILENO) < 0 || ::dup2(outFd, STDOUT_FILENO) < 0 || ::dup2(errFd, STDERR_FILENO) < 0)
    {
        failChild(statusFd, errno);
    }
    // Descriptors someone opened without O_CLOEXEC must not leak into LVM (it warns about each).
    ::close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC);

    ::execvp(argv[0], argv);
    failChild(statusFd, errno);
}

std::string joinArgv(const std::vector<std::string>& argv)
{
    std::string text;
    for (const auto& arg : argv)
    {
        if (!text.empty())
        {
            text += ' ';
        }
        text += arg;
    }
    return text;
}

} // namespace

struct ProcessRunner::Child
{
    ProcessRunner* runner = nullptr;
    pid_t pid = -1;
    CommandResult result;
    Done done;
    std::chrono::steady_clock::time_point started;
    UniqueFd out;
    UniqueFd err;
    sd_event_source* outSource = nullptr;
    sd_event_source* errSource = nullptr;
    sd_event_source* exitSource = nullptr;
    sd_event_source* timerSource = nullptr;
    sd_event_source* deferSource = nullptr;

    Child() = default;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    ~Child()
    {
        // Unref the exit source first: sd-event must not reap a child we still kill and wait for below.
        sd_event_source_disable_unref(exitSource);
        sd_event_source_disable_unref(outSource);
        sd_event_source_disable_unref(errSource);
        sd_event_source_disable_unref(timerSource);
        sd_event_source_disable_unref(deferSource);
    }

    /// Reads what the pipe has now; true at EOF (or a read error, which ends the stream too).
    static bool drain(int fd, std::string& into)
    {
        std::array<char, 65536> buffer{};
        for (;;)
        {
            ssize_t n = ::read(fd, buffer.data(), buffer.size());
            if (n > 0)
            {
                auto room = maxCapture - std::min(maxCapture, into.size());
                into.append(buffer.data(), std::min(room, static_cast<std::size_t>(n)));
                continue;
            }
            if (n == 0)
            {
                return true;
            }
            if (errno == EINTR)
            {
                continue;
            }
            return errno != EAGAIN;
        }
    }

    void closeStream(sd_event_source*& source, UniqueFd& fd)
    {
        source = sd_event_source_disable_unref(source);
        fd.reset();
    }

    static int onOutput(sd_event_source* /*source*/, int fd, std::uint32_t /*revents*/, void* userdata)
    {
        auto* child = static_cast<Child*>(userdata);
        if (fd == child->out.get())
        {
            if (drain(fd, child->result.out))
            {
                child->closeStream(child->outSource, child->out);
            }
        }
        else if (drain(fd, child->result.err))
        {
            child->closeStream(child->errSource, child->err);
        }
        return 0;
    }

    static int onExit(sd_event_source* /*source*/, const siginfo_t* info, void* userdata)
    {
        auto* child = static_cast<Child*>(userdata);
        if (info->si_code == CLD_EXITED)
        {
            child->result.exitCode = info->si_status;
        }
        else
        {
            child->result.exitCode = -1;
            child->result.termSignal = info->si_status;
        }
        // Everything the child wrote is in the pipes now. Whatever a grandchild still holding
        // them writes later is not waited for: that could take forever.
        if (child->out)
        {
            drain(child->out.get(), child->result.out);
        }
        if (child->err)
        {
            drain(child->err.get(), child->result.err);
        }
        child->runner->finish(child);
        return 0;
    }

    static int onTimeout(sd_event_source* /*source*/, std::uint64_t /*usec*/, void* userdata)
    {
        auto* child = static_cast<Child*>(userdata);
        child->result.timedOut = true;
        // Never SIGKILL: an lvm command killed between suspend and resume leaves the LV suspended and every
        // write to it hanging. SIGTERM is deferred by lvm past its critical sections; then it is waited for.
        spdlog::warn("event=command-timeout cmd=\"{}\" pid={} action=sigterm", joinArgv(child->result.argv),
                     child->pid);
        ::kill(-child->pid, SIGTERM);
        return 0;
    }

    static int onDeferredFailure(sd_event_source* /*source*/, void* userdata)
    {
        auto* child = static_cast<Child*>(userdata);
        child->runner->finish(child);
        return 0;
    }

    void spawn(sd_event* event, const CommandOptions& options)
    {
        auto [outRead, outWrite] = makePipe();
        auto [errRead, errWrite] = makePipe();
        auto [statusRead, statusWrite] = makePipe();

        std::vector<char*> cargv;
        cargv.reserve(result.argv.size() + 1);
        for (auto& arg : result.argv)
        {
            cargv.push_back(arg.data());
        }
        cargv.push_back(nullptr);

        pid = ::fork();
        if (pid < 0)
        {
            throw sysError(errno, "fork");
        }
        if (pid == 0)
        {
            execChild(cargv.data(), outWrite.get(), errWrite.get(), statusWrite.get(), options.background);
        }

        outWrite.reset();
        errWrite.reset();
        statusWrite.reset();

        int execError = 0;
        ssize_t n = 0;
        do
        {
            n = ::read(statusRead.get(), &execError, sizeof execError);
        } while (n < 0 && errno == EINTR);
        if (n == static_cast<ssize_t>(sizeof execError))
        {
            // The child still exits (127) and is reaped through the exit source like any other.
            result.spawnFailed = true;
            result.err = std::strerror(execError);
        }

        int r = sd_event_add_child(event, &exitSource, pid, WEXITED, onExit, this);
        if (r < 0)
        {
            // Without a watcher nobody would reap it: ask it to stop (never SIGKILL) and wait here.
            terminateAndReap();
            throw sysError(-r, "sd_event_add_child (is SIGCHLD blocked?)");
        }
        sd_event_source_set_description(exitSource, "command-exit");

        for (auto* fd : {&outRead, &errRead})
        {
            if (::fcntl(fd->get(), F_SETFL, O_NONBLOCK) < 0)
            {
                throw sysError(errno, "fcntl O_NONBLOCK");
            }
        }
        out = std::move(outRead);
        err = std::move(errRead);
        r = sd_event_add_io(event, &outSource, out.get(), EPOLLIN, onOutput, this);
        if (r >= 0)
        {
            r = sd_event_add_io(event, &errSource, err.get(), EPOLLIN, onOutput, this);
        }
        if (r < 0)
        {
            throw sysError(-r, "sd_event_add_io");
        }
        sd_event_source_set_description(outSource, "command-stdout");
        sd_event_source_set_description(errSource, "command-stderr");

        if (options.timeout.count() > 0 && !result.spawnFailed)
        {
            auto usec = static_cast<std::uint64_t>(std::chrono::microseconds(options.timeout).count());
            r = sd_event_add_time_relative(event, &timerSource, CLOCK_MONOTONIC, usec, 1000, onTimeout, this);
            if (r < 0)
            {
                throw sysError(-r, "sd_event_add_time_relative");
            }
            sd_event_source_set_description(timerSource, "command-timeout");
        }
    }

    /// Only for a child the loop cannot watch (a failed set-up right after fork): SIGTERM, then a blocking wait.
    void terminateAndReap()
    {
        if (pid <= 0)
        {
            return;
        }
        ::kill(-pid, SIGTERM);
        ::kill(pid, SIGTERM);
        while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR)
        {
        }
        pid = -1;
    }
};

ProcessRunner::ProcessRunner(sd_event* event) : event_(sd_event_ref(event)) {}

ProcessRunner::~ProcessRunner()
{
    for (auto& child : children_)
    {
        // The keeper lets running commands end before it stops; one still here (the stop timed out) is left
        // to finish on its own, never killed: the service manager's KillMode=process leaves it be as well.
        if (child->pid > 0)
        {
            spdlog::warn("event=command-left-running cmd=\"{}\" pid={} reason=shutdown", joinArgv(child->result.argv),
                         child->pid);
        }
        sd_event_source_disable_unref(std::exchange(child->exitSource, nullptr));
        child->pid = -1;
    }
    children_.clear();
    sd_event_unref(event_);
}

void ProcessRunner::run(std::vector<std::string> argv, CommandOptions options, Done done)
{
    auto child = std::make_unique<Child>();
    child->runner = this;
    child->result.argv = std::move(argv);
    child->done = std::move(done);
    child->started = std::chrono::steady_clock::now();

    std::string failure;
    if (child->result.argv.empty() || child->result.argv.front().empty())
    {
        failure = "empty command line";
    }
    else
    {
        try
        {
            child->spawn(event_, options);
        }
        catch (const std::system_error& e)
        {
            failure = e.what();
        }
    }

    if (!failure.empty())
    {
        // The caller gets the failure like any other result, from the loop, never from inside run().
        sd_event_source_disable_unref(std::exchange(child->exitSource, nullptr));
        child->terminateAndReap();
        child->result.spawnFailed = true;
        child->result.exitCode = 127;
        child->result.err = failure;
        int r = sd_event_add_defer(event_, &child->deferSource, Child::onDeferredFailure, child.get());
        if (r < 0)
        {
            throw std::system_error(-r, std::generic_category(), "sd_event_add_defer");
        }
    }
    else if (child->result.spawnFailed)
    {
        child->result.exitCode = 127;
    }
    else
    {
        spdlog::debug("event=command-start cmd=\"{}\" pid={}", joinArgv(child->result.argv), child->pid);
    }
    children_.push_back(std::move(child));
}

void ProcessRunner::finish(Child* child)
{
    auto it = std::find_if(children_.begin(), children_.end(),
                           [child](const auto& c)
                           {
                               return c.get() == child;
                           });
    if (it == children_.end())
    {
        return;
    }
    std::unique_ptr<Child> owned = std::move(*it);
    children_.erase(it);

    CommandResult result = std::move(owned->result);
    Done done = std::move(owned->done);
    result.duration =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - owned->started);
    if (result.spawnFailed)
    {
        // 127 is also what a command may return itself; only spawnFailed says exec never happened.
        result.exitCode = 127;
    }
    // sd-event reaps the pid after this callback returns; the child must not try to.
    owned->pid = -1;
    owned.reset();

    if (result.ok())
    {
        spdlog::debug("event=command-done cmd=\"{}\" duration_ms={}", joinArgv(result.argv), result.duration.count());
    }
    else
    {
        spdlog::debug("event=command-failed cmd=\"{}\" result=\"{}\" duration_ms={}", joinArgv(result.argv),
                      result.describe(), result.duration.count());
    }

    // Last thing: done may run another command or even destroy this runner.
    if (done)
    {
        try
        {
            done(result);
        }
        catch (const std::exception& e)
        {
            spdlog::error("event=command-callback-threw cmd=\"{}\" error=\"{}\"", joinArgv(result.argv), e.what());
        }
    }
}

} // namespace lvkeeper::sys

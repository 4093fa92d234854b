#pragma once

// Shared pieces of the host tests: a real sd-event loop, temp dirs, and a loop-mounted ext4.

#include "lvkeeper/sys/linux.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace lvkeeper::test
{

/// sd_event_add_child needs SIGCHLD blocked, before any thread exists so all inherit it.
inline void blockSigchld()
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, nullptr);
}

/// A private sd-event loop the test drives by hand.
class EventLoop
{
  public:
    EventLoop()
    {
        blockSigchld();
        int r = sd_event_new(&event_);
        if (r < 0)
        {
            throw std::system_error(-r, std::generic_category(), "sd_event_new");
        }
    }
    ~EventLoop()
    {
        sd_event_unref(event_);
    }
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    /// The loop, for the classes under test.
    sd_event* get() const
    {
        return event_;
    }

    /// Runs the loop until done() holds or timeout passes; returns done().
    bool runUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout)
    {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done())
        {
            auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline -
                                                                              std::chrono::steady_clock::now());
            if (left.count() <= 0)
            {
                return done();
            }
            int r = sd_event_run(event_, static_cast<std::uint64_t>(left.count()));
            if (r < 0)
            {
                throw std::system_error(-r, std::generic_category(), "sd_event_run");
            }
        }
        return true;
    }

    /// Runs the loop for a while, whatever happens.
    void runFor(std::chrono::milliseconds duration)
    {
        runUntil([] { return false; }, duration);
    }

  private:
    sd_event* event_ = nullptr;
};

/// A fresh directory under /tmp, removed with everything in it.
class TempDir
{
  public:
    TempDir()
    {
        std::string pattern = "/tmp/lvkeeper-test-XXXXXX";
        if (::mkdtemp(pattern.data()) == nullptr)
        {
            throw std::system_error(errno, std::generic_category(), "mkdtemp");
        }
        path_ = pattern;
    }
    ~TempDir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    /// Its absolute path.
    const std::string& path() const
    {
        return path_;
    }
    /// A path inside it.
    std::string operator/(const std::string& name) const
    {
        return path_ + "/" + name;
    }

  private:
    std::string path_;
};

/// Runs argv (never a shell) to completion, output to /dev/null; returns the exit status or -signal.
inline int runProgram(const std::vector<std::string>& argv)
{
    std::vector<char*> cargv;
    for (const auto& arg : argv)
    {
        cargv.push_back(const_cast<char*>(arg.c_str()));
    }
    cargv.push_back(nullptr);
    // Built before fork: the child may only make async-signal-safe calls.
    std::vector<std::string> fallbacks = {"/usr/sbin/" + argv[0], "/sbin/" + argv[0]};

    pid_t pid = ::fork();
    if (pid < 0)
    {
        throw std::system_error(errno, std::generic_category(), "fork");
    }
    if (pid == 0)
    {
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDOUT_FILENO);
        ::execvp(cargv[0], cargv.data());
        for (const auto& path : fallbacks)
        {
            ::execv(path.c_str(), cargv.data());
        }
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
    {
        if (errno != EINTR)
        {
            throw std::system_error(errno, std::generic_category(), "waitpid");
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

/// An ext4 in a fresh image on a loop device, mounted on a temp dir; all undone on destruction.
class LoopExt4
{
  public:
    explicit LoopExt4(std::uint64_t size = 64ULL * 1024 * 1024)
    {
        image_ = dir_ / "disk.img";
        mountPoint_ = dir_ / "mnt";
        try
        {
            disks_.createImage(image_, size);
            device_ = disks_.attachLoop(image_);
            if (runProgram({"mkfs.ext4", "-q", "-F", "-E", "nodiscard", device_}) != 0)
            {
                throw std::runtime_error("mkfs.ext4 " + device_ + " failed");
            }
            if (::mkdir(mountPoint_.c_str(), 0755) < 0)
            {
                throw std::system_error(errno, std::generic_category(), "mkdir " + mountPoint_);
            }
            if (::mount(device_.c_str(), mountPoint_.c_str(), "ext4", 0, nullptr) < 0)
            {
                throw std::system_error(errno, std::generic_category(), "mount " + device_);
            }
            mounted_ = true;
        }
        catch (...)
        {
            cleanup();
            throw;
        }
    }
    ~LoopExt4()
    {
        cleanup();
    }
    LoopExt4(const LoopExt4&) = delete;
    LoopExt4& operator=(const LoopExt4&) = delete;

    /// /dev/loopN.
    const std::string& device() const
    {
        return device_;
    }
    /// Where it is mounted.
    const std::string& mountPoint() const
    {
        return mountPoint_;
    }
    /// The backing file.
    const std::string& image() const
    {
        return image_;
    }
    /// A path inside the mounted filesystem.
    std::string operator/(const std::string& name) const
    {
        return mountPoint_ + "/" + name;
    }

  private:
    void cleanup()
    {
        if (mounted_)
        {
            // Some test may still hold a file open there: detach lazily rather than leak the mount.
            if (::umount2(mountPoint_.c_str(), 0) < 0)
            {
                ::umount2(mountPoint_.c_str(), MNT_DETACH);
            }
            mounted_ = false;
        }
        if (!device_.empty())
        {
            try
            {
                disks_.detachLoop(device_);
            }
            catch (const std::exception&)
            {
            }
            device_.clear();
        }
    }

    sys::LinuxDisks disks_;
    TempDir dir_;
    std::string image_;
    std::string mountPoint_;
    std::string device_;
    bool mounted_ = false;
};

/// Whether the host tests can run at all (they need root).
inline bool isRoot()
{
    return ::geteuid() == 0;
}

} // namespace lvkeeper::test

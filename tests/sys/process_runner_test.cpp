// ProcessRunner and EventScheduler on a real sd-event loop. No shells: only plain tools.

#include "fixture.hpp"

#include "lvkeeper/sys/event_scheduler.hpp"
#include "lvkeeper/sys/logging.hpp"
#include "lvkeeper/sys/process_runner.hpp"

#include <sys/resource.h>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <optional>

using namespace std::chrono_literals;
using lvkeeper::CommandResult;
using lvkeeper::sys::EventScheduler;
using lvkeeper::sys::ProcessRunner;
using lvkeeper::test::EventLoop;
using lvkeeper::test::TempDir;

namespace
{

/// Milliseconds as a plain number, so gtest prints failures readably.
template <typename Duration>
long long ms(Duration d)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

class ProcessRunnerTest : public ::testing::Test
{
  protected:
    /// Runs one command and waits (up to wait) for its result.
    std::optional<CommandResult> runOne(std::vector<std::string> argv, std::chrono::milliseconds timeout = 10s,
                                        std::chrono::milliseconds wait = 10s)
    {
        std::optional<CommandResult> result;
        runner.run(std::move(argv), timeout, [&](const CommandResult& r) { result = r; });
        loop.runUntil([&] { return result.has_value(); }, wait);
        return result;
    }

    EventLoop loop;
    ProcessRunner runner{loop.get()};
};

TEST_F(ProcessRunnerTest, TrueExitsZero)
{
    auto result = runOne({"true"});
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->ok());
    EXPECT_EQ(result->exitCode, 0);
    EXPECT_EQ(result->termSignal, 0);
    EXPECT_FALSE(result->timedOut);
    EXPECT_FALSE(result->spawnFailed);
    EXPECT_EQ(result->argv, std::vector<std::string>{"true"});
    EXPECT_LT(ms(result->duration), 5000);
}

TEST_F(ProcessRunnerTest, FalseExitsOne)
{
    auto result = runOne({"/bin/false"});
    ASSERT_TRUE(result);
    EXPECT_FALSE(result->ok());
    EXPECT_EQ(result->exitCode, 1);
    EXPECT_EQ(result->describe(), "false exited 1");
}

TEST_F(ProcessRunnerTest, CapturesStdout)
{
    auto result = runOne({"/bin/echo", "hello", "world"});
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->ok());
    EXPECT_EQ(result->out, "hello world\n");
    EXPECT_EQ(result->err, "");
}

TEST_F(ProcessRunnerTest, CapturesStdoutAndStderrSeparately)
{
    TempDir dir;
    std::ofstream(dir / "present") << "some content\n";
    auto result = runOne({"cat", dir / "present", dir / "absent"});
    ASSERT_TRUE(result);
    EXPECT_EQ(result->exitCode, 1);
    EXPECT_EQ(result->out, "some content\n");
    EXPECT_NE(result->err.find("No such file or directory"), std::string::npos) << result->err;
    EXPECT_EQ(result->describe(), "cat exited 1: cat: " + (dir / "absent") + ": No such file or directory");
}

TEST_F(ProcessRunnerTest, StdinIsDevNull)
{
    // cat with no arguments copies stdin: it must see EOF at once, not hang on the daemon's stdin.
    auto result = runOne({"cat"}, 5s, 5s);
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->ok());
    EXPECT_EQ(result->out, "");
}

TEST_F(ProcessRunnerTest, TimeoutSendsSigtermNotSigkill)
{
    auto start = std::chrono::steady_clock::now();
    auto result = runOne({"sleep", "10"}, 200ms, 3s);
    auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->timedOut);
    EXPECT_FALSE(result->ok());
    EXPECT_EQ(result->termSignal, SIGTERM);
    EXPECT_EQ(result->exitCode, -1);
    EXPECT_GE(ms(result->duration), 200);
    EXPECT_LT(ms(elapsed), 1000);
    EXPECT_EQ(result->describe().rfind("sleep timed out after ", 0), 0u) << result->describe();
}

TEST_F(ProcessRunnerTest, ACommandThatDefersSigtermIsWaitedForAndItsWorkCounts)
{
    // As lvm does in its critical sections: SIGTERM is held off until the work is done. The timeout leaves
    // python time to start and ignore it first.
    auto result = runOne({"/usr/bin/python3", "-S", "-c",
                          "import signal, time\n"
                          "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                          "time.sleep(1.6)\n"
                          "print('finished')\n"},
                         1000ms, 5s);
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->timedOut);
    EXPECT_EQ(result->termSignal, 0);
    EXPECT_EQ(result->exitCode, 0);
    EXPECT_TRUE(result->ok()) << "it did its work: " << result->describe();
    EXPECT_EQ(result->out, "finished\n");
    EXPECT_GE(ms(result->duration), 1600);
}

TEST_F(ProcessRunnerTest, BackgroundCommandsRunAtNormalPriority)
{
    // The daemon runs at Nice=-10 so its grows win the CPU; a scan any caller can ask for must not.
    errno = 0;
    int before = ::getpriority(PRIO_PROCESS, 0);
    ASSERT_EQ(errno, 0);
    ASSERT_EQ(::setpriority(PRIO_PROCESS, 0, -5), 0) << "needs root";
    std::optional<CommandResult> urgent;
    std::optional<CommandResult> background;
    runner.run({"nice"}, 5s, [&](const CommandResult& r) { urgent = r; });
    runner.run({"nice"}, lvkeeper::CommandOptions(5s, true), [&](const CommandResult& r) { background = r; });
    loop.runUntil([&] { return urgent && background; }, 5s);
    ::setpriority(PRIO_PROCESS, 0, before);
    ASSERT_TRUE(urgent && background);
    EXPECT_EQ(urgent->out, "-5\n");
    EXPECT_EQ(background->out, "0\n");
}

TEST_F(ProcessRunnerTest, MissingBinaryIsSpawnFailure)
{
    auto result = runOne({"/nonexistent/lvkeeper-no-such-tool", "--version"});
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->spawnFailed);
    EXPECT_FALSE(result->ok());
    EXPECT_EQ(result->exitCode, 127);
    EXPECT_EQ(result->err, "No such file or directory");
    EXPECT_EQ(result->describe(), "lvkeeper-no-such-tool could not start: No such file or directory");
}

TEST_F(ProcessRunnerTest, MissingBinaryInPathIsSpawnFailure)
{
    auto result = runOne({"lvkeeper-no-such-tool"});
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->spawnFailed);
    EXPECT_EQ(result->exitCode, 127);
}

TEST_F(ProcessRunnerTest, EmptyArgvIsSpawnFailureFromTheLoop)
{
    bool called = false;
    CommandResult got;
    runner.run({}, 1s, [&](const CommandResult& r) {
        called = true;
        got = r;
    });
    // Never from inside run(): callers may still be setting up when it returns.
    EXPECT_FALSE(called);
    ASSERT_TRUE(loop.runUntil([&] { return called; }, 1s));
    EXPECT_TRUE(got.spawnFailed);
}

TEST_F(ProcessRunnerTest, RunsConcurrently)
{
    std::optional<CommandResult> first;
    std::optional<CommandResult> second;
    auto start = std::chrono::steady_clock::now();
    runner.run({"sleep", "0.3"}, 5s, [&](const CommandResult& r) { first = r; });
    runner.run({"/bin/echo", "second"}, 5s, [&](const CommandResult& r) { second = r; });
    ASSERT_TRUE(loop.runUntil([&] { return first && second; }, 5s));
    auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_TRUE(first->ok());
    EXPECT_EQ(second->out, "second\n");
    EXPECT_LT(ms(elapsed), 1000);

    // Two sleeps side by side take as long as one; one after the other would take 1000 ms.
    first.reset();
    second.reset();
    start = std::chrono::steady_clock::now();
    runner.run({"sleep", "0.5"}, 5s, [&](const CommandResult& r) { first = r; });
    runner.run({"sleep", "0.5"}, 5s, [&](const CommandResult& r) { second = r; });
    ASSERT_TRUE(loop.runUntil([&] { return first && second; }, 5s));
    EXPECT_LT(ms(std::chrono::steady_clock::now() - start), 900);
}

TEST_F(ProcessRunnerTest, LargeOutputCapturedFully)
{
    auto result = runOne({"head", "-c", "1000000", "/dev/zero"});
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->ok());
    EXPECT_EQ(result->out.size(), 1000000u);
    EXPECT_EQ(result->out.find_first_not_of('\0'), std::string::npos);
}

TEST_F(ProcessRunnerTest, GrandchildHoldingThePipeDoesNotHang)
{
    // setsid -f forks sleep into its own session and exits at once; sleep keeps our stdout pipe.
    auto start = std::chrono::steady_clock::now();
    auto result = runOne({"setsid", "-f", "sleep", "3"}, 10s, 2s);
    ASSERT_TRUE(result);
    EXPECT_TRUE(result->ok());
    EXPECT_LT(ms(std::chrono::steady_clock::now() - start), 1000);
}

TEST_F(ProcessRunnerTest, DoneMayStartAnotherCommand)
{
    std::optional<CommandResult> second;
    runner.run({"true"}, 5s, [&](const CommandResult&) {
        runner.run({"/bin/echo", "chained"}, 5s, [&](const CommandResult& r) { second = r; });
    });
    ASSERT_TRUE(loop.runUntil([&] { return second.has_value(); }, 5s));
    EXPECT_EQ(second->out, "chained\n");
}

TEST(ProcessRunnerLifetime, DestroyingWithChildrenRunningLeavesThemRunningWithoutCallbacks)
{
    EventLoop loop;
    bool called = false;
    {
        ProcessRunner runner(loop.get());
        runner.run({"sleep", "0.5"}, 30s, [&](const CommandResult&) { called = true; });
        loop.runFor(50ms);
        EXPECT_EQ(runner.running(), 1u);
    }
    loop.runFor(100ms);
    EXPECT_FALSE(called);
    // Not killed: still running, and it ends on its own with its own status.
    int status = 0;
    EXPECT_EQ(::waitpid(-1, &status, WNOHANG), 0);
    pid_t pid = ::waitpid(-1, &status, 0);
    EXPECT_GT(pid, 0);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ProcessRunnerLifetime, DoneMayDestroyTheRunner)
{
    EventLoop loop;
    auto runner = std::make_unique<ProcessRunner>(loop.get());
    bool otherCalled = false;
    bool called = false;
    runner->run({"sleep", "10"}, 30s, [&](const CommandResult&) { otherCalled = true; });
    runner->run({"true"}, 5s, [&](const CommandResult&) {
        called = true;
        runner.reset();
    });
    ASSERT_TRUE(loop.runUntil([&] { return called; }, 5s));
    loop.runFor(50ms);
    EXPECT_FALSE(otherCalled);
    EXPECT_EQ(runner, nullptr);
}

TEST(CommandResultDescribe, Forms)
{
    CommandResult r;
    r.argv = {"/sbin/lvextend", "-L", "+1G", "vg0/data0"};
    r.exitCode = 5;
    r.err = "  WARNING: something minor\n  Insufficient free space: 256 extents needed, but only 10 available\n\n";
    EXPECT_EQ(r.describe(), "lvextend exited 5: Insufficient free space: 256 extents needed, but only 10 available");

    r.err.clear();
    EXPECT_EQ(r.describe(), "lvextend exited 5");

    r.exitCode = -1;
    r.termSignal = 9;
    EXPECT_EQ(r.describe(), "lvextend killed by signal 9");

    r.timedOut = true;
    r.duration = 30000ms;
    EXPECT_EQ(r.describe(), "lvextend timed out after 30s");
    r.duration = 1500ms;
    EXPECT_EQ(r.describe(), "lvextend timed out after 1.5s");

    CommandResult missing;
    missing.argv = {"pvmove"};
    missing.spawnFailed = true;
    missing.exitCode = 127;
    missing.err = "No such file or directory";
    EXPECT_EQ(missing.describe(), "pvmove could not start: No such file or directory");
}

class EventSchedulerTest : public ::testing::Test
{
  protected:
    EventLoop loop;
    EventScheduler scheduler{loop.get()};
};

TEST_F(EventSchedulerTest, NowIsMonotonicAndAdvances)
{
    auto before = scheduler.now();
    auto steady = std::chrono::steady_clock::now();
    EXPECT_LT(ms(std::chrono::abs(before - steady)), 1000);
    loop.runFor(30ms);
    EXPECT_GE(ms(scheduler.now() - before), 20);
}

TEST_F(EventSchedulerTest, AfterFiresOnceAfterTheDelay)
{
    int fired = 0;
    auto start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::duration at{};
    auto timer = scheduler.after(50ms, [&] {
        ++fired;
        at = std::chrono::steady_clock::now() - start;
    });
    ASSERT_TRUE(loop.runUntil([&] { return fired > 0; }, 1s));
    EXPECT_GE(ms(at), 50);
    EXPECT_LT(ms(at), 500);
    loop.runFor(100ms);
    EXPECT_EQ(fired, 1);
}

TEST_F(EventSchedulerTest, DestroyedTimerNeverFires)
{
    bool fired = false;
    auto timer = scheduler.after(20ms, [&] { fired = true; });
    timer.reset();
    loop.runFor(80ms);
    EXPECT_FALSE(fired);
}

TEST_F(EventSchedulerTest, CallbackMayDestroyItsOwnTimer)
{
    std::unique_ptr<lvkeeper::Timer> timer;
    int fired = 0;
    std::string captured = "a capture that lives in the callback";
    timer = scheduler.after(10ms, [&, captured] {
        timer.reset();
        ++fired;
        // Still usable after the reset: the callback was moved out of the Timer before running.
        EXPECT_EQ(captured.size(), 36u);
    });
    ASSERT_TRUE(loop.runUntil([&] { return fired > 0; }, 1s));
    EXPECT_EQ(timer, nullptr);
}

TEST_F(EventSchedulerTest, CallbackMayScheduleAnother)
{
    std::unique_ptr<lvkeeper::Timer> first;
    std::unique_ptr<lvkeeper::Timer> second;
    bool done = false;
    first = scheduler.after(10ms, [&] { second = scheduler.after(10ms, [&] { done = true; }); });
    EXPECT_TRUE(loop.runUntil([&] { return done; }, 1s));
}

// Logging has no loop of its own; it lives here with the other process plumbing.
TEST(Logging, LevelsAndStderr)
{
    EXPECT_THROW(lvkeeper::sys::setupLogging("verbose", true), std::invalid_argument);
    EXPECT_THROW(lvkeeper::sys::setupLogging("", true), std::invalid_argument);

    lvkeeper::sys::setupLogging("warning", true);
    EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);
    lvkeeper::sys::setupLogging("debug", true);
    EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::debug);
    spdlog::debug("logging test key=value");
    lvkeeper::sys::setupLogging("info", true);
    EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::info);
}

} // namespace

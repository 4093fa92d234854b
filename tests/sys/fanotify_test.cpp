// FanotifyWatch on a loop-mounted ext4: prompt on a write, bounded under a flood, silent when idle.

#include "fixture.hpp"

#include "lvkeeper/sys/fanotify_watch.hpp"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <thread>

using namespace std::chrono_literals;
using lvkeeper::sys::FanotifyWatch;
using lvkeeper::test::EventLoop;
using lvkeeper::test::LoopExt4;

namespace
{

constexpr auto minInterval = 20ms;

void writeFile(const std::string& path, const std::string& data)
{
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
}

class FanotifyTest : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        if (!lvkeeper::test::isRoot())
        {
            GTEST_SKIP() << "needs root (loop devices, mount, fanotify)";
        }
        loop = std::make_unique<EventLoop>();
        ASSERT_NO_THROW(fs = std::make_unique<LoopExt4>());
        watch = std::make_unique<FanotifyWatch>(
            loop->get(), minInterval,
            [this](const std::string& mountPoint) {
                ++activity;
                lastMountPoint = mountPoint;
            },
            [this](const std::string&) { ++fsErrors; });
    }

    void TearDown() override
    {
        // The watch goes before the filesystem it marks.
        watch.reset();
        fs.reset();
        loop.reset();
    }

    std::unique_ptr<EventLoop> loop;
    std::unique_ptr<LoopExt4> fs;
    std::unique_ptr<FanotifyWatch> watch;
    int activity = 0;
    int fsErrors = 0;
    std::string lastMountPoint;
};

TEST_F(FanotifyTest, WriteReportsActivityPromptly)
{
    watch->watch(fs->mountPoint());
    loop->runFor(50ms);
    activity = 0;

    writeFile(*fs / "file", "hello\n");
    ASSERT_TRUE(loop->runUntil([&] { return activity > 0; }, 100ms));
    EXPECT_EQ(lastMountPoint, fs->mountPoint());
    EXPECT_EQ(fsErrors, 0);
}

TEST_F(FanotifyTest, FsErrorSupportDependsOnKernel)
{
    watch->watch(fs->mountPoint());
    utsname uts{};
    ::uname(&uts);
    int major = 0;
    int minor = 0;
    std::sscanf(uts.release, "%d.%d", &major, &minor);
    std::cout << "kernel " << uts.release << " FAN_FS_ERROR accepted: " << std::boolalpha
              << watch->reportsFsErrors() << "\n";
    if (major > 5 || (major == 5 && minor >= 16))
    {
        EXPECT_TRUE(watch->reportsFsErrors());
    }
}

TEST_F(FanotifyTest, FilesystemErrorIsReported)
{
    watch->watch(fs->mountPoint());
    if (!watch->reportsFsErrors())
    {
        GTEST_SKIP() << "kernel without FAN_FS_ERROR";
    }
    // ext4's own test hook records an error on this filesystem (the test's loop device only).
    const std::string trigger = "/sys/fs/ext4/" + fs->device().substr(5) + "/trigger_fs_error";
    if (::access(trigger.c_str(), W_OK) != 0)
    {
        GTEST_SKIP() << "no " << trigger;
    }
    loop->runFor(50ms);
    writeFile(trigger, "lvkeeper fanotify test\n");
    ASSERT_TRUE(loop->runUntil([&] { return fsErrors > 0; }, 100ms));
}

TEST_F(FanotifyTest, BurstOfWritesGivesBoundedCallbacks)
{
    watch->watch(fs->mountPoint());
    loop->runFor(50ms);
    activity = 0;

    std::atomic<bool> finished{false};
    std::atomic<int> written{0};
    auto start = std::chrono::steady_clock::now();
    std::thread writer([&] {
        int fd = ::open((*fs / "burst").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0)
        {
            const char block[16] = "0123456789abcde";
            for (int i = 0; i < 100000; ++i)
            {
                if (::pwrite(fd, block, sizeof block, (i % 4096) * static_cast<off_t>(sizeof block)) ==
                    static_cast<ssize_t>(sizeof block))
                {
                    ++written;
                }
            }
            ::close(fd);
        }
        finished = true;
    });
    loop->runUntil([&] { return finished.load(); }, 60s);
    writer.join();
    // The tail of the burst, read after the last mute.
    loop->runFor(100ms);
    auto elapsed = std::chrono::steady_clock::now() - start;

    ASSERT_EQ(written.load(), 100000);
    // Per mute interval: one callback for the batch read, one for the look at unmute (the writes
    // made while the marks were quiet went unreported).
    auto bound = 2 * (static_cast<int>(elapsed / minInterval) + 2);
    std::cout << "100000 writes in " << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()
              << " ms gave " << activity << " callbacks (bound " << bound << ")\n";
    EXPECT_GE(activity, 1);
    EXPECT_LE(activity, bound);
}

TEST_F(FanotifyTest, NoCallbacksWhenIdle)
{
    watch->watch(fs->mountPoint());
    writeFile(*fs / "file", "settle\n");
    loop->runFor(100ms);
    activity = 0;

    loop->runFor(300ms);
    EXPECT_EQ(activity, 0);
}

TEST_F(FanotifyTest, UnwatchStopsCallbacks)
{
    watch->watch(fs->mountPoint());
    writeFile(*fs / "file", "one\n");
    ASSERT_TRUE(loop->runUntil([&] { return activity > 0; }, 100ms));
    loop->runFor(50ms);

    watch->unwatch(fs->mountPoint());
    activity = 0;
    writeFile(*fs / "file", "two\n");
    loop->runFor(200ms);
    EXPECT_EQ(activity, 0);

    // Unwatching again, or something never watched, is no error.
    EXPECT_NO_THROW(watch->unwatch(fs->mountPoint()));
    EXPECT_NO_THROW(watch->unwatch("/nonexistent"));
}

TEST_F(FanotifyTest, WritesElsewhereAreNotReported)
{
    watch->watch(fs->mountPoint());
    loop->runFor(50ms);
    activity = 0;

    lvkeeper::test::TempDir other; // on the root filesystem, not marked
    writeFile(other / "file", "elsewhere\n");
    loop->runFor(150ms);
    EXPECT_EQ(activity, 0);
}

TEST_F(FanotifyTest, WatchingAMissingPathThrows)
{
    EXPECT_THROW(watch->watch("/nonexistent/lvkeeper"), std::system_error);
}

} // namespace

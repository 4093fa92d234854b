// ThreadUsageProbes on a loop-mounted ext4: idle looks never wake the loop, a shared-mmap writer (which
// fanotify cannot see) wakes it at the next look, a cancelled probe never calls back.

#include "fixture.hpp"

#include "lvkeeper/sys/linux.hpp"
#include "lvkeeper/sys/usage_probes.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

using namespace std::chrono_literals;
using lvkeeper::sys::ThreadUsageProbes;
using lvkeeper::test::EventLoop;
using lvkeeper::test::LoopExt4;

namespace
{

class UsageProbesTest : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        if (!lvkeeper::test::isRoot())
        {
            GTEST_SKIP() << "needs root (loop devices, mount)";
        }
        loop = std::make_unique<EventLoop>();
        ASSERT_NO_THROW(fs = std::make_unique<LoopExt4>());
        probes = std::make_unique<ThreadUsageProbes>(loop->get(), filesystems);
    }

    void TearDown() override
    {
        probes.reset();
        fs.reset();
        loop.reset();
    }

    std::unique_ptr<lvkeeper::UsageWatch> watch(std::chrono::milliseconds every)
    {
        return probes->watch(fs->mountPoint(), every, filesystems.usage(fs->mountPoint()), [this] { ++changed; });
    }

    /// Fills size bytes of a new file through a shared mapping, page by page, and leaves the pages dirty.
    void mmapWrite(const std::string& path, std::size_t size)
    {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
        void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        ASSERT_NE(map, MAP_FAILED);
        auto* bytes = static_cast<char*>(map);
        for (std::size_t off = 0; off < size; off += 4096)
        {
            bytes[off] = 'x';
        }
        ::munmap(map, size);
        ::close(fd);
    }

    lvkeeper::sys::LinuxFilesystems filesystems;
    std::unique_ptr<EventLoop> loop;
    std::unique_ptr<LoopExt4> fs;
    std::unique_ptr<ThreadUsageProbes> probes;
    int changed = 0;
};

TEST_F(UsageProbesTest, IdleLooksNeverWakeTheLoop)
{
    auto w = watch(20ms);
    // sd_event_run returns 0 when its timeout passed with nothing dispatched: the loop slept 400 ms through.
    EXPECT_EQ(sd_event_run(loop->get(), 400000), 0);
    EXPECT_EQ(changed, 0);
    EXPECT_GE(probes->looks(), 10U); // while the probe looked every 20 ms
}

TEST_F(UsageProbesTest, ASharedMmapWriterWakesTheLoopAtTheNextLook)
{
    auto w = watch(50ms);
    loop->runFor(120ms);
    ASSERT_EQ(changed, 0);
    auto before = probes->looks();
    // Page faults, no write(2): no fanotify event. ext4 reserves the delayed-allocation blocks at once.
    mmapWrite((*fs / "mapped"), 4U << 20);
    EXPECT_TRUE(loop->runUntil([this] { return changed > 0; }, 2s));
    EXPECT_EQ(changed, 1);
    EXPECT_LE(probes->looks() - before, 3U); // caught at the first look or two after the pages were dirtied
    // Once: it stopped after calling back.
    loop->runFor(200ms);
    EXPECT_EQ(changed, 1);
}

TEST_F(UsageProbesTest, ACancelledProbeNeverCallsBack)
{
    auto w = watch(20ms);
    w.reset();
    mmapWrite((*fs / "mapped"), 4U << 20);
    loop->runFor(200ms);
    EXPECT_EQ(changed, 0);
}

TEST_F(UsageProbesTest, AFailingStatvfsCallsBackSoThatTheLoopLooksAndReports)
{
    auto w = probes->watch((*fs / "no-such-dir"), 20ms, filesystems.usage(fs->mountPoint()), [this] { ++changed; });
    EXPECT_TRUE(loop->runUntil([this] { return changed > 0; }, 1s));
}

TEST_F(UsageProbesTest, SeveralProbesEachOnTheirOwnInterval)
{
    int slowChanged = 0;
    auto fast = watch(20ms);
    auto slow = probes->watch(fs->mountPoint(), 5s, filesystems.usage(fs->mountPoint()), [&] { ++slowChanged; });
    mmapWrite((*fs / "mapped"), 4U << 20);
    EXPECT_TRUE(loop->runUntil([this] { return changed > 0; }, 1s));
    loop->runFor(100ms);
    EXPECT_EQ(slowChanged, 0); // its first look is seconds away
}

} // namespace

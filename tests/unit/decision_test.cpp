// decide(): what the keeper does next for a volume, as a value, from its state alone.

#include "lvkeeper/decision.hpp"

#include "lvkeeper/size.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace lvkeeper
{
namespace
{

using namespace std::chrono_literals;
using Action = Decision::Action;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr std::uint64_t extent = 4 * MiB;
const std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};

/// /data: a 4G LV, 2G free in vg0, filled to percent.
VolumeState volume(double percent, std::uint64_t vgFree = 2 * GiB)
{
    VolumeState v;
    v.config.mountPoint = "/data";
    v.config.growAt = 90;
    v.config.growStep = 500 * MiB;
    v.mounted = true;
    v.vg = "vg0";
    v.lv = "data0";
    v.lvSize = 4 * GiB;
    v.vgFree = vgFree;
    v.extentSize = extent;
    v.usage.size = 4 * GiB;
    v.usage.used = static_cast<std::uint64_t>(4.0 * GiB * percent / 100);
    v.usage.available = v.usage.size - v.usage.used;
    v.usage.inodes = 1000;
    v.usage.inodesUsed = 10;
    return v;
}

const policy::Headroom headroom;

TEST(Decide, NothingBelowGrowAtForASlowWriter)
{
    EXPECT_EQ(decide(volume(50), DiskLane{}, now, headroom).action, Action::Nothing);
}

TEST(Decide, NothingForWhatCannotGrowOnline)
{
    auto v = volume(95);
    v.readOnly = true;
    EXPECT_EQ(decide(v, DiskLane{}, now, headroom).action, Action::Nothing);
    v = volume(95);
    v.vg.clear();
    EXPECT_EQ(decide(v, DiskLane{}, now, headroom).action, Action::Nothing);
    v = volume(95);
    v.config.autoGrow = false;
    EXPECT_EQ(decide(v, DiskLane{}, now, headroom).action, Action::Nothing);
}

TEST(Decide, GrowAtGrowAtByTheStepInWholeExtents)
{
    auto d = decide(volume(95), DiskLane{}, now, headroom);
    ASSERT_EQ(d.action, Action::Grow);
    EXPECT_EQ(d.target, 4 * GiB + 500 * MiB);
    EXPECT_FALSE(d.addDiskToo);
}

TEST(Decide, TheCooldownWaitsUnlessTheWriterWouldFillTheRestMeanwhile)
{
    auto v = volume(95);
    v.lastGrowEnd = now - 500ms;
    v.config.cooldown = 2000ms;
    auto d = decide(v, DiskLane{}, now, headroom);
    ASSERT_EQ(d.action, Action::Recheck);
    EXPECT_EQ(d.at, now + 1500ms);
    v.fillRate = 200.0 * MiB; // 200M/s against 200M available: waiting would be too late
    EXPECT_EQ(decide(v, DiskLane{}, now, headroom).action, Action::Grow);
}

TEST(Decide, AFailedGrowIsRetriedAfterItsBackoffNotSooner)
{
    auto v = volume(95);
    v.failedGrows = 3;
    v.retryGrowAt = now + 4s;
    auto d = decide(v, DiskLane{}, now, headroom);
    ASSERT_EQ(d.action, Action::Recheck);
    EXPECT_EQ(d.at, now + 4s);
    EXPECT_EQ(decide(v, DiskLane{}, now + 4s, headroom).action, Action::Grow);
}

TEST(Decide, AtMaxSizeIsExhaustionWhateverTheDisks)
{
    auto v = volume(95);
    v.config.maxSize = 4 * GiB;
    DiskLane disks;
    disks.autoAddDisk = true;
    auto d = decide(v, disks, now, headroom);
    ASSERT_EQ(d.action, Action::Exhausted);
    EXPECT_THAT(d.reason, StartsWith("max-size:"));
}

TEST(Decide, AFullVgGetsADiskWhenItMay)
{
    DiskLane disks;
    disks.autoAddDisk = true;
    auto d = decide(volume(95, 0), disks, now, headroom);
    EXPECT_EQ(d.action, Action::AddDisk);
    disks.queued = true;
    EXPECT_EQ(decide(volume(95, 0), disks, now, headroom).action, Action::Nothing);
}

TEST(Decide, ATransientDiskFailureWaitsForItsRetryAndIsNeverExhaustion)
{
    DiskLane disks;
    disks.autoAddDisk = true;
    disks.failures = 2;
    disks.retryAt = now + 2s;
    auto d = decide(volume(95, 0), disks, now, headroom);
    ASSERT_EQ(d.action, Action::Recheck);
    EXPECT_EQ(d.at, now + 2s);
    EXPECT_EQ(decide(volume(95, 0), disks, now + 2s, headroom).action, Action::AddDisk);
}

TEST(Decide, ALastingReasonIsExhaustionWithThatReason)
{
    DiskLane disks;
    disks.autoAddDisk = true;
    disks.lastingBlock = "no-host-space: volume group vg0 is full and no disk can be added: /media has 10M free";
    auto d = decide(volume(95, 0), disks, now, headroom);
    ASSERT_EQ(d.action, Action::Exhausted);
    EXPECT_EQ(d.reason, *disks.lastingBlock);
    disks = DiskLane{};
    d = decide(volume(95, 0), disks, now, headroom);
    ASSERT_EQ(d.action, Action::Exhausted);
    EXPECT_THAT(d.reason, StartsWith("vg-full:"));
    EXPECT_THAT(d.reason, HasSubstr("AutoAddDisk=no"));
}

TEST(Decide, AVgWithALittleLeftIsGrownIntoFirstWithTheDiskRightBehind)
{
    DiskLane disks;
    disks.autoAddDisk = true;
    auto d = decide(volume(95, 100 * MiB), disks, now, headroom);
    ASSERT_EQ(d.action, Action::Grow);
    EXPECT_EQ(d.target, 4 * GiB + 100 * MiB);
    EXPECT_TRUE(d.addDiskToo);
}

TEST(Decide, AFastWriterGetsADiskBeforeTheVgRunsDry)
{
    DiskLane disks;
    disks.autoAddDisk = true;
    auto v = volume(50, 600 * MiB);
    v.fillRate = 50.0 * MiB; // 50M/s x (10 s add + 10 s grow) x 2 = 2G > 600M
    auto d = decide(v, disks, now, headroom);
    ASSERT_EQ(d.action, Action::AddDisk);
    EXPECT_EQ(d.reason, "vg-short");
    v.fillRate = 1.0 * MiB;
    EXPECT_EQ(decide(v, disks, now, headroom).action, Action::Nothing);
}

} // namespace
} // namespace lvkeeper

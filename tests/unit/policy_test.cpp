#include "lvkeeper/policy.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <limits>

namespace lvkeeper
{
namespace
{

using namespace std::chrono_literals;

constexpr std::uint64_t extent = 4 * MiB;
constexpr std::uint64_t lvSize = 717 * extent; // 3007315968, the lab's /data

FsUsage spaceUsage(std::uint64_t used, std::uint64_t available)
{
    FsUsage u;
    u.size = used + available;
    u.used = used;
    u.available = available;
    return u;
}

VolumeConfig dataConfig()
{
    VolumeConfig c;
    c.mountPoint = "/data";
    c.growAt = 90.0;
    c.growStep = 500 * MiB;
    return c;
}

// ---- aboveThreshold -------------------------------------------------------------------------------------------

TEST(AboveThreshold, BySpaceAtAndAboveGrowAt)
{
    auto c = dataConfig();
    EXPECT_FALSE(policy::aboveThreshold(c, spaceUsage(899, 101)));
    EXPECT_TRUE(policy::aboveThreshold(c, spaceUsage(900, 100))); // exactly GrowAt counts
    EXPECT_TRUE(policy::aboveThreshold(c, spaceUsage(1000, 0)));
}

TEST(AboveThreshold, SpaceIsCountedAsDfDoesWithoutTheRootReserve)
{
    auto c = dataConfig();
    // 1000 blocks, 50 reserved for root: 855 used, 95 available is 90% for writers (855 / 950).
    FsUsage u;
    u.size = 1000;
    u.used = 855;
    u.available = 95;
    EXPECT_TRUE(policy::aboveThreshold(c, u));
}

TEST(AboveThreshold, ByInodesWhenSpaceIsPlenty)
{
    auto c = dataConfig();
    auto u = spaceUsage(100, 900);
    u.inodes = 1000;
    u.inodesUsed = 899;
    EXPECT_FALSE(policy::aboveThreshold(c, u));
    u.inodesUsed = 950;
    EXPECT_TRUE(policy::aboveThreshold(c, u));
}

TEST(AboveThreshold, FilesystemWithoutInodeLimitIsJudgedBySpaceOnly)
{
    auto c = dataConfig();
    auto u = spaceUsage(100, 900);
    u.inodes = 0;
    u.inodesUsed = 0;
    EXPECT_FALSE(policy::aboveThreshold(c, u));
}

TEST(AboveThreshold, EmptyUsageIsNotAbove)
{
    EXPECT_FALSE(policy::aboveThreshold(dataConfig(), FsUsage{}));
}

// ---- requestedTarget ------------------------------------------------------------------------------------------

TEST(RequestedTarget, DefaultAddsTheGrowStep)
{
    SizeRequest r; // Default
    EXPECT_EQ(policy::requestedTarget(r, lvSize, 500 * MiB, extent), lvSize + 500 * MiB);
}

TEST(RequestedTarget, DefaultStepIsRoundedUpToExtents)
{
    SizeRequest r;
    EXPECT_EQ(policy::requestedTarget(r, lvSize, 501 * MiB, extent), lvSize + 504 * MiB);
}

TEST(RequestedTarget, RelativeAddsToTheLvAndRoundsUp)
{
    SizeRequest r{SizeRequest::Kind::Relative, 1};
    EXPECT_EQ(policy::requestedTarget(r, lvSize, 500 * MiB, extent), lvSize + extent);
    r.bytes = 8 * MiB;
    EXPECT_EQ(policy::requestedTarget(r, lvSize, 500 * MiB, extent), lvSize + 8 * MiB);
}

TEST(RequestedTarget, AbsoluteIgnoresTheLvSizeAndStep)
{
    SizeRequest r{SizeRequest::Kind::Absolute, 4 * GiB};
    EXPECT_EQ(policy::requestedTarget(r, lvSize, 500 * MiB, extent), 4 * GiB);
    r.bytes = 4 * GiB + 1;
    EXPECT_EQ(policy::requestedTarget(r, lvSize, 500 * MiB, extent), 4 * GiB + extent);
}

TEST(RequestedTarget, AbsoluteBelowTheLvIsReturnedAsIsForThePlanToRefuse)
{
    SizeRequest r{SizeRequest::Kind::Absolute, 1 * GiB};
    EXPECT_EQ(policy::requestedTarget(r, lvSize, 500 * MiB, extent), 1 * GiB);
}

TEST(RequestedTarget, UnknownExtentSizeDoesNotRound)
{
    SizeRequest r{SizeRequest::Kind::Relative, 1};
    EXPECT_EQ(policy::requestedTarget(r, lvSize, 500 * MiB, 0), lvSize + 1);
}

TEST(RequestedTarget, HugeRequestsSaturateInsteadOfWrappingOrThrowing)
{
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    constexpr std::uint64_t largest = max / extent * extent;
    // A wrapped sum would look like "already that big" and succeed without growing anything.
    SizeRequest relative{SizeRequest::Kind::Relative, max};
    EXPECT_EQ(policy::requestedTarget(relative, lvSize, 500 * MiB, extent), largest);
    SizeRequest absolute{SizeRequest::Kind::Absolute, max};
    EXPECT_EQ(policy::requestedTarget(absolute, lvSize, 500 * MiB, extent), largest);
    SizeRequest step{SizeRequest::Kind::Default, 0};
    EXPECT_EQ(policy::requestedTarget(step, lvSize, max, extent), largest);
    EXPECT_EQ(policy::requestedTarget(relative, lvSize, 500 * MiB, 0), max);
}

// ---- planGrow -------------------------------------------------------------------------------------------------

TEST(PlanGrow, FitsEverything)
{
    auto plan = policy::planGrow(lvSize + 500 * MiB, lvSize, 8 * GiB, 2 * GiB, extent, false);
    EXPECT_EQ(plan.target, lvSize + 500 * MiB);
    EXPECT_FALSE(plan.cappedByMaxSize);
    EXPECT_FALSE(plan.cappedByVg);
    EXPECT_TRUE(plan.growsAnything(lvSize));
}

TEST(PlanGrow, NoMaxSizeMeansNoCeiling)
{
    auto plan = policy::planGrow(100 * GiB, lvSize, std::nullopt, 200 * GiB, extent, false);
    EXPECT_EQ(plan.target, 100 * GiB);
    EXPECT_FALSE(plan.cappedByMaxSize);
}

TEST(PlanGrow, MaxSizeCeilingIsRoundedDownToExtents)
{
    // MaxSize=4G+3M: the LV may not pass it, so the last whole extent below it is 4G.
    auto plan = policy::planGrow(5 * GiB, lvSize, 4 * GiB + 3 * MiB, 10 * GiB, extent, false);
    EXPECT_EQ(plan.target, 4 * GiB);
    EXPECT_TRUE(plan.cappedByMaxSize);
    EXPECT_FALSE(plan.cappedByVg);
    EXPECT_LE(plan.target, 4 * GiB + 3 * MiB);
    EXPECT_EQ(plan.target % extent, 0U);
}

TEST(PlanGrow, TargetExactlyAtMaxSizeIsNotCapped)
{
    auto plan = policy::planGrow(4 * GiB, lvSize, 4 * GiB, 10 * GiB, extent, false);
    EXPECT_EQ(plan.target, 4 * GiB);
    EXPECT_FALSE(plan.cappedByMaxSize);
}

TEST(PlanGrow, LvAlreadyAtMaxSizeGrowsNothing)
{
    auto plan = policy::planGrow(lvSize + 500 * MiB, lvSize, lvSize, 10 * GiB, extent, true);
    EXPECT_EQ(plan.target, lvSize);
    EXPECT_TRUE(plan.cappedByMaxSize);
    EXPECT_FALSE(plan.growsAnything(lvSize));
}

TEST(PlanGrow, LvAboveAMaxSizeIsNeverShrunk)
{
    auto plan = policy::planGrow(lvSize + 500 * MiB, lvSize, 2 * GiB, 10 * GiB, extent, true);
    EXPECT_EQ(plan.target, lvSize);
    EXPECT_FALSE(plan.growsAnything(lvSize));
}

TEST(PlanGrow, VgCapWithPartialTakesWhatIsFree)
{
    auto plan = policy::planGrow(lvSize + 500 * MiB, lvSize, std::nullopt, 100 * MiB, extent, true);
    EXPECT_EQ(plan.target, lvSize + 100 * MiB);
    EXPECT_TRUE(plan.cappedByVg);
    EXPECT_TRUE(plan.growsAnything(lvSize));
}

TEST(PlanGrow, VgCapWithoutPartialLeavesTheTargetAndSaysSo)
{
    auto plan = policy::planGrow(lvSize + 500 * MiB, lvSize, std::nullopt, 100 * MiB, extent, false);
    EXPECT_EQ(plan.target, lvSize + 500 * MiB);
    EXPECT_TRUE(plan.cappedByVg);
}

TEST(PlanGrow, FullVgWithPartialGrowsNothing)
{
    auto plan = policy::planGrow(lvSize + 500 * MiB, lvSize, std::nullopt, 0, extent, true);
    EXPECT_EQ(plan.target, lvSize);
    EXPECT_TRUE(plan.cappedByVg);
    EXPECT_FALSE(plan.growsAnything(lvSize));
}

TEST(PlanGrow, VgWithExactlyEnoughIsNotCapped)
{
    auto plan = policy::planGrow(lvSize + 500 * MiB, lvSize, std::nullopt, 500 * MiB, extent, false);
    EXPECT_EQ(plan.target, lvSize + 500 * MiB);
    EXPECT_FALSE(plan.cappedByVg);
}

TEST(PlanGrow, MaxSizeIsAppliedBeforeTheVgIsAsked)
{
    // Only 100M left under MaxSize and the VG has 200M: MaxSize decides, the VG is not short.
    auto plan = policy::planGrow(lvSize + 500 * MiB, lvSize, lvSize + 100 * MiB, 200 * MiB, extent, false);
    EXPECT_EQ(plan.target, lvSize + 100 * MiB);
    EXPECT_TRUE(plan.cappedByMaxSize);
    EXPECT_FALSE(plan.cappedByVg);
}

TEST(PlanGrow, TargetBelowTheLvGrowsNothing)
{
    auto plan = policy::planGrow(1 * GiB, lvSize, std::nullopt, 10 * GiB, extent, false);
    EXPECT_EQ(plan.target, lvSize);
    EXPECT_FALSE(plan.cappedByMaxSize);
    EXPECT_FALSE(plan.cappedByVg);
    EXPECT_FALSE(plan.growsAnything(lvSize));
}

// ---- filesystemBehind -----------------------------------------------------------------------------------------

TEST(FilesystemBehind, SameSizeIsNotBehind)
{
    EXPECT_FALSE(policy::filesystemBehind(lvSize, lvSize, extent));
}

TEST(FilesystemBehind, OneExtentShortIsBehind)
{
    EXPECT_TRUE(policy::filesystemBehind(lvSize - extent, lvSize, extent));
    EXPECT_TRUE(policy::filesystemBehind(lvSize, lvSize + 500 * MiB, extent));
}

TEST(FilesystemBehind, LessThanAnExtentShortIsNotBehind)
{
    EXPECT_FALSE(policy::filesystemBehind(lvSize - extent + 1, lvSize, extent));
}

TEST(FilesystemBehind, FilesystemLargerThanTheLvIsNotBehind)
{
    EXPECT_FALSE(policy::filesystemBehind(lvSize + extent, lvSize, extent));
}

TEST(FilesystemBehind, UnknownExtentSizeCountsEveryByte)
{
    EXPECT_TRUE(policy::filesystemBehind(lvSize - 1, lvSize, 0));
    EXPECT_FALSE(policy::filesystemBehind(lvSize, lvSize, 0));
}

// ---- cooldownLeft ---------------------------------------------------------------------------------------------

TEST(CooldownLeft, NoGrowYetMeansNoWait)
{
    std::chrono::steady_clock::time_point now{1000h};
    EXPECT_EQ(policy::cooldownLeft(now, std::nullopt, 2000ms), 0ms);
}

TEST(CooldownLeft, WaitsTheRestOfTheCooldown)
{
    std::chrono::steady_clock::time_point end{1000h};
    EXPECT_EQ(policy::cooldownLeft(end, end, 2000ms), 2000ms);
    EXPECT_EQ(policy::cooldownLeft(end + 500ms, end, 2000ms), 1500ms);
    EXPECT_EQ(policy::cooldownLeft(end + 1999ms, end, 2000ms), 1ms);
}

TEST(CooldownLeft, OverOnceTheCooldownHasPassed)
{
    std::chrono::steady_clock::time_point end{1000h};
    EXPECT_EQ(policy::cooldownLeft(end + 2000ms, end, 2000ms), 0ms);
    EXPECT_EQ(policy::cooldownLeft(end + 1h, end, 2000ms), 0ms);
}

TEST(CooldownLeft, ZeroCooldownNeverWaits)
{
    std::chrono::steady_clock::time_point end{1000h};
    EXPECT_EQ(policy::cooldownLeft(end, end, 0ms), 0ms);
}

// ---- statusFragment -------------------------------------------------------------------------------------------

TEST(StatusFragment, MountedAndGrowing)
{
    EXPECT_EQ(policy::statusFragment(dataConfig(), spaceUsage(250, 750), true, false),
              "/data 25% used, grows at 90% by 500M");
}

TEST(StatusFragment, FractionalGrowAtAndGigabyteStep)
{
    auto c = dataConfig();
    c.growAt = 85.5;
    c.growStep = 2 * GiB;
    EXPECT_EQ(policy::statusFragment(c, spaceUsage(500, 500), true, false), "/data 50% used, grows at 85.5% by 2.0G");
}

TEST(StatusFragment, NotMounted)
{
    EXPECT_EQ(policy::statusFragment(dataConfig(), FsUsage{}, false, false), "/data not mounted");
}

TEST(StatusFragment, ReadOnly)
{
    EXPECT_EQ(policy::statusFragment(dataConfig(), spaceUsage(970, 30), true, true), "/data 97% used, READ-ONLY");
}

TEST(StatusFragment, AutoGrowOff)
{
    auto c = dataConfig();
    c.autoGrow = false;
    EXPECT_EQ(policy::statusFragment(c, spaceUsage(250, 750), true, false), "/data 25% used, auto-grow off");
}


// ---- fill rate and headroom ----------------------------------------------------------------

using Clock = std::chrono::steady_clock;
const Clock::time_point t0{};

std::deque<policy::UsageSample> samples(std::initializer_list<std::pair<int, std::uint64_t>> points,
                                        const policy::Headroom& tuning = {})
{
    std::deque<policy::UsageSample> history;
    for (auto [ms, used] : points)
    {
        policy::recordSample(history, {t0 + std::chrono::milliseconds(ms), used}, tuning);
    }
    return history;
}

TEST(FillRate, SteadyWriterIsMeasuredInBytesPerSecond)
{
    auto h = samples({{0, 100 * MiB}, {250, 125 * MiB}, {500, 150 * MiB}, {750, 175 * MiB}, {1000, 200 * MiB}});
    EXPECT_DOUBLE_EQ(policy::fillRate(h, {}), 100.0 * MiB);
}

TEST(FillRate, TooLittleHistoryIsNoRate)
{
    policy::Headroom tuning;
    EXPECT_EQ(policy::fillRate(samples({{0, 100 * MiB}}), tuning), 0.0);
    // 50 ms of history is below minimumSpan: a burst that tells nothing yet.
    EXPECT_EQ(policy::fillRate(samples({{0, 100 * MiB}, {20, 120 * MiB}, {40, 140 * MiB}, {50, 200 * MiB}}), tuning),
              0.0);
    // One big fallocate between two quiet readings is no writer either.
    EXPECT_EQ(policy::fillRate(samples({{0, 100 * MiB}, {1000, 3100 * MiB}}), tuning), 0.0);
}

TEST(FillRate, FreeingSpaceIsNotANegativeRate)
{
    EXPECT_EQ(policy::fillRate(samples({{0, 500 * MiB}, {1000, 100 * MiB}}), {}), 0.0);
}

TEST(FillRate, OldSamplesFallOutOfTheWindow)
{
    // Fast at first, then slow: only the last 5 s count.
    auto h = samples({{0, 0},
                      {1000, 1000 * MiB},
                      {7000, 1000 * MiB},
                      {7500, 1005 * MiB},
                      {7750, 1007 * MiB},
                      {8000, 1010 * MiB}});
    EXPECT_EQ(h.size(), 4u);
    EXPECT_DOUBLE_EQ(policy::fillRate(h, {}), 10.0 * MiB);
}

TEST(FillRate, HistoryIsBounded)
{
    policy::Headroom tuning;
    std::deque<policy::UsageSample> h;
    for (int i = 0; i < 1000; ++i)
    {
        policy::recordSample(h, {t0 + std::chrono::milliseconds(i), static_cast<std::uint64_t>(i) * MiB}, tuning);
    }
    EXPECT_EQ(h.size(), tuning.maxSamples);
}

TEST(TimeToFull, IsAvailableOverRateRoundedUp)
{
    EXPECT_EQ(policy::timeToFull(1000 * MiB, 100.0 * MiB), 10);
    EXPECT_EQ(policy::timeToFull(1001 * MiB, 100.0 * MiB), 11);
    EXPECT_EQ(policy::timeToFull(1000 * MiB, 0.0), -1);
    EXPECT_GT(policy::timeToFull(std::numeric_limits<std::uint64_t>::max(), 1e-300), 0);
}

TEST(Headroom, IsRateTimesGrowDurationTimesSafety)
{
    policy::Headroom tuning; // safety 2
    EXPECT_EQ(policy::headroomNeeded(100.0 * MiB, 3000ms, tuning), 600 * MiB);
    EXPECT_EQ(policy::headroomNeeded(0.0, 3000ms, tuning), 0u);
    EXPECT_EQ(policy::plannedGrowDuration(0ms, tuning), tuning.assumedGrow);
    EXPECT_EQ(policy::plannedGrowDuration(1234ms, tuning), 1234ms);
}

TEST(NeedsGrow, GrowAtStillRulesForASlowWriter)
{
    VolumeConfig c; // GrowAt 90
    EXPECT_FALSE(policy::needsGrow(c, spaceUsage(800 * MiB, 200 * MiB), 1.0 * MiB, 3000ms, {}));
    EXPECT_TRUE(policy::needsGrow(c, spaceUsage(900 * MiB, 100 * MiB), 0.0, 3000ms, {}));
}

TEST(NeedsGrow, AFastWriterGrowsBeforeGrowAt)
{
    VolumeConfig c;
    // 50% used, but 500M left is less than 100M/s x 3 s x 2.
    EXPECT_TRUE(policy::needsGrow(c, spaceUsage(500 * MiB, 500 * MiB), 100.0 * MiB, 3000ms, {}));
    EXPECT_FALSE(policy::needsGrow(c, spaceUsage(500 * MiB, 700 * MiB), 100.0 * MiB, 3000ms, {}));
}

TEST(Urgent, CooldownIsSkippedOnlyWhenTheWriterWouldFillItsWait)
{
    auto u = spaceUsage(900 * MiB, 300 * MiB);
    EXPECT_TRUE(policy::urgent(u, 100.0 * MiB, 2000ms, 1000ms, {}));   // needs 600M
    EXPECT_FALSE(policy::urgent(u, 10.0 * MiB, 2000ms, 1000ms, {}));   // needs 60M
    EXPECT_FALSE(policy::urgent(u, 0.0, 2000ms, 1000ms, {}));
}

TEST(AutoStep, SlowWriterGetsGrowStepFastWriterMore)
{
    EXPECT_EQ(policy::autoStep(500 * MiB, 1.0 * MiB, 3000ms, {}, 4 * GiB), 500 * MiB);
    // 100M/s x 3 s x 2 = 600M headroom: step is twice that.
    EXPECT_EQ(policy::autoStep(500 * MiB, 100.0 * MiB, 3000ms, {}, 4 * GiB), 1200 * MiB);
}

TEST(AutoStep, NeverMoreThanDoublesTheLv)
{
    // A rate of 7G/s (a fake, or a burst) would ask for 70G: one grow at most doubles a 1G LV.
    EXPECT_EQ(policy::autoStep(500 * MiB, 7.0 * GiB, 5000ms, {}, 1 * GiB), 1 * GiB);
    // GrowStep is always allowed, even on a tiny LV.
    EXPECT_EQ(policy::autoStep(500 * MiB, 7.0 * GiB, 5000ms, {}, 100 * MiB), 500 * MiB);
}

TEST(VgShort, AFastWriterNeedsADiskBeforeTheVgIsEmpty)
{
    // 40M/s while a disk is added (10 s) and grown into (5 s), x2: 1.2G.
    EXPECT_TRUE(policy::vgShort(40.0 * MiB, 800 * MiB, 10000ms, 5000ms, {}));
    EXPECT_FALSE(policy::vgShort(40.0 * MiB, 1300 * MiB, 10000ms, 5000ms, {}));
    EXPECT_FALSE(policy::vgShort(0.0, 0, 10000ms, 5000ms, {})); // nobody writing: GrowAt decides
}

TEST(NextLook, AnUnseenWriterReachesTheGrowPointAtTheLatestAtTheLook)
{
    VolumeConfig config;
    config.growAt = 90;
    auto at = [](std::uint64_t used, std::uint64_t total)
    {
        FsUsage usage;
        usage.size = total;
        usage.used = used;
        usage.available = total - used;
        return usage;
    };
    policy::Looks looks; // 128M/s assumed, 250 ms floor
    // 4000M at 85%: 200M to GrowAt is 1.5625 s at 128M/s.
    EXPECT_EQ(policy::nextLook(config, at(3400 * MiB, 4000 * MiB), 0.0, 5000ms, {}, looks, 60000ms), 1562ms);
    // A faster writer measured: it decides, and its headroom moves the grow point closer.
    EXPECT_LT(policy::nextLook(config, at(3400 * MiB, 4000 * MiB), 256.0 * MiB, 1000ms, {}, looks, 60000ms), 500ms);
    // Far from full: never later than the backstop.
    EXPECT_EQ(policy::nextLook(config, at(100 * MiB, 400 * GiB), 0.0, 5000ms, {}, looks, 60000ms), 60000ms);
    // At or past the grow point: the floor, but never later than a shorter backstop.
    EXPECT_EQ(policy::nextLook(config, at(3900 * MiB, 4000 * MiB), 0.0, 5000ms, {}, looks, 60000ms), 250ms);
    EXPECT_EQ(policy::nextLook(config, at(3900 * MiB, 4000 * MiB), 0.0, 5000ms, {}, looks, 100ms), 100ms);
}

TEST(DisksToAdd, CoversTheShortfallInWholeImages)
{
    EXPECT_EQ(policy::disksToAdd(500 * MiB, 600 * MiB, 256 * MiB), 0u);
    EXPECT_EQ(policy::disksToAdd(500 * MiB, 400 * MiB, 256 * MiB), 1u);
    EXPECT_EQ(policy::disksToAdd(1000 * MiB, 0, 256 * MiB), 4u);
    EXPECT_EQ(policy::disksToAdd(1000 * MiB, 0, 0), 0u);
    EXPECT_EQ(policy::disksToAdd(std::numeric_limits<std::uint64_t>::max(), 0, 1), 64u);
}

} // namespace
} // namespace lvkeeper

#include "fakes.hpp"

#include "lvkeeper/doctor.hpp"
#include "lvkeeper/errors.hpp"
#include "lvkeeper/journal.hpp"
#include "lvkeeper/keeper.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lvkeeper
{
namespace
{

using namespace std::chrono_literals;
using test::FakeFilesystems;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr std::uint64_t extent = 4 * MiB;
constexpr std::uint64_t lvSize = 717 * extent; // 3007315968
constexpr std::uint64_t vgFree = 2 * GiB;
constexpr std::uint64_t step = 500 * MiB;

std::vector<std::string> lvmArgv(std::vector<std::string> tail)
{
    tail.insert(tail.begin(), "lvm");
    return tail;
}

std::string sizeArg(std::uint64_t bytes)
{
    return std::to_string(bytes) + "b";
}

ErrorKind kindOf(const Keeper::Error& error)
{
    if (!error)
    {
        ADD_FAILURE() << "expected an error, the reply succeeded";
        return ErrorKind::Failed;
    }
    try
    {
        std::rethrow_exception(error);
    }
    catch (const KeeperError& e)
    {
        return e.kind();
    }
    catch (const std::exception& e)
    {
        ADD_FAILURE() << "not a KeeperError: " << e.what();
    }
    return ErrorKind::Failed;
}

std::string messageOf(const Keeper::Error& error)
{
    if (!error)
    {
        return "(no error)";
    }
    try
    {
        std::rethrow_exception(error);
    }
    catch (const std::exception& e)
    {
        return e.what();
    }
}

struct GrowResult
{
    int calls = 0;
    std::uint64_t size = 0;
    Keeper::Error error;
};

Keeper::GrowReply into(GrowResult& r)
{
    return [&r](std::uint64_t size, Keeper::Error error)
    {
        ++r.calls;
        r.size = size;
        r.error = error;
    };
}

struct DiskResult
{
    int calls = 0;
    std::string image;
    std::string device;
    Keeper::Error error;
};

Keeper::AddDiskReply into(DiskResult& r)
{
    return [&r](const std::string& image, const std::string& device, Keeper::Error error)
    {
        ++r.calls;
        r.image = image;
        r.device = device;
        r.error = error;
    };
}

struct RemountResult
{
    int calls = 0;
    Keeper::Error error;
};

Keeper::RemountReply into(RemountResult& r)
{
    return [&r](Keeper::Error error)
    {
        ++r.calls;
        r.error = error;
    };
}

/// The lab: /data is ext4 on vg0/data0 (253:0, 2868M) in a VG of three 1800M image-backed loop devices.
class KeeperTest : public ::testing::Test
{
  protected:
    KeeperTest()
    {
        VolumeConfig volume;
        volume.mountPoint = "/data";
        volume.growAt = 90;
        volume.growStep = step;
        volume.cooldown = 2000ms;
        config.volumes.push_back(volume);
        config.disks.imageDirectory = "/media";
        config.disks.imageSize = 1800 * MiB;
        config.disks.reserveHostSpace = 256 * MiB;
        config.disks.maxDisks = 8;
        // The headroom-driven looks add statvfs readings between a test's own writes; only their tests want them.
        config.daemon.backstopInterval = 0s;

        fs.mounts["/"] = MountInfo{"/", "/dev/vda1", "ext4", 254, 1, false, "rw,relatime"};
        fs.mounts["/data"] = MountInfo{"/data", "/dev/mapper/vg0-data0", "ext4", 253, 0, false, "rw,relatime"};
        fs.usages["/data"] = FakeFilesystems::usageOf(lvSize, 25);
        fs.usages["/media"] = FakeFilesystems::usageOf(40 * GiB, 10);

        // Another active LV listed first: identification must go by device number, not by order.
        lvmModel.lvs = {
            lvm::Lv{"vg0", "scratch", "/dev/vg0/scratch", "/dev/mapper/vg0-scratch", 256 * MiB, 253, 1, vgFree, extent},
            lvm::Lv{"vg0", "data0", "/dev/vg0/data0", "/dev/mapper/vg0-data0", lvSize, 253, 0, vgFree, extent},
        };
        lvmModel.vgs = {lvm::Vg{"vg0", 3 * 1796 * MiB, vgFree, extent, 3 * 449, vgFree / extent, 3}};
        for (int n = 0; n < 3; ++n)
        {
            std::string device = "/dev/loop" + std::to_string(n);
            std::string image = "/media/disk" + std::to_string(n) + ".img";
            lvmModel.pvs.push_back(lvm::Pv{device, "vg0", 1796 * MiB, 0, 1800 * MiB, MiB, 449, 449, true});
            disks.files[image] = 1800 * MiB;
            disks.loops.push_back({device, image});
            disks.signatures[device] = "LVM2_member";
        }
        disks.nextLoop = 3;
        lvmModel.install(runner);

        // Growing the filesystem makes it as large as its LV, keeping what is used; online resize needs rw.
        auto grow = [this](const std::vector<std::string>& argv)
        {
            if (fs.mounts["/data"].readOnly)
            {
                return test::FakeRunner::Response{1, "", argv[0] + ": Read-only file system While trying to resize"};
            }
            // statvfs leaves out the metadata: it stays as far below the superblock size as it was.
            auto& u = fs.usages["/data"];
            const std::uint64_t size = lvmModel.lv("vg0", "data0").size;
            std::uint64_t metadata = 0;
            if (auto it = fs.fsSizes.find("/data"); it != fs.fsSizes.end())
            {
                metadata = it->second - u.size;
                it->second = size;
            }
            u.size = size - metadata;
            u.available = u.size - u.used;
            return test::FakeRunner::Response{0, "", ""};
        };
        runner.setHandler("resize2fs", grow);
        runner.setHandler("xfs_growfs", grow);
    }

    void startKeeper()
    {
        keeper = std::make_unique<Keeper>(
            config, KeeperSeams{runner, scheduler, fs, disks, state, watcher, executor, gate, textFiles, probes});
        keeper->setListener(&listener);
        bool ready = false;
        keeper->start(
            [&ready]
            {
                ready = true;
            });
        ASSERT_TRUE(ready);
    }

    /// Writers filled /data to percent of its current size.
    void fill(double percent)
    {
        auto size = fs.usages["/data"].size;
        fs.usages["/data"] = FakeFilesystems::usageOf(size, percent);
    }

    const VolumeState& data() const
    {
        return keeper->volumes().at(0);
    }

    std::uint64_t modelLvSize()
    {
        return lvmModel.lv("vg0", "data0").size;
    }

    Config config;
    test::FakeScheduler scheduler;
    test::FakeRunner runner;
    test::FakeLvm lvmModel;
    test::FakeFilesystems fs;
    test::FakeDisks disks;
    test::FakeStateStore state;
    test::FakeWatcher watcher;
    test::FakeExecutor executor;
    OpenGate gate;
    test::FakeTextFiles textFiles;
    test::FakeUsageProbes probes{scheduler, fs};
    test::RecordingListener listener;
    std::unique_ptr<Keeper> keeper; // last: destroyed before the fakes it uses
};

// ---- start ------------------------------------------------------------------------------------------------------

TEST_F(KeeperTest, StartIdentifiesTheLvByTheMountsDeviceNumberAndCallsReady)
{
    startKeeper();
    EXPECT_THAT(watcher.watchCalls, ElementsAre("/data"));
    ASSERT_FALSE(runner.calls().empty());
    EXPECT_EQ(runner.calls().front().argv, lvmArgv(lvm::lvsArgs()));

    const auto& v = data();
    EXPECT_TRUE(v.mounted);
    EXPECT_EQ(v.vg, "vg0");
    EXPECT_EQ(v.lv, "data0");
    EXPECT_EQ(v.lvName(), "vg0/data0");
    EXPECT_EQ(v.lvPath, "/dev/vg0/data0");
    EXPECT_EQ(v.lvSize, lvSize);
    EXPECT_EQ(v.vgFree, vgFree);
    EXPECT_EQ(v.extentSize, extent);
    EXPECT_EQ(v.usage.size, lvSize);
    EXPECT_FALSE(v.fsGrowPending);
    EXPECT_EQ(activityName(v.activity), "idle");
    EXPECT_EQ(runner.count("lvextend"), 0U);
    EXPECT_EQ(runner.count("resize2fs"), 0U);
    EXPECT_EQ(keeper->statusLine(), "/data 25% used, grows at 90% by 500M");
    EXPECT_THAT(listener.statuses, Contains("/data 25% used, grows at 90% by 500M"));
}

TEST_F(KeeperTest, StartRecordsTheImagesBehindTheWatchedVg)
{
    startKeeper();
    EXPECT_EQ(runner.count("pvs"), 1U);
    EXPECT_THAT(state.stored, ElementsAre("/media/disk0.img", "/media/disk1.img", "/media/disk2.img"));
}

TEST_F(KeeperTest, StartCallsReadyEvenWhenLvmCannotBeRead)
{
    runner.failNext("lvs", 5, "  /run/lock/lvm/V_vg0: open failed: Permission denied");
    startKeeper();
    EXPECT_TRUE(data().mounted);
    EXPECT_TRUE(data().vg.empty());
}

TEST_F(KeeperTest, MountThatIsNoLvIsNotIdentifiedAndCannotGrow)
{
    fs.mounts["/data"] = MountInfo{"/data", "/dev/sdb1", "ext4", 8, 17, false, "rw"};
    startKeeper();
    EXPECT_TRUE(data().vg.empty());

    GrowResult r;
    keeper->grow("/data", "", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::NotFound);
    EXPECT_THAT(messageOf(r.error), HasSubstr("/dev/sdb1"));

    fill(99);
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("lvextend"), 0U);
}

TEST_F(KeeperTest, StartHealsAnLvThatIsBiggerThanItsFilesystem)
{
    // A previous run extended the LV, then resize2fs failed or the daemon died.
    lvmModel.lv("vg0", "data0").size = lvSize + step;
    startKeeper();
    EXPECT_EQ(runner.count("resize2fs"), 1U);
    EXPECT_EQ(runner.count("lvextend"), 0U);
    EXPECT_EQ(runner.argvs("resize2fs").at(0), (std::vector<std::string>{"resize2fs", "/dev/mapper/vg0-data0"}));
    EXPECT_EQ(fs.usages["/data"].size, lvSize + step);
    EXPECT_FALSE(data().fsGrowPending);
    EXPECT_EQ(activityName(data().activity), "idle");
    EXPECT_THAT(listener.growFailures, IsEmpty());
    // The man page's Grown(reason heal), with the filesystem's sizes before and after.
    ASSERT_EQ(listener.grows.size(), 1U);
    EXPECT_EQ(listener.grows[0].reason, "heal");
    EXPECT_EQ(listener.grows[0].oldSize, lvSize);
    EXPECT_EQ(listener.grows[0].newSize, lvSize + step);
}

// ext4 as it really is: df shows 2.7G on the incident's 2.8G LV, because statvfs leaves out the metadata.
constexpr std::uint64_t ext4Metadata = 120 * MiB;

TEST_F(KeeperTest, StatvfsLeavingOutMetadataIsNotAFilesystemBehind)
{
    fs.fsSizes["/data"] = lvSize;
    fs.usages["/data"] = FakeFilesystems::usageOf(lvSize - ext4Metadata, 25);
    startKeeper();
    EXPECT_EQ(runner.count("resize2fs"), 0U);
    EXPECT_FALSE(data().fsGrowPending);
    EXPECT_EQ(keeper->filesystemSize(0), lvSize);

    // Nor before a grow: one lvextend, one resize2fs, no heal first.
    auto before = runner.calls().size();
    GrowResult r;
    keeper->grow("/data", "+500M", into(r));
    EXPECT_FALSE(r.error) << messageOf(r.error);
    EXPECT_THAT(runner.keysSince(before), ElementsAre("lvs", "lvextend", "resize2fs"));
    EXPECT_EQ(fs.fsSizes["/data"], lvSize + step);
}

TEST_F(KeeperTest, StartHealsByTheSizeTheSuperblockRecords)
{
    fs.fsSizes["/data"] = lvSize;
    fs.usages["/data"] = FakeFilesystems::usageOf(lvSize - ext4Metadata, 25);
    lvmModel.lv("vg0", "data0").size = lvSize + step; // extended without --resizefs
    startKeeper();
    EXPECT_EQ(runner.count("resize2fs"), 1U);
    EXPECT_EQ(runner.count("lvextend"), 0U);
    EXPECT_EQ(fs.fsSizes["/data"], lvSize + step);
    EXPECT_FALSE(data().fsGrowPending);
    EXPECT_THAT(listener.growFailures, IsEmpty());
}

TEST_F(KeeperTest, ResizeFailureIsHealedFirstByTheSuperblockSize)
{
    fs.fsSizes["/data"] = lvSize;
    fs.usages["/data"] = FakeFilesystems::usageOf(lvSize - ext4Metadata, 25);
    startKeeper();
    runner.failNext("resize2fs", 1, "resize2fs: Device or resource busy");
    GrowResult first;
    keeper->grow("/data", "+500M", into(first));
    ASSERT_TRUE(first.error);
    EXPECT_TRUE(data().fsGrowPending);

    auto before = runner.calls().size();
    GrowResult second;
    keeper->grow("/data", "+500M", into(second));
    EXPECT_FALSE(second.error) << messageOf(second.error);
    EXPECT_THAT(runner.keysSince(before), ElementsAre("lvs", "resize2fs", "lvextend", "resize2fs"));
    EXPECT_EQ(fs.fsSizes["/data"], lvSize + 2 * step);
}

TEST_F(KeeperTest, StartAboveTheThresholdGrowsAtOnce)
{
    fill(95);
    startKeeper();
    EXPECT_EQ(listener.thresholds.size(), 1U);
    EXPECT_EQ(runner.count("lvextend"), 1U);
    EXPECT_EQ(modelLvSize(), lvSize + step);
}

// ---- threshold ----------------------------------------------------------------------------------------------------

TEST_F(KeeperTest, ThresholdCrossedOnlyWhenCrossingUpward)
{
    config.volumes[0].autoGrow = false;
    startKeeper();
    keeper->onActivity("/data");
    EXPECT_THAT(listener.thresholds, IsEmpty());

    fill(91);
    keeper->onActivity("/data");
    ASSERT_EQ(listener.thresholds.size(), 1U);
    EXPECT_EQ(listener.thresholds[0].volume, "/data");
    EXPECT_NEAR(listener.thresholds[0].usedPercent, 91.0, 0.01);
    EXPECT_EQ(listener.thresholds[0].available, fs.usages["/data"].available);

    fill(92);
    keeper->onActivity("/data");
    fill(99);
    keeper->onActivity("/data");
    EXPECT_EQ(listener.thresholds.size(), 1U);

    fill(50);
    keeper->onActivity("/data");
    EXPECT_EQ(listener.thresholds.size(), 1U);
    fill(93);
    keeper->onActivity("/data");
    EXPECT_EQ(listener.thresholds.size(), 2U);
    EXPECT_EQ(runner.count("lvextend"), 0U); // AutoGrow=no
}

TEST_F(KeeperTest, ThresholdCrossedByInodes)
{
    config.volumes[0].autoGrow = false;
    startKeeper();
    fs.usages["/data"].inodesUsed = fs.usages["/data"].inodes * 95 / 100;
    keeper->onActivity("/data");
    EXPECT_EQ(listener.thresholds.size(), 1U);
}

TEST_F(KeeperTest, ActivityOnAnotherMountIsIgnored)
{
    startKeeper();
    fill(99);
    keeper->onActivity("/srv");
    EXPECT_THAT(listener.thresholds, IsEmpty());
    EXPECT_EQ(runner.count("lvextend"), 0U);
}

// ---- automatic grow -------------------------------------------------------------------------------------------------

TEST_F(KeeperTest, AutoGrowExtendsByTheStepThenGrowsTheFilesystem)
{
    startKeeper();
    auto before = runner.calls().size();
    fill(91);
    keeper->onActivity("/data");

    EXPECT_THAT(runner.keysSince(before), ElementsAre("lvs", "lvextend", "resize2fs"));
    EXPECT_EQ(runner.argvs("lvextend").at(0), lvmArgv({"lvextend", "--size", sizeArg(lvSize + step), "vg0/data0"}));
    EXPECT_EQ(runner.argvs("resize2fs").at(0), (std::vector<std::string>{"resize2fs", "/dev/mapper/vg0-data0"}));
    ASSERT_EQ(listener.grows.size(), 1U);
    EXPECT_EQ(listener.grows[0].volume, "/data");
    EXPECT_EQ(listener.grows[0].oldSize, lvSize);
    EXPECT_EQ(listener.grows[0].newSize, lvSize + step);
    EXPECT_EQ(listener.grows[0].reason, "threshold");
    EXPECT_EQ(data().lvSize, lvSize + step);
    EXPECT_EQ(data().vgFree, vgFree - step);
    EXPECT_EQ(activityName(data().activity), "idle");
    EXPECT_FALSE(data().aboveThreshold); // 91% of 2868M is 77% of 3368M
}

TEST_F(KeeperTest, AutoGrowStepIsRoundedUpToWholeExtents)
{
    config.volumes[0].growStep = 501 * MiB;
    startKeeper();
    fill(91);
    keeper->onActivity("/data");
    ASSERT_EQ(runner.count("lvextend"), 1U);
    EXPECT_EQ(runner.argvs("lvextend").at(0),
              lvmArgv({"lvextend", "--size", sizeArg(lvSize + 504 * MiB), "vg0/data0"}));
}

TEST_F(KeeperTest, XfsIsGrownThroughItsMountPoint)
{
    fs.mounts["/data"].fsType = "xfs";
    startKeeper();
    fill(91);
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("resize2fs"), 0U);
    ASSERT_EQ(runner.count("xfs_growfs"), 1U);
    EXPECT_EQ(runner.argvs("xfs_growfs").at(0), (std::vector<std::string>{"xfs_growfs", "/data"}));
    EXPECT_EQ(listener.grows.size(), 1U);
}

TEST_F(KeeperTest, ActivityWhileAGrowIsQueuedDoesNotQueueAnother)
{
    startKeeper();
    auto lvsBefore = runner.count("lvs");
    runner.holdNext("lvs");
    fill(91);
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("lvs"), lvsBefore + 1);
    EXPECT_EQ(activityName(data().activity), "growing");

    fill(92);
    keeper->onActivity("/data");
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("lvs"), lvsBefore + 1); // no second job

    ASSERT_TRUE(runner.release("lvs"));
    EXPECT_EQ(runner.count("lvextend"), 1U);
    EXPECT_EQ(listener.grows.size(), 1U);
    EXPECT_EQ(runner.count("lvs"), lvsBefore + 1);
}

TEST_F(KeeperTest, QueuedAutoGrowRereadsAndSkipsWhenNoLongerAbove)
{
    startKeeper();
    runner.holdNext("lvs");
    fill(91);
    keeper->onActivity("/data");

    // Before the job reads the sizes, someone frees space.
    fill(40);
    ASSERT_TRUE(runner.release("lvs"));
    EXPECT_EQ(runner.count("lvextend"), 0U);
    EXPECT_THAT(listener.grows, IsEmpty());
    EXPECT_THAT(listener.growFailures, IsEmpty());
    EXPECT_EQ(activityName(data().activity), "idle");
    EXPECT_FALSE(data().autoGrowQueued);
}

TEST_F(KeeperTest, QueuedAutoGrowSkipsWhenAnotherGrowAlreadyHappened)
{
    startKeeper();
    // An admin's grow is running when the threshold is crossed: the auto-grow waits behind it.
    runner.holdNext("lvextend");
    GrowResult manual;
    keeper->grow("/data", "+1G", into(manual));
    fill(91);
    keeper->onActivity("/data");
    ASSERT_TRUE(runner.release("lvextend"));
    EXPECT_EQ(manual.calls, 1);
    EXPECT_FALSE(manual.error);

    // The manual grow brought /data below GrowAt; the queued auto-grow must see that and not grow again.
    EXPECT_EQ(runner.count("lvextend"), 1U);
    EXPECT_EQ(modelLvSize(), lvSize + 1 * GiB);
    ASSERT_EQ(listener.grows.size(), 1U);
    EXPECT_EQ(listener.grows[0].reason, "request");
}

TEST_F(KeeperTest, CooldownDelaysTheNextAutomaticGrow)
{
    config.daemon.backstopInterval = 0s; // only these writes are looked at: no measured rate makes it urgent
    startKeeper();
    fill(91);
    keeper->onActivity("/data");
    ASSERT_EQ(runner.count("lvextend"), 1U);

    // A fast writer is over the threshold again right away.
    fill(95);
    keeper->onActivity("/data");
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("lvextend"), 1U);

    scheduler.advance(1999ms);
    EXPECT_EQ(runner.count("lvextend"), 1U);
    scheduler.advance(1ms);
    EXPECT_EQ(runner.count("lvextend"), 2U);
    // The writer filled about 580M in those 2 s: the second step is larger than GrowStep.
    EXPECT_GT(modelLvSize(), lvSize + 2 * step);
    EXPECT_EQ(listener.grows.size(), 2U);
}

TEST_F(KeeperTest, CooldownDoesNotDelayAGrowAfterItHasPassed)
{
    startKeeper();
    fill(91);
    keeper->onActivity("/data");
    scheduler.advance(5s);
    fill(95);
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("lvextend"), 2U);
}

TEST_F(KeeperTest, ReadOnlyVolumeIsNotAutoGrown)
{
    fs.mounts["/data"].readOnly = true;
    startKeeper();
    fill(99);
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("lvextend"), 0U);
}

// ---- manual grow ----------------------------------------------------------------------------------------------------

TEST_F(KeeperTest, GrowToAnAbsoluteSize)
{
    startKeeper();
    GrowResult r;
    keeper->grow("/data", "4G", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_FALSE(r.error) << messageOf(r.error);
    EXPECT_EQ(r.size, 4 * GiB);
    EXPECT_EQ(runner.argvs("lvextend").at(0), lvmArgv({"lvextend", "--size", sizeArg(4 * GiB), "vg0/data0"}));
    EXPECT_EQ(runner.count("resize2fs"), 1U);
    ASSERT_EQ(listener.grows.size(), 1U);
    EXPECT_EQ(listener.grows[0].oldSize, lvSize);
    EXPECT_EQ(listener.grows[0].newSize, 4 * GiB);
    EXPECT_EQ(listener.grows[0].reason, "request");
}

TEST_F(KeeperTest, GrowByAStepNamingTheLv)
{
    startKeeper();
    GrowResult r;
    keeper->grow("vg0/data0", "+500M", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_FALSE(r.error) << messageOf(r.error);
    EXPECT_EQ(r.size, lvSize + 500 * MiB);
    EXPECT_EQ(runner.argvs("lvextend").at(0),
              lvmArgv({"lvextend", "--size", sizeArg(lvSize + 500 * MiB), "vg0/data0"}));
}

TEST_F(KeeperTest, GrowWithoutASizeUsesTheConfiguredStep)
{
    config.volumes[0].growStep = 1 * GiB;
    startKeeper();
    GrowResult r;
    keeper->grow("/data/", "", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_FALSE(r.error) << messageOf(r.error);
    EXPECT_EQ(r.size, lvSize + 1 * GiB);
    EXPECT_EQ(runner.argvs("lvextend").at(0), lvmArgv({"lvextend", "--size", sizeArg(lvSize + 1 * GiB), "vg0/data0"}));
}

TEST_F(KeeperTest, GrowToASizeAlreadyReachedSucceedsWithoutLvextend)
{
    startKeeper();
    GrowResult r;
    keeper->grow("/data", "2G", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_FALSE(r.error) << messageOf(r.error);
    EXPECT_EQ(r.size, lvSize);
    EXPECT_EQ(runner.count("lvextend"), 0U);
    EXPECT_THAT(listener.grows, IsEmpty());
    EXPECT_EQ(activityName(data().activity), "idle");
}

TEST_F(KeeperTest, GrowWithABadSizeIsInvalidArgument)
{
    startKeeper();
    auto before = runner.calls().size();
    for (const char* size : {"4X", "-1G", "+0", "lots"})
    {
        GrowResult r;
        keeper->grow("/data", size, into(r));
        ASSERT_EQ(r.calls, 1) << size;
        EXPECT_EQ(kindOf(r.error), ErrorKind::InvalidArgument) << size;
    }
    EXPECT_EQ(runner.calls().size(), before);
}

TEST_F(KeeperTest, GrowOfAnUnknownVolumeIsNotFound)
{
    startKeeper();
    GrowResult r;
    keeper->grow("/srv", "", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::NotFound);
    EXPECT_THAT(messageOf(r.error), HasSubstr("/data (vg0/data0)"));

    GrowResult byLv;
    keeper->grow("vg0/scratch", "", into(byLv));
    EXPECT_EQ(kindOf(byLv.error), ErrorKind::NotFound);
    EXPECT_EQ(runner.count("lvextend"), 0U);
}

TEST_F(KeeperTest, GrowOfAnEmptyVolumeNameIsInvalidArgument)
{
    startKeeper();
    GrowResult r;
    keeper->grow("", "", into(r));
    EXPECT_EQ(kindOf(r.error), ErrorKind::InvalidArgument);
}

TEST_F(KeeperTest, GrowOfAReadOnlyVolumeIsBusy)
{
    fs.mounts["/data"].readOnly = true;
    startKeeper();
    GrowResult r;
    keeper->grow("/data", "+1G", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::Busy);
    EXPECT_THAT(messageOf(r.error), HasSubstr("Remount"));
    EXPECT_EQ(runner.count("lvextend"), 0U);
}

TEST_F(KeeperTest, GrowOfAnUnmountedVolumeIsNotFound)
{
    fs.mounts.erase("/data");
    startKeeper();
    GrowResult r;
    keeper->grow("/data", "+1G", into(r));
    EXPECT_EQ(kindOf(r.error), ErrorKind::NotFound);
    EXPECT_THAT(messageOf(r.error), HasSubstr("not mounted"));
}

TEST_F(KeeperTest, LvextendFailureIsCommandFailedAndSignalled)
{
    startKeeper();
    runner.failNext("lvextend", 5, "  Insufficient suitable allocatable extents for logical volume data0");
    GrowResult r;
    keeper->grow("/data", "+1G", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::CommandFailed);
    EXPECT_THAT(messageOf(r.error), HasSubstr("lvextend"));
    EXPECT_THAT(messageOf(r.error), HasSubstr("Insufficient suitable allocatable extents"));
    EXPECT_EQ(runner.count("resize2fs"), 0U);
    ASSERT_EQ(listener.growFailures.size(), 1U);
    EXPECT_EQ(listener.growFailures[0].first, "/data");
    EXPECT_THAT(listener.growFailures[0].second, HasSubstr("lvextend"));
    EXPECT_THAT(listener.grows, IsEmpty());
    EXPECT_EQ(data().lvSize, lvSize);
    EXPECT_FALSE(data().fsGrowPending);
    EXPECT_EQ(activityName(data().activity), "idle");
    EXPECT_THAT(data().lastError, HasSubstr("lvextend"));
}

TEST_F(KeeperTest, ResizeFailureLeavesAPendingFsGrowThatTheNextGrowHealsFirst)
{
    startKeeper();
    runner.failNext("resize2fs", 1, "resize2fs: Device or resource busy while trying to open /dev/mapper/vg0-data0");
    GrowResult first;
    keeper->grow("/data", "+500M", into(first));
    ASSERT_EQ(first.calls, 1);
    EXPECT_EQ(kindOf(first.error), ErrorKind::CommandFailed);
    EXPECT_THAT(messageOf(first.error), HasSubstr("resize2fs"));
    EXPECT_TRUE(data().fsGrowPending);
    EXPECT_EQ(activityName(data().activity), "fs-grow-pending");
    ASSERT_EQ(listener.growFailures.size(), 1U);
    EXPECT_THAT(listener.grows, IsEmpty());
    EXPECT_EQ(modelLvSize(), lvSize + step); // the LV did grow

    auto before = runner.calls().size();
    GrowResult second;
    keeper->grow("/data", "+500M", into(second));
    ASSERT_EQ(second.calls, 1);
    EXPECT_FALSE(second.error) << messageOf(second.error);
    EXPECT_THAT(runner.keysSince(before), ElementsAre("lvs", "resize2fs", "lvextend", "resize2fs"));
    EXPECT_EQ(second.size, lvSize + 2 * step);
    EXPECT_FALSE(data().fsGrowPending);
    EXPECT_EQ(activityName(data().activity), "idle");
    EXPECT_EQ(fs.usages["/data"].size, lvSize + 2 * step);
}

TEST_F(KeeperTest, ManualGrowBeyondMaxSizeIsNoSpaceButNoExhaustionWhileThereIsRoom)
{
    config.volumes[0].maxSize = lvSize;
    startKeeper();
    GrowResult r;
    keeper->grow("/data", "+1G", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::NoSpace);
    EXPECT_THAT(messageOf(r.error), HasSubstr("MaxSize"));
    EXPECT_EQ(runner.count("lvextend"), 0U);
    ASSERT_EQ(listener.growFailures.size(), 1U);
    // The volume is a quarter used: it has space. SpaceExhausted says a volume ran out, not that a request was big.
    EXPECT_THAT(listener.exhausted, IsEmpty());
    EXPECT_FALSE(data().exhausted);
}

TEST_F(KeeperTest, AutoGrowAtMaxSizeGivesUpUntilUsageDropsBelowGrowAt)
{
    config.volumes[0].maxSize = lvSize;
    startKeeper();
    auto lvsBefore = runner.count("lvs");
    fill(95);
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("lvs"), lvsBefore + 1);
    EXPECT_EQ(listener.exhausted.size(), 1U);
    EXPECT_EQ(runner.count("lvextend"), 0U);

    // Still full: no more jobs, no more signals, however long it stays there.
    for (int n = 0; n < 5; ++n)
    {
        scheduler.advance(10s);
        keeper->onActivity("/data");
    }
    EXPECT_EQ(runner.count("lvs"), lvsBefore + 1);
    EXPECT_EQ(listener.exhausted.size(), 1U);

    // A new episode: space was freed, then filled again.
    fill(50);
    keeper->onActivity("/data");
    fill(95);
    keeper->onActivity("/data");
    EXPECT_EQ(listener.exhausted.size(), 2U);
}

TEST_F(KeeperTest, AutoGrowStopsAtMaxSizeRoundedDownToExtents)
{
    config.volumes[0].maxSize = lvSize + 102 * MiB;
    startKeeper();
    fill(95);
    keeper->onActivity("/data");
    ASSERT_EQ(runner.count("lvextend"), 1U);
    EXPECT_EQ(runner.argvs("lvextend").at(0),
              lvmArgv({"lvextend", "--size", sizeArg(lvSize + 100 * MiB), "vg0/data0"}));
}

TEST_F(KeeperTest, ManualGrowBeyondTheVgIsNoSpaceNamingFreeSpaceAndAddDisk)
{
    lvmModel.setVgFree("vg0", 100 * MiB);
    startKeeper();
    GrowResult r;
    keeper->grow("/data", "", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::NoSpace);
    EXPECT_THAT(messageOf(r.error), HasSubstr("vg0 has 100M free"));
    EXPECT_THAT(messageOf(r.error), HasSubstr("500M more"));
    EXPECT_THAT(messageOf(r.error), HasSubstr("AddDisk"));
    EXPECT_EQ(runner.count("lvextend"), 0U); // no partial grow on request
    ASSERT_EQ(listener.growFailures.size(), 1U);
    EXPECT_THAT(listener.growFailures[0].second, HasSubstr("AddDisk"));
    // 100M is still there for auto-grow to take: the VG is not exhausted.
    EXPECT_THAT(listener.exhausted, IsEmpty());
}

TEST_F(KeeperTest, AutoGrowTakesWhatIsLeftInTheVg)
{
    lvmModel.setVgFree("vg0", 100 * MiB);
    startKeeper();
    fill(95);
    keeper->onActivity("/data");
    ASSERT_EQ(runner.count("lvextend"), 1U);
    EXPECT_EQ(runner.argvs("lvextend").at(0),
              lvmArgv({"lvextend", "--size", sizeArg(lvSize + 100 * MiB), "vg0/data0"}));
    ASSERT_EQ(listener.grows.size(), 1U);
    EXPECT_EQ(listener.grows[0].newSize, lvSize + 100 * MiB);
}

TEST_F(KeeperTest, AutoGrowInAFullVgIsExhausted)
{
    lvmModel.setVgFree("vg0", 0);
    startKeeper();
    fill(95);
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("lvextend"), 0U);
    ASSERT_EQ(listener.exhausted.size(), 1U);
    EXPECT_THAT(listener.exhausted[0].second, HasSubstr("vg0"));
    EXPECT_THAT(listener.exhausted[0].second, HasSubstr("AddDisk"));
    ASSERT_TRUE(data().exhausted);
    EXPECT_EQ(data().exhausted->rfind("vg-full:", 0), 0U);
    // Nothing was tried, so nothing failed.
    EXPECT_THAT(listener.growFailures, IsEmpty());
}

TEST_F(KeeperTest, JobsOnOneVgAreSerialized)
{
    startKeeper();
    runner.holdNext("lvextend");
    auto before = runner.calls().size();
    GrowResult first;
    GrowResult second;
    keeper->grow("/data", "+100M", into(first));
    keeper->grow("/data", "+200M", into(second));
    EXPECT_THAT(runner.keysSince(before), ElementsAre("lvs", "lvextend"));
    EXPECT_EQ(first.calls, 0);
    EXPECT_EQ(second.calls, 0);

    ASSERT_TRUE(runner.release("lvextend"));
    EXPECT_THAT(runner.keysSince(before), ElementsAre("lvs", "lvextend", "resize2fs", "lvs", "lvextend", "resize2fs"));
    EXPECT_EQ(first.calls, 1);
    EXPECT_EQ(second.calls, 1);
    EXPECT_EQ(first.size, lvSize + 100 * MiB);
    // The second job read the LV after the first had grown it.
    EXPECT_EQ(second.size, lvSize + 300 * MiB);
    EXPECT_EQ(runner.argvs("lvextend").at(1),
              lvmArgv({"lvextend", "--size", sizeArg(lvSize + 300 * MiB), "vg0/data0"}));
}

TEST_F(KeeperTest, AddDiskWaitsForAGrowOnTheSameVg)
{
    startKeeper();
    runner.holdNext("lvextend");
    GrowResult grow;
    DiskResult disk;
    keeper->grow("/data", "+100M", into(grow));
    keeper->addDisk("vg0", "", into(disk));
    EXPECT_EQ(runner.count("vgs"), 0U);
    EXPECT_THAT(disks.created, IsEmpty());
    ASSERT_TRUE(runner.release("lvextend"));
    EXPECT_EQ(runner.count("vgs"), 1U);
    EXPECT_FALSE(disk.error) << messageOf(disk.error);
}

// ---- add disk -------------------------------------------------------------------------------------------------------

TEST_F(KeeperTest, AddDiskCreatesAttachesAndJoinsAnImage)
{
    startKeeper();
    auto before = runner.calls().size();
    DiskResult r;
    keeper->addDisk("vg0", "", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_FALSE(r.error) << messageOf(r.error);
    EXPECT_EQ(r.image, "/media/disk3.img");
    EXPECT_EQ(r.device, "/dev/loop3");

    EXPECT_THAT(runner.keysSince(before), ElementsAre("vgs", "pvcreate", "vgextend"));
    EXPECT_EQ(runner.argvs("vgs").at(0), lvmArgv(lvm::vgsArgs()));
    EXPECT_EQ(runner.argvs("pvcreate").at(0), lvmArgv({"pvcreate", "/dev/loop3"}));
    EXPECT_EQ(runner.argvs("vgextend").at(0), lvmArgv({"vgextend", "vg0", "/dev/loop3"}));
    ASSERT_EQ(disks.created.size(), 1U);
    EXPECT_EQ(disks.created[0], std::make_pair(std::string("/media/disk3.img"), 1800 * MiB));
    EXPECT_THAT(disks.attached, ElementsAre("/media/disk3.img"));
    EXPECT_THAT(disks.detached, IsEmpty());
    EXPECT_THAT(disks.removed, IsEmpty());
    EXPECT_THAT(state.stored, Contains("/media/disk3.img"));

    ASSERT_EQ(listener.disksAdded.size(), 1U);
    EXPECT_EQ(listener.disksAdded[0].vg, "vg0");
    EXPECT_EQ(listener.disksAdded[0].image, "/media/disk3.img");
    EXPECT_EQ(listener.disksAdded[0].device, "/dev/loop3");
    EXPECT_EQ(listener.disksAdded[0].size, 1800 * MiB);
    EXPECT_EQ(data().vgFree, vgFree + 1800 * MiB);
}

TEST_F(KeeperTest, AddDiskWithAnExplicitSizeRoundsToMebibytes)
{
    startKeeper();
    DiskResult r;
    keeper->addDisk("vg0", "1G", into(r));
    EXPECT_FALSE(r.error) << messageOf(r.error);
    ASSERT_EQ(disks.created.size(), 1U);
    EXPECT_EQ(disks.created[0].second, 1 * GiB);
}

TEST_F(KeeperTest, AddDiskRejectsRelativeAndTinySizes)
{
    startKeeper();
    for (const char* size : {"+1G", "8M", "junk"})
    {
        DiskResult r;
        keeper->addDisk("vg0", size, into(r));
        ASSERT_EQ(r.calls, 1) << size;
        EXPECT_EQ(kindOf(r.error), ErrorKind::InvalidArgument) << size;
    }
    EXPECT_THAT(disks.created, IsEmpty());
}

TEST_F(KeeperTest, AddDiskUndoesEverythingWhenVgextendFails)
{
    startKeeper();
    std::size_t detachedAtPvremove = 99;
    runner.setHandler("pvremove",
                      [&](const std::vector<std::string>&)
                      {
                          detachedAtPvremove = disks.detached.size();
                          return test::FakeRunner::Response{};
                      });
    runner.failNext("vgextend", 5, "  Volume group \"vg0\" has insufficient free space");
    auto before = runner.calls().size();
    DiskResult r;
    keeper->addDisk("vg0", "", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::CommandFailed);
    EXPECT_THAT(messageOf(r.error), HasSubstr("vgextend"));

    EXPECT_THAT(runner.keysSince(before), ElementsAre("vgs", "pvcreate", "vgextend", "pvremove"));
    EXPECT_EQ(runner.argvs("pvremove").at(0), lvmArgv({"pvremove", "/dev/loop3"}));
    EXPECT_EQ(detachedAtPvremove, 0U); // the PV label goes before the device
    EXPECT_THAT(disks.detached, ElementsAre("/dev/loop3"));
    EXPECT_THAT(disks.removed, ElementsAre("/media/disk3.img"));
    EXPECT_EQ(disks.files.count("/media/disk3.img"), 0U);
    EXPECT_THAT(state.stored, Not(Contains("/media/disk3.img")));
    EXPECT_THAT(listener.disksAdded, IsEmpty());
}

TEST_F(KeeperTest, AddDiskRemovesTheImageWhenAttachFails)
{
    startKeeper();
    disks.attachFails = true;
    DiskResult r;
    keeper->addDisk("vg0", "", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::Failed);
    EXPECT_THAT(messageOf(r.error), HasSubstr("loop device"));
    EXPECT_THAT(disks.removed, ElementsAre("/media/disk3.img"));
    EXPECT_EQ(runner.count("pvcreate"), 0U);
    EXPECT_THAT(listener.disksAdded, IsEmpty());
}

TEST_F(KeeperTest, AddDiskNeverWritesOverASignature)
{
    startKeeper();
    disks.signatures["/dev/loop3"] = "ext4";
    DiskResult r;
    keeper->addDisk("vg0", "", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_TRUE(r.error);
    EXPECT_EQ(runner.count("pvcreate"), 0U);
    EXPECT_THAT(disks.detached, ElementsAre("/dev/loop3"));
    EXPECT_THAT(disks.removed, ElementsAre("/media/disk3.img"));
}

TEST_F(KeeperTest, AddDiskWithoutHostSpaceNamesWhatHoldsDeletedFiles)
{
    startKeeper();
    fs.usages["/media"] = FakeFilesystems::usageOf(40 * GiB, 95); // 2.0G free < 1800M + 256M
    fs.held = {HeldDeletedFile{381, 0, "python3", "/var/log/app/debug.log", 3 * GiB}};
    DiskResult r;
    keeper->addDisk("vg0", "", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::NoHostSpace);
    auto message = messageOf(r.error);
    EXPECT_THAT(message, HasSubstr("/media"));
    EXPECT_THAT(message, HasSubstr("ReserveHostSpace"));
    EXPECT_THAT(message, HasSubstr("python3 (pid 381)"));
    EXPECT_THAT(message, HasSubstr("/var/log/app/debug.log"));
    EXPECT_THAT(disks.created, IsEmpty());
    EXPECT_EQ(runner.count("pvcreate"), 0U);
}

TEST_F(KeeperTest, AddDiskWithExactlyTheReserveLeftFits)
{
    startKeeper();
    fs.usages["/media"].available = 1800 * MiB + 256 * MiB;
    DiskResult r;
    keeper->addDisk("vg0", "", into(r));
    EXPECT_FALSE(r.error) << messageOf(r.error);
}

TEST_F(KeeperTest, AddDiskToAnUnwatchedVgIsNotFound)
{
    startKeeper();
    auto before = runner.calls().size();
    DiskResult r;
    keeper->addDisk("vg9", "", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::NotFound);
    EXPECT_THAT(messageOf(r.error), HasSubstr("vg0"));
    EXPECT_EQ(runner.calls().size(), before);
    EXPECT_THAT(disks.created, IsEmpty());
}

TEST_F(KeeperTest, AddDiskRespectsMaxDisks)
{
    config.disks.maxDisks = 3;
    startKeeper();
    DiskResult r;
    keeper->addDisk("vg0", "", into(r));
    EXPECT_EQ(kindOf(r.error), ErrorKind::NoSpace);
    EXPECT_THAT(messageOf(r.error), HasSubstr("MaxDisks"));
    EXPECT_THAT(disks.created, IsEmpty());
}

TEST_F(KeeperTest, AddedDiskGrowsAWaitingVolumeWithoutWaitingForAWrite)
{
    // The VG ran dry with /data over GrowAt; writers now fail with ENOSPC, which fanotify does not report.
    lvmModel.setVgFree("vg0", 0);
    startKeeper();
    scheduler.advance(6s); // the fill below is not one fast writer: no fill rate, the plain GrowStep
    fill(99);
    keeper->onActivity("/data");
    ASSERT_EQ(listener.exhausted.size(), 1U);
    scheduler.advance(5s); // past the cooldown of the failed attempt

    // The admin does what SpaceExhausted said: AddDisk. /data must grow now, not at the next write or backstop.
    DiskResult r;
    keeper->addDisk("vg0", "", into(r));
    ASSERT_FALSE(r.error) << messageOf(r.error);
    ASSERT_EQ(runner.count("lvextend"), 1U);
    EXPECT_EQ(runner.argvs("lvextend").at(0), lvmArgv({"lvextend", "--size", sizeArg(lvSize + step), "vg0/data0"}));
    ASSERT_EQ(listener.grows.size(), 1U);
    EXPECT_EQ(listener.grows[0].reason, "threshold");
}

TEST_F(KeeperTest, OversizedManualGrowDoesNotStopAutoGrow)
{
    // An admin asks for more than the VG has: refused, but the VG is not exhausted and auto-grow must go on.
    startKeeper();
    GrowResult r;
    keeper->grow("/data", "+100G", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::NoSpace);
    EXPECT_THAT(listener.exhausted, IsEmpty());

    scheduler.advance(6s); // past the cooldown, and the jump below is no fill rate
    fill(95);
    keeper->onActivity("/data");
    ASSERT_EQ(runner.count("lvextend"), 1U);
    EXPECT_EQ(runner.argvs("lvextend").at(0), lvmArgv({"lvextend", "--size", sizeArg(lvSize + step), "vg0/data0"}));
}

TEST_F(KeeperTest, ManualGrowInAFullVgIsNoSpaceButTheVolumeIsNotExhaustedBelowGrowAt)
{
    lvmModel.setVgFree("vg0", 0);
    startKeeper();
    GrowResult r;
    keeper->grow("/data", "", into(r));
    EXPECT_EQ(kindOf(r.error), ErrorKind::NoSpace);
    EXPECT_THAT(listener.exhausted, IsEmpty());
    // Once it fills up it is: the VG has nothing for it and no disk comes (AutoAddDisk=no).
    fill(95);
    keeper->onActivity("/data");
    ASSERT_EQ(listener.exhausted.size(), 1U);
    EXPECT_THAT(listener.exhausted[0].second, HasSubstr("vg0"));
}

TEST_F(KeeperTest, HugeGrowRequestsAreRefusedAndTheVgKeepsWorking)
{
    startKeeper();
    for (const char* size : {"18446744073709551615", "+18446744073709551615", "+16777215T"})
    {
        GrowResult r;
        keeper->grow("/data", size, into(r));
        ASSERT_EQ(r.calls, 1) << size;
        EXPECT_EQ(kindOf(r.error), ErrorKind::NoSpace) << size;
    }
    EXPECT_EQ(runner.count("lvextend"), 0U);

    // The VG's job lane is not wedged.
    GrowResult after;
    keeper->grow("/data", "+100M", into(after));
    ASSERT_EQ(after.calls, 1);
    EXPECT_FALSE(after.error) << messageOf(after.error);
}

// ---- remount and mounts ---------------------------------------------------------------------------------------------

TEST_F(KeeperTest, RemountOfAReadOnlyVolume)
{
    fs.mounts["/data"].readOnly = true;
    fs.usages["/data"].readOnly = true;
    startKeeper();
    EXPECT_TRUE(data().readOnly);
    ASSERT_EQ(listener.readOnlys.size(), 1U);

    RemountResult r;
    keeper->remount("/data", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_FALSE(r.error) << messageOf(r.error);
    EXPECT_THAT(fs.remounts, ElementsAre("/data"));
    EXPECT_THAT(listener.remounts, ElementsAre("/data"));
    EXPECT_FALSE(data().readOnly);
    EXPECT_EQ(activityName(data().activity), "idle");
}

TEST_F(KeeperTest, RemountWithFilesystemErrorsRefusesAndNamesFsck)
{
    fs.mounts["/data"].readOnly = true;
    fs.errors["/data"] = 3;
    startKeeper();
    ASSERT_EQ(listener.readOnlys.size(), 1U);
    EXPECT_THAT(listener.readOnlys[0].second, HasSubstr("3 errors"));

    RemountResult r;
    keeper->remount("/data", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::FilesystemErrors);
    EXPECT_THAT(messageOf(r.error), HasSubstr("fsck.ext4 -f /dev/mapper/vg0-data0"));
    EXPECT_THAT(fs.remounts, IsEmpty());
    EXPECT_THAT(listener.remounts, IsEmpty());
    EXPECT_TRUE(data().fsErrors);
}

TEST_F(KeeperTest, RemountOfAnXfsWithErrorsNamesXfsRepair)
{
    fs.mounts["/data"].readOnly = true;
    fs.mounts["/data"].fsType = "xfs";
    fs.errors["/data"] = 1;
    startKeeper();
    RemountResult r;
    keeper->remount("/data", into(r));
    EXPECT_EQ(kindOf(r.error), ErrorKind::FilesystemErrors);
    EXPECT_THAT(messageOf(r.error), HasSubstr("xfs_repair /dev/mapper/vg0-data0"));
}

TEST_F(KeeperTest, RemountOfAReadWriteVolumeDoesNothing)
{
    startKeeper();
    RemountResult r;
    keeper->remount("/data", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_FALSE(r.error) << messageOf(r.error);
    EXPECT_THAT(fs.remounts, IsEmpty());
    EXPECT_THAT(listener.remounts, IsEmpty());
}

TEST_F(KeeperTest, RemountFailureIsReported)
{
    fs.mounts["/data"].readOnly = true;
    fs.remountFails = true;
    startKeeper();
    RemountResult r;
    keeper->remount("/data", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::CommandFailed);
    EXPECT_THAT(listener.remounts, IsEmpty());
    EXPECT_EQ(activityName(data().activity), "idle");
}

TEST_F(KeeperTest, RemountOfAnUnknownVolumeIsNotFound)
{
    startKeeper();
    RemountResult r;
    keeper->remount("/srv", into(r));
    EXPECT_EQ(kindOf(r.error), ErrorKind::NotFound);
}

TEST_F(KeeperTest, MountTurningReadOnlyIsSignalledOnce)
{
    startKeeper();
    EXPECT_THAT(listener.readOnlys, IsEmpty());
    fs.mounts["/data"].readOnly = true;
    fs.usages["/data"].readOnly = true;
    keeper->onMountsChanged();
    ASSERT_EQ(listener.readOnlys.size(), 1U);
    EXPECT_EQ(listener.readOnlys[0].first, "/data");
    EXPECT_EQ(listener.readOnlys[0].second, "mounted read-only");
    EXPECT_TRUE(data().readOnly);

    keeper->onMountsChanged();
    EXPECT_EQ(listener.readOnlys.size(), 1U);
    scheduler.advance(1s);
    EXPECT_THAT(keeper->statusLine(), HasSubstr("READ-ONLY"));
}

TEST_F(KeeperTest, KernelRemountReadOnlyAfterAnErrorIsSignalledAtOnce)
{
    // ext4 errors=remount-ro flips the superblock read-only: no mount table event, no more writes to report.
    startKeeper();
    fs.mounts["/data"].readOnly = true;
    fs.usages["/data"].readOnly = true;
    fs.errors["/data"] = 2;
    keeper->onFilesystemError("/data");
    EXPECT_TRUE(data().fsErrors);
    EXPECT_TRUE(data().readOnly);
    ASSERT_EQ(listener.readOnlys.size(), 1U);
    EXPECT_THAT(listener.readOnlys[0].second, HasSubstr("2 errors"));

    GrowResult r;
    keeper->grow("/data", "+1G", into(r));
    EXPECT_EQ(kindOf(r.error), ErrorKind::Busy);
    EXPECT_EQ(runner.count("lvextend"), 0U);
}

TEST_F(KeeperTest, FilesystemErrorOnAWritableMountKeepsItWritable)
{
    startKeeper();
    fs.errors["/data"] = 1;
    keeper->onFilesystemError("/data");
    EXPECT_TRUE(data().fsErrors);
    EXPECT_FALSE(data().readOnly);
    EXPECT_THAT(listener.readOnlys, IsEmpty());
}

TEST_F(KeeperTest, StartDoesNotTryToHealAReadOnlyVolume)
{
    // The incident: the LV was extended by hand without --resizefs, and /data is mounted read-only.
    lvmModel.lv("vg0", "data0").size = lvSize + step;
    fs.mounts["/data"].readOnly = true;
    fs.usages["/data"].readOnly = true;
    startKeeper();
    EXPECT_EQ(runner.count("resize2fs"), 0U); // online resize cannot work on a read-only mount
    EXPECT_THAT(listener.growFailures, IsEmpty());
    EXPECT_TRUE(data().fsGrowPending);

    // Once read-write, the filesystem step is finished.
    RemountResult r;
    keeper->remount("/data", into(r));
    ASSERT_FALSE(r.error) << messageOf(r.error);
    EXPECT_EQ(runner.count("resize2fs"), 1U);
    EXPECT_EQ(runner.count("lvextend"), 0U);
    EXPECT_FALSE(data().fsGrowPending);
    EXPECT_EQ(fs.usages["/data"].size, lvSize + step);
    EXPECT_EQ(activityName(data().activity), "idle");
}

TEST_F(KeeperTest, UnmountStopsWatchingAndRemountStartsAgain)
{
    startKeeper();
    fs.mounts.erase("/data");
    keeper->onMountsChanged();
    EXPECT_THAT(watcher.unwatchCalls, ElementsAre("/data"));
    EXPECT_FALSE(data().mounted);
    EXPECT_EQ(keeper->statusLine(), "/data not mounted");

    auto lvsBefore = runner.count("lvs");
    fs.mounts["/data"] = MountInfo{"/data", "/dev/mapper/vg0-data0", "ext4", 253, 0, false, "rw"};
    keeper->onMountsChanged();
    EXPECT_THAT(watcher.watchCalls, ElementsAre("/data", "/data"));
    EXPECT_EQ(runner.count("lvs"), lvsBefore + 1); // a new filesystem is identified again
    EXPECT_EQ(data().vg, "vg0");
}

// ---- loop devices ---------------------------------------------------------------------------------------------------

class AdoptTest : public KeeperTest
{
  protected:
    AdoptTest()
    {
        config.disks.adoptLoopDevices = true;
        disks.files["/media/extra.img"] = 1 * GiB;
        disks.loops.push_back(extra);
    }

    /// The daemon starts, the device's uevent comes, and nothing is run, recorded or announced.
    void expectLeftAlone()
    {
        startKeeper();
        auto before = runner.calls().size();
        keeper->onLoopDevice("add", extra);
        EXPECT_THAT(runner.keysSince(before), IsEmpty());
        EXPECT_THAT(listener.disksAdded, IsEmpty());
        EXPECT_THAT(state.stored, Not(Contains("/media/extra.img")));
    }

    LoopDevice extra{"/dev/loop7", "/media/extra.img"};
};

TEST_F(AdoptTest, BlankImageInTheImageDirectoryJoinsTheVg)
{
    startKeeper();
    auto before = runner.calls().size();
    keeper->onLoopDevice("add", extra);
    EXPECT_THAT(runner.keysSince(before), ElementsAre("pvcreate", "vgextend"));
    EXPECT_EQ(runner.argvs("pvcreate").at(0), lvmArgv({"pvcreate", "/dev/loop7"}));
    EXPECT_EQ(runner.argvs("vgextend").at(0), lvmArgv({"vgextend", "vg0", "/dev/loop7"}));
    ASSERT_EQ(listener.disksAdded.size(), 1U);
    EXPECT_EQ(listener.disksAdded[0].vg, "vg0");
    EXPECT_EQ(listener.disksAdded[0].image, "/media/extra.img");
    EXPECT_EQ(listener.disksAdded[0].device, "/dev/loop7");
    EXPECT_EQ(listener.disksAdded[0].size, 1 * GiB);
    EXPECT_THAT(state.stored, Contains("/media/extra.img"));
}

TEST_F(AdoptTest, DeviceWithASignatureIsLeftAlone)
{
    disks.signatures["/dev/loop7"] = "ext4";
    expectLeftAlone();
}

TEST_F(AdoptTest, AnImageAnyUserCouldHavePlacedIsNotAdopted)
{
    // A file not owned by root, a symlink, a directory others may write: what lvkeeper-attach refuses at boot.
    disks.refusedImages["/media/extra.img"] = "owned by uid 1000, not root";
    expectLeftAlone();
}

TEST_F(AdoptTest, NothingIsAdoptedWhenAdoptLoopDevicesIsOff)
{
    config.disks.adoptLoopDevices = false;
    startKeeper();
    auto before = runner.calls().size();
    keeper->onLoopDevice("add", extra);
    EXPECT_THAT(runner.keysSince(before), IsEmpty());
    EXPECT_THAT(listener.disksAdded, IsEmpty());
}

TEST_F(AdoptTest, ImageOutsideTheImageDirectoryIsLeftAlone)
{
    startKeeper();
    auto before = runner.calls().size();
    keeper->onLoopDevice("add", LoopDevice{"/dev/loop8", "/home/user/vm.img"});
    keeper->onLoopDevice("add", LoopDevice{"/dev/loop9", "/media-old/disk.img"});
    EXPECT_THAT(runner.keysSince(before), IsEmpty());
}

TEST_F(AdoptTest, AnImageInASubdirectoryOfTheImageDirectoryIsLeftAlone)
{
    // udisks2 mounts a user's media at /media/<user>/...: anyone active may loop-attach files there.
    startKeeper();
    disks.files["/media/alice/usb/disk.img"] = 1 * GiB;
    auto before = runner.calls().size();
    keeper->onLoopDevice("add", LoopDevice{"/dev/loop8", "/media/alice/usb/disk.img"});
    EXPECT_THAT(runner.keysSince(before), IsEmpty());
}

TEST_F(AdoptTest, RemoveEventsAreIgnored)
{
    startKeeper();
    auto before = runner.calls().size();
    keeper->onLoopDevice("remove", extra);
    keeper->onLoopDevice("change", LoopDevice{"/dev/loop7", ""});
    EXPECT_THAT(runner.keysSince(before), IsEmpty());
}

TEST_F(AdoptTest, TheDeviceAddDiskAttachedIsNotAdoptedTwice)
{
    startKeeper();
    // udev reports the loop device AddDisk binds while the job is still running.
    runner.holdNext("pvcreate");
    DiskResult r;
    keeper->addDisk("vg0", "", into(r));
    keeper->onLoopDevice("add", LoopDevice{"/dev/loop3", "/media/disk3.img"});
    ASSERT_TRUE(runner.release("pvcreate"));
    EXPECT_FALSE(r.error) << messageOf(r.error);
    EXPECT_EQ(runner.count("pvcreate"), 1U);
    EXPECT_EQ(listener.disksAdded.size(), 1U);
}

// ---- properties -----------------------------------------------------------------------------------------------------

TEST_F(KeeperTest, VolumeChangedIsRateLimited)
{
    config.volumes[0].autoGrow = false;
    startKeeper();
    scheduler.advance(1s);
    listener.changed.clear();

    // A burst at one instant: nothing at once, one batch when the interval ends.
    for (int n = 0; n < 50; ++n)
    {
        fill(30 + n * 0.1);
        keeper->onActivity("/data");
    }
    EXPECT_THAT(listener.changed, IsEmpty());
    scheduler.advance(250ms);
    EXPECT_THAT(listener.changed, ElementsAre(0U));

    // A steady writer for two seconds: at most one batch per 250ms interval.
    listener.changed.clear();
    for (int ms = 0; ms < 2000; ++ms)
    {
        fill(40 + ms * 0.01);
        keeper->onActivity("/data");
        scheduler.advance(1ms);
    }
    EXPECT_LE(listener.changed.size(), 2000U / 250U + 1U);
    EXPECT_GE(listener.changed.size(), 2000U / 250U - 1U);
}

TEST_F(KeeperTest, StatusChangesAreRateLimitedWithProperties)
{
    startKeeper();
    scheduler.advance(1s);
    auto before = listener.statuses.size();
    fill(50);
    keeper->onActivity("/data");
    fill(75);
    keeper->onActivity("/data");
    scheduler.advance(250ms);
    ASSERT_EQ(listener.statuses.size(), before + 1);
    EXPECT_EQ(listener.statuses.back(), "/data 75% used, grows at 90% by 500M");
}

// ---- issue 5: fill rate, automatic disks, exhaustion ------------------------------------------------------

/// A writer at bytesPerSecond for duration, as fanotify reports it: an event every 20 ms.
void write(test::FakeScheduler& scheduler, FakeFilesystems& fs, Keeper& keeper, double bytesPerSecond,
           std::chrono::milliseconds duration)
{
    for (auto elapsed = 0ms; elapsed < duration; elapsed += 20ms)
    {
        scheduler.advance(20ms);
        auto& u = fs.usages["/data"];
        auto bytes = static_cast<std::uint64_t>(bytesPerSecond * 0.020);
        bytes = std::min(bytes, u.available);
        u.used += bytes;
        u.available -= bytes;
        keeper.onActivity("/data");
    }
}

TEST_F(KeeperTest, FastWriterGrowsBeforeGrowAtByALargerStep)
{
    startKeeper();
    scheduler.advance(10s);
    fill(60); // 60% of 2868M: about 1.1G available
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("lvextend"), 0U);

    // 200M/s with an assumed 5 s grow needs 2G of headroom: grow long before 90%.
    write(scheduler, fs, *keeper, 200.0 * MiB, 500ms);
    ASSERT_EQ(runner.count("lvextend"), 1U);
    EXPECT_LT(fs.usages["/data"].usedPercent(), 90.0);
    EXPECT_TRUE(listener.thresholds.empty());
    EXPECT_GT(data().fillRate, 150.0 * MiB);
    EXPECT_LT(data().fillRate, 250.0 * MiB);
    // The step is twice the headroom, capped by the VG (2G free): more than GrowStep.
    EXPECT_GT(modelLvSize(), lvSize + step);
}

TEST_F(KeeperTest, LastGrowDurationIsMeasuredFromJobStartToFilesystemGrown)
{
    startKeeper();
    EXPECT_EQ(data().lastGrowDuration, 0ms);
    runner.holdNext("resize2fs");
    GrowResult r;
    keeper->grow("/data", "+100M", into(r));
    scheduler.advance(3500ms);
    ASSERT_TRUE(runner.release("resize2fs"));
    ASSERT_FALSE(r.error);
    EXPECT_EQ(data().lastGrowDuration, 3500ms);
}

TEST_F(KeeperTest, SlowWriterWaitsForGrowAtAndGrowsByGrowStep)
{
    startKeeper();
    scheduler.advance(10s);
    fill(89.9);
    keeper->onActivity("/data");
    write(scheduler, fs, *keeper, 1.0 * MiB, 5000ms);
    ASSERT_EQ(runner.count("lvextend"), 1U);
    EXPECT_EQ(modelLvSize(), lvSize + step);
    EXPECT_EQ(listener.thresholds.size(), 1U);
}

TEST_F(KeeperTest, FillRateFadesWhenTheWriterStops)
{
    startKeeper();
    scheduler.advance(10s);
    fill(20);
    keeper->onActivity("/data");
    write(scheduler, fs, *keeper, 10.0 * MiB, 1000ms);
    EXPECT_GT(data().fillRate, 0.0);
    scheduler.advance(10s);
    keeper->onBackstop();
    EXPECT_EQ(data().fillRate, 0.0);
}

TEST_F(KeeperTest, AutoAddDiskAddsADiskBeforeGrowingWhenTheVgIsEmpty)
{
    config.disks.autoAddDisk = true;
    lvmModel.setVgFree("vg0", 0);
    startKeeper();
    scheduler.advance(10s);
    fill(95);
    keeper->onActivity("/data");
    ASSERT_EQ(disks.created.size(), 1U);
    EXPECT_EQ(disks.created[0], std::make_pair(std::string("/media/disk3.img"), 1800 * MiB));
    ASSERT_EQ(listener.disksAdded.size(), 1U);
    ASSERT_EQ(runner.count("lvextend"), 1U);
    EXPECT_EQ(modelLvSize(), lvSize + step);
    EXPECT_THAT(listener.exhausted, IsEmpty());
    EXPECT_THAT(state.stored, Contains("/media/disk3.img"));
}

TEST_F(KeeperTest, AutoAddDiskGrowsIntoWhatIsFreeFirstThenAddsTheDisk)
{
    config.disks.autoAddDisk = true;
    lvmModel.setVgFree("vg0", 100 * MiB);
    startKeeper();
    scheduler.advance(10s);
    fill(95);
    keeper->onActivity("/data");
    // The 100M the VG has go to /data at once; the disk comes right behind, then the rest of the step.
    ASSERT_GE(runner.count("lvextend"), 1U);
    EXPECT_EQ(runner.argvs("lvextend").at(0),
              lvmArgv({"lvextend", "--size", sizeArg(lvSize + 100 * MiB), "vg0/data0"}));
    ASSERT_EQ(disks.created.size(), 1U);
    std::vector<std::string> order;
    for (const auto& c : runner.calls())
    {
        order.push_back(c.argv.at(1));
    }
    auto at = [&](const std::string& what)
    {
        return std::find(order.begin(), order.end(), what) - order.begin();
    };
    EXPECT_LT(at("lvextend"), at("pvcreate"));
    scheduler.advance(2s);                   // the cooldown: no fill rate here says the writer would fill it
    EXPECT_EQ(runner.count("lvextend"), 2U); // 95% of the old size is still over 90% of the new one
    EXPECT_EQ(modelLvSize(), lvSize + 100 * MiB + step);
    EXPECT_THAT(listener.exhausted, IsEmpty());
}

TEST_F(KeeperTest, AutoAddDiskAddsTheNextDiskRightAfterTheGrowThatLeftTheVgShort)
{
    config.disks.autoAddDisk = true;
    lvmModel.setVgFree("vg0", 600 * MiB);
    startKeeper();
    scheduler.advance(10s);
    fill(95);
    keeper->onActivity("/data");
    ASSERT_EQ(runner.count("lvextend"), 1U);
    EXPECT_EQ(modelLvSize(), lvSize + step);
    // 100M left cannot hold the next 500M step: a disk now, while writers still have room.
    ASSERT_EQ(disks.created.size(), 1U);
    EXPECT_EQ(listener.disksAdded.size(), 1U);
}

TEST_F(KeeperTest, AutoAddDiskOffLeavesTheVgAloneAndSaysVgFull)
{
    lvmModel.setVgFree("vg0", 0);
    startKeeper();
    fill(95);
    keeper->onActivity("/data");
    EXPECT_TRUE(disks.created.empty());
    ASSERT_EQ(listener.exhausted.size(), 1U);
    EXPECT_THAT(listener.exhausted[0].second, StartsWith("vg-full:"));
    EXPECT_THAT(listener.exhausted[0].second, HasSubstr("AutoAddDisk=no"));
}

TEST_F(KeeperTest, AutoAddDiskStopsAtMaxDisksWithOneSpaceExhausted)
{
    config.disks.autoAddDisk = true;
    config.disks.maxDisks = 3; // the VG already has 3
    lvmModel.setVgFree("vg0", 0);
    startKeeper();
    fill(95);
    keeper->onActivity("/data");
    EXPECT_TRUE(disks.created.empty());
    ASSERT_EQ(listener.exhausted.size(), 1U);
    EXPECT_THAT(listener.exhausted[0].second, StartsWith("max-disks:"));
    EXPECT_THAT(listener.exhausted[0].second, HasSubstr("MaxDisks=3"));

    // It keeps serving and stays quiet: no retries, no second signal while it stays full.
    for (int n = 0; n < 5; ++n)
    {
        scheduler.advance(10s);
        keeper->onActivity("/data");
    }
    EXPECT_EQ(listener.exhausted.size(), 1U);
    EXPECT_TRUE(disks.created.empty());
}

TEST_F(KeeperTest, AutoAddDiskWithoutHostSpaceSaysSoAndRetriesWhenSpaceComesBack)
{
    config.disks.autoAddDisk = true;
    lvmModel.setVgFree("vg0", 0);
    fs.usages["/media"] = FakeFilesystems::usageOf(40 * GiB, 99.5); // 204M free < 1800M + 256M
    startKeeper();
    fill(95);
    keeper->onActivity("/data");
    EXPECT_TRUE(disks.created.empty());
    ASSERT_EQ(listener.exhausted.size(), 1U);
    EXPECT_THAT(listener.exhausted[0].second, StartsWith("no-host-space:"));

    scheduler.advance(60s);
    keeper->onBackstop(); // still no space: nothing new
    EXPECT_EQ(listener.exhausted.size(), 1U);
    EXPECT_TRUE(disks.created.empty());

    fs.usages["/media"] = FakeFilesystems::usageOf(40 * GiB, 50); // the admin restarted the holder
    scheduler.advance(60s);
    keeper->onBackstop();
    ASSERT_EQ(disks.created.size(), 1U);
    EXPECT_EQ(runner.count("lvextend"), 1U);
    EXPECT_EQ(listener.exhausted.size(), 1U);
}

TEST_F(KeeperTest, MaxSizeIsExhaustionThatNoDiskCanHelp)
{
    config.disks.autoAddDisk = true;
    config.volumes[0].maxSize = lvSize;
    startKeeper();
    fill(95);
    keeper->onActivity("/data");
    EXPECT_TRUE(disks.created.empty());
    ASSERT_EQ(listener.exhausted.size(), 1U);
    EXPECT_THAT(listener.exhausted[0].second, StartsWith("max-size:"));
}

TEST_F(KeeperTest, BackstopKeepsRecordedImagesAllocated)
{
    startKeeper();
    disks.holes["/media/disk1.img"] = 64 * MiB; // ext4 lazy init punched holes through the loop device
    keeper->onBackstop();
    EXPECT_THAT(disks.allocations, ElementsAre("/media/disk1.img"));
    EXPECT_TRUE(disks.holes.empty());

    // A host without space: logged once, retried at the next backstop, never fatal.
    disks.holes["/media/disk2.img"] = 64 * MiB;
    disks.allocateFails = true;
    keeper->onBackstop();
    keeper->onBackstop();
    EXPECT_EQ(disks.allocations.size(), 3U);
}

TEST_F(KeeperTest, BackstopWithNothingChangedPublishesNothing)
{
    startKeeper();
    scheduler.advance(1s);
    auto changes = listener.changed.size();
    for (int n = 0; n < 3; ++n)
    {
        keeper->onBackstop();
        keeper->onMountsChanged(); // some other mount somewhere
        scheduler.advance(1s);
    }
    EXPECT_EQ(listener.changed.size(), changes);
    fill(30);
    keeper->onBackstop();
    scheduler.advance(1s);
    EXPECT_GE(listener.changed.size(), changes + 1);
    // Once the fill rate of that jump has faded (the next look sees it), an idle volume is quiet again.
    scheduler.advance(10s);
    keeper->onBackstop();
    scheduler.advance(1s);
    changes = listener.changed.size();
    for (int n = 0; n < 3; ++n)
    {
        keeper->onBackstop();
        scheduler.advance(20s);
    }
    EXPECT_EQ(listener.changed.size(), changes);
}

TEST_F(KeeperTest, AWriterFanotifyCannotSeeIsLookedAtSoonerTheCloserTheVolumeIsToGrowAt)
{
    // A shared mmap or a loop device over a file on /data: statvfs sees the blocks, fanotify sees nothing.
    config.daemon.backstopInterval = 60s;
    auto looksIn = [this](std::chrono::milliseconds span)
    {
        auto before = fs.usageCalls;
        scheduler.advance(span);
        return fs.usageCalls - before;
    };
    startKeeper();
    // At 25% a 128M/s writer needs many seconds to reach GrowAt: a few looks a minute.
    auto far = looksIn(60s);
    EXPECT_GE(far, 2U);
    EXPECT_LE(far, 20U);
}

TEST_F(KeeperTest, NearGrowAtAWriterFanotifyCannotSeeIsCaughtWithinALook)
{
    config.daemon.backstopInterval = 60s;
    fill(85);
    startKeeper();
    auto before = fs.usageCalls;
    scheduler.advance(10s);
    auto near = fs.usageCalls - before;
    // 5% of 2.8G is about a second at 128M/s: a look every second or so, never faster than the floor.
    EXPECT_GE(near, 8U);
    EXPECT_LE(near, 12U);
    // It crosses GrowAt with no event at all: grown within a look.
    fill(95);
    scheduler.advance(1200ms);
    EXPECT_EQ(runner.count("lvextend"), 1U);
}

TEST_F(KeeperTest, AFastWriterGetsADiskBeforeTheVgRunsDry)
{
    config.disks.autoAddDisk = true;
    lvmModel.setVgFree("vg0", 800 * MiB);
    startKeeper();
    scheduler.advance(10s);
    // 40M/s: adding a disk (10 s assumed) and growing (5 s) need 1.2G of VG; it has 800M.
    write(scheduler, fs, *keeper, 40.0 * MiB, 600ms);
    ASSERT_EQ(disks.created.size(), 1U);
    EXPECT_EQ(runner.count("lvextend"), 0U); // /data itself is far from full: no grow yet
    // One at a time: the writer goes on, the queued add is not repeated.
    write(scheduler, fs, *keeper, 40.0 * MiB, 600ms);
    EXPECT_EQ(disks.created.size(), 1U);
}

TEST_F(KeeperTest, ASlowWriterGetsNoEarlyDisk)
{
    config.disks.autoAddDisk = true;
    lvmModel.setVgFree("vg0", 800 * MiB);
    startKeeper();
    scheduler.advance(10s);
    write(scheduler, fs, *keeper, 1.0 * MiB, 1000ms);
    EXPECT_TRUE(disks.created.empty());
}

TEST_F(KeeperTest, AGrowThatCannotWaitGoesAheadOfAQueuedDisk)
{
    config.disks.autoAddDisk = true;
    config.volumes[0].growAt = 26; // the writer below reaches it within a second
    lvmModel.setVgFree("vg0", 800 * MiB);
    startKeeper();
    scheduler.advance(10s);
    runner.holdNext("pvcreate"); // the first early disk is being added, slowly
    write(scheduler, fs, *keeper, 40.0 * MiB, 600ms);
    ASSERT_EQ(disks.created.size(), 1U);
    // An admin's AddDisk waits behind it; the writer reaches GrowAt while the disk is still going in.
    DiskResult admin;
    keeper->addDisk("vg0", "", into(admin));
    write(scheduler, fs, *keeper, 40.0 * MiB, 600ms);
    ASSERT_TRUE(data().aboveThreshold);
    EXPECT_EQ(runner.count("lvextend"), 0U); // a running job is never preempted
    ASSERT_TRUE(runner.release("pvcreate"));
    // The grow runs right after the disk, ahead of the admin's waiting AddDisk, which still runs after it.
    ASSERT_GE(runner.count("lvextend"), 1U);
    std::vector<std::string> order;
    for (const auto& c : runner.calls())
    {
        order.push_back(c.argv.at(1));
    }
    auto vgextend = std::find(order.begin(), order.end(), "vgextend");
    auto lvextend = std::find(order.begin(), order.end(), "lvextend");
    ASSERT_NE(vgextend, order.end());
    EXPECT_LT(vgextend - order.begin(), lvextend - order.begin());
    EXPECT_EQ(std::count(order.begin(), lvextend, std::string("pvcreate")), 1);
    EXPECT_GE(std::count(lvextend, order.end(), std::string("pvcreate")), 1);
    EXPECT_FALSE(admin.error) << messageOf(admin.error);
}

// ---- durability: flushes, the journal, replay, backoff, stop ---------------------------------------------------

/// The steps an intent went through, from every journal text written.
std::vector<std::string> journalSteps(const test::FakeStateStore& state, const std::string& kind)
{
    std::vector<std::string> steps;
    for (const auto& text : state.journalHistory)
    {
        for (const auto& intent : parseJournal(text))
        {
            if (intent.kind == kind && (steps.empty() || steps.back() != intent.step))
            {
                steps.push_back(intent.step);
            }
        }
    }
    return steps;
}

TEST_F(KeeperTest, LvextendIsFlushedToEveryPvOfTheVgBeforeTheFilesystemGrowsAndTheReply)
{
    startKeeper();
    disks.flushed.clear();
    bool flushedBeforeResize = false;
    runner.setHandler("resize2fs",
                      [this, &flushedBeforeResize](const std::vector<std::string>&)
                      {
                          flushedBeforeResize = disks.flushed.size() == 3;
                          auto& u = fs.usages["/data"];
                          u.size = modelLvSize();
                          u.available = u.size - u.used;
                          return test::FakeRunner::Response{0, "", ""};
                      });
    GrowResult r;
    keeper->grow("/data", "+500M", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_FALSE(r.error) << messageOf(r.error);
    EXPECT_THAT(disks.flushed, ::testing::UnorderedElementsAre("/dev/loop0", "/dev/loop1", "/dev/loop2"));
    EXPECT_TRUE(flushedBeforeResize);
}

TEST_F(KeeperTest, AGrowWhoseLvmChangeCannotBeFlushedFailsInsteadOfClaimingSuccess)
{
    startKeeper();
    disks.flushFails = true;
    GrowResult r;
    keeper->grow("/data", "+500M", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::CommandFailed);
    EXPECT_THAT(messageOf(r.error), HasSubstr("could not be made durable"));
    EXPECT_THAT(listener.grows, IsEmpty());
}

TEST_F(KeeperTest, AddDiskRecordsEachStepBeforeItRunsAndTheImageBeforeItBecomesAPv)
{
    startKeeper();
    std::vector<std::string> recordedAtPvcreate;
    runner.setHandler("pvcreate",
                      [this, &recordedAtPvcreate](const std::vector<std::string>& argv)
                      {
                          recordedAtPvcreate = state.stored;
                          lvm::Pv pv;
                          pv.name = argv.back();
                          pv.size = pv.free = lvmModel.newPvSize;
                          pv.allocatable = true;
                          lvmModel.pvs.push_back(pv);
                          return test::FakeRunner::Response{0, "", ""};
                      });
    DiskResult r;
    keeper->addDisk("vg0", "", into(r));
    ASSERT_EQ(r.calls, 1);
    ASSERT_FALSE(r.error) << messageOf(r.error);
    EXPECT_THAT(journalSteps(state, "add-disk"), ElementsAre("allocate", "attach", "record", "pvcreate", "vgextend"));
    // A reboot right after pvcreate must attach the image again, or the VG would miss a PV.
    EXPECT_THAT(recordedAtPvcreate, Contains(r.image));
    // Done: nothing is left open, and that is durable before the reply.
    ASSERT_TRUE(state.journal);
    EXPECT_THAT(parseJournal(*state.journal), IsEmpty());
    // vgextend wrote metadata to every PV, the new one included.
    EXPECT_THAT(disks.flushed, Contains(r.device));
    EXPECT_THAT(disks.flushed, Contains("/dev/loop0"));
}

TEST_F(KeeperTest, AddDiskFailsAndUndoesWhenTheImageCannotBeRecorded)
{
    startKeeper();
    state.imagesUnwritable = true;
    DiskResult r;
    keeper->addDisk("vg0", "", into(r));
    ASSERT_EQ(r.calls, 1);
    EXPECT_EQ(kindOf(r.error), ErrorKind::Failed);
    EXPECT_THAT(messageOf(r.error), HasSubstr("cannot record"));
    EXPECT_EQ(runner.count("pvcreate"), 0U);
    ASSERT_EQ(disks.created.size(), 1U);
    EXPECT_THAT(disks.removed, ElementsAre(disks.created[0].first));
    EXPECT_EQ(disks.detached.size(), 1U);
    EXPECT_THAT(listener.disksAdded, IsEmpty());
}

/// A journal a crash left: an add-disk of image at step.
std::string leftOver(const std::string& step, const std::string& image, const std::string& device = "")
{
    Intent intent;
    intent.id = 7;
    intent.kind = "add-disk";
    intent.step = step;
    intent.since = "2026-12-01T10:00:00Z";
    intent.fields = {{"vg", "vg0"}, {"image", image}, {"size", std::to_string(1800 * MiB)}};
    if (!device.empty())
    {
        intent.fields["device"] = device;
    }
    return serializeJournal({intent});
}

TEST_F(KeeperTest, AnImageThatNeverBecameAPvIsDetachedRemovedAndForgottenAtStart)
{
    // The crash came between attach and pvcreate; at boot lvkeeper-attach brought the recorded image back.
    disks.files["/media/disk3.img"] = 1800 * MiB;
    disks.loops.push_back({"/dev/loop5", "/media/disk3.img"});
    state.stored = {"/media/disk0.img", "/media/disk1.img", "/media/disk2.img", "/media/disk3.img"};
    state.journal = leftOver("pvcreate", "/media/disk3.img", "/dev/loop3");
    startKeeper();
    EXPECT_THAT(disks.detached, ElementsAre("/dev/loop5")); // found by its image, not the old device name
    EXPECT_THAT(disks.removed, ElementsAre("/media/disk3.img"));
    EXPECT_THAT(state.stored, Not(Contains("/media/disk3.img")));
    EXPECT_EQ(runner.count("pvcreate"), 0U);
    EXPECT_THAT(parseJournal(*state.journal), IsEmpty());
    EXPECT_THAT(listener.disksAdded, IsEmpty());
}

TEST_F(KeeperTest, AnImageThatBecameAPvIsAddedToItsVgAtStartAndAnnounced)
{
    // The crash came after pvcreate, before vgextend.
    disks.files["/media/disk3.img"] = 1800 * MiB;
    disks.loops.push_back({"/dev/loop3", "/media/disk3.img"});
    disks.signatures["/dev/loop3"] = "LVM2_member";
    lvm::Pv orphan{"/dev/loop3", "", 1796 * MiB, 1796 * MiB, 1800 * MiB, MiB, 449, 0, true};
    lvmModel.pvs.push_back(orphan);
    state.stored = {"/media/disk0.img", "/media/disk1.img", "/media/disk2.img", "/media/disk3.img"};
    state.journal = leftOver("vgextend", "/media/disk3.img", "/dev/loop3");
    startKeeper();
    ASSERT_EQ(runner.argvs("vgextend").size(), 1U);
    EXPECT_EQ(runner.argvs("vgextend").at(0), lvmArgv({"vgextend", "vg0", "/dev/loop3"}));
    ASSERT_EQ(listener.disksAdded.size(), 1U);
    EXPECT_EQ(listener.disksAdded[0].image, "/media/disk3.img");
    EXPECT_THAT(disks.removed, IsEmpty());
    EXPECT_THAT(parseJournal(*state.journal), IsEmpty());
}

TEST_F(KeeperTest, AMissingImageOfAnInterruptedAddDiskIsForgotten)
{
    state.stored = {"/media/disk0.img", "/media/disk1.img", "/media/disk2.img", "/media/disk9.img"};
    state.journal = leftOver("allocate", "/media/disk9.img");
    startKeeper();
    EXPECT_THAT(state.stored, Not(Contains("/media/disk9.img")));
    EXPECT_THAT(parseJournal(*state.journal), IsEmpty());
}

TEST_F(KeeperTest, ACorruptJournalIsSetAsideReportedAndNeverStopsTheKeeper)
{
    state.journal = "{\"version\": 1, \"intents\": [ {\"id\": ";
    startKeeper();
    ASSERT_EQ(state.setAside.size(), 1U);
    auto problem = keeper->context().journal.problem();
    ASSERT_TRUE(problem);
    EXPECT_EQ(problem->id.rfind("journal-corrupt:", 0), 0U);
    EXPECT_THAT(problem->text, HasSubstr("journal.corrupt-1"));
    // /data is still kept alive.
    fill(95);
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("lvextend"), 1U);
}

TEST_F(KeeperTest, AGrowGoesAheadWhenTheJournalCannotBeWrittenAndThatIsReported)
{
    startKeeper();
    state.journalUnwritable = true;
    fill(95);
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("lvextend"), 1U);
    ASSERT_EQ(listener.grows.size(), 1U);
    auto problem = keeper->context().journal.problem();
    ASSERT_TRUE(problem);
    EXPECT_EQ(problem->id.rfind("journal-unwritable:", 0), 0U);
}

TEST_F(KeeperTest, APersistentLvextendFailureBacksOffWithOneSignalPerEpisode)
{
    startKeeper();
    runner.setHandler("lvextend",
                      [](const std::vector<std::string>&) {
                          return test::FakeRunner::Response{5, "", "  Volume group vg0 is locked by another command"};
                      });
    fill(95);
    for (int second = 0; second < 60; ++second)
    {
        keeper->onActivity("/data"); // a writer keeps writing, every second
        scheduler.advance(1s);
    }
    // Backoff 1, 2, 4, 8, 16, 32 s: a handful of attempts in a minute, not sixty.
    EXPECT_LE(runner.count("lvextend"), 8U);
    EXPECT_GE(runner.count("lvextend"), 5U);
    EXPECT_EQ(listener.growFailures.size(), 1U);
    EXPECT_THAT(listener.exhausted, IsEmpty()); // a transient failure is never exhaustion
    EXPECT_GE(data().growFailureCount, 5U);

    // It recovers by itself: the next attempt works and the episode is over.
    runner.setHandler("lvextend", [this](const std::vector<std::string>& argv) {
        auto target = std::stoull(argv.at(3).substr(0, argv.at(3).size() - 1));
        lvmModel.lv("vg0", "data0").size = target;
        return test::FakeRunner::Response{0, "", ""};
    });
    scheduler.advance(60s);
    keeper->onActivity("/data");
    EXPECT_GE(listener.grows.size(), 1U);
    EXPECT_EQ(data().failedGrows, 0U);
}

TEST_F(KeeperTest, ATransientAddDiskFailureIsRetriedAndNeverSaidToBeExhaustion)
{
    config.disks.autoAddDisk = true;
    lvmModel.setVgFree("vg0", 0);
    startKeeper();
    scheduler.advance(10s); // no writer: the jump to 95% below is no fill rate
    runner.failNext("pvcreate", 5, "  Can't open /dev/loop3 exclusively.  Mounted filesystem?");
    fill(95);
    keeper->onActivity("/data");
    EXPECT_EQ(runner.count("pvcreate"), 1U);
    EXPECT_THAT(listener.exhausted, IsEmpty());
    EXPECT_THAT(listener.disksAdded, IsEmpty());
    // The backoff passes: the next disk goes in and the volume grows into it.
    scheduler.advance(2s);
    EXPECT_EQ(runner.count("pvcreate"), 2U);
    ASSERT_EQ(listener.disksAdded.size(), 1U);
    EXPECT_GE(runner.count("lvextend"), 1U);
    EXPECT_THAT(listener.exhausted, IsEmpty());
}

TEST_F(KeeperTest, ExhaustionEndsByItselfWhenAnAdminAddsSpaceToTheVg)
{
    lvmModel.setVgFree("vg0", 0);
    startKeeper();
    fill(95);
    keeper->onActivity("/data");
    ASSERT_EQ(listener.exhausted.size(), 1U);
    ASSERT_TRUE(data().exhausted);
    lvmModel.setVgFree("vg0", 2 * GiB); // an admin's vgextend
    keeper->onBackstop();
    EXPECT_EQ(runner.count("lvextend"), 1U);
    EXPECT_FALSE(data().exhausted);
}

TEST_F(KeeperTest, StopLetsTheRunningGrowFinishAndAnswersTheWaitingOnesBusy)
{
    startKeeper();
    runner.holdNext("lvextend");
    GrowResult running;
    GrowResult waiting;
    keeper->grow("/data", "+100M", into(running));
    keeper->grow("/data", "+100M", into(waiting));
    bool stopped = false;
    keeper->stop([&] { stopped = true; });
    EXPECT_EQ(waiting.calls, 1);
    EXPECT_EQ(kindOf(waiting.error), ErrorKind::Busy);
    EXPECT_EQ(running.calls, 0);
    EXPECT_FALSE(stopped) << "lvextend still runs";
    GrowResult late;
    keeper->grow("/data", "+100M", into(late));
    EXPECT_EQ(kindOf(late.error), ErrorKind::Busy);
    ASSERT_TRUE(runner.release("lvextend"));
    EXPECT_EQ(running.calls, 1);
    EXPECT_FALSE(running.error) << messageOf(running.error);
    EXPECT_TRUE(stopped);
    EXPECT_EQ(runner.count("resize2fs"), 1U); // the grow was finished, not cut after lvextend
}

TEST_F(KeeperTest, BlockingWorkRunsOffTheLoopAndTheKeeperGoesOnMeanwhile)
{
    startKeeper();
    executor.hold = true;
    DiskResult r;
    keeper->addDisk("vg0", "", into(r));
    // Only the lane's own next step waits: the fallocate has not run, and the keeper still answers.
    EXPECT_EQ(r.calls, 0);
    ASSERT_FALSE(executor.held.empty());
    RemountResult remount;
    keeper->remount("/data", into(remount));
    EXPECT_EQ(remount.calls, 1);
    executor.hold = false;
    while (executor.releaseOne())
    {
    }
    EXPECT_EQ(r.calls, 1);
    EXPECT_FALSE(r.error) << messageOf(r.error);
    EXPECT_THAT(executor.names, Contains(HasSubstr("fallocate /media/disk3.img")));
}

TEST_F(KeeperTest, AReloadDuringAGrowLeavesItGrowingTheSameVolume)
{
    VolumeConfig other;
    other.mountPoint = "/srv";
    startKeeper();
    runner.holdNext("lvextend");
    GrowResult r;
    keeper->grow("/data", "+100M", into(r));
    // The reload puts another volume first: /data's index changes under the running grow.
    Config next = config;
    next.volumes.insert(next.volumes.begin(), other);
    keeper->reload(next);
    ASSERT_EQ(keeper->volumes().size(), 2U);
    ASSERT_TRUE(runner.release("lvextend"));
    ASSERT_EQ(r.calls, 1);
    EXPECT_FALSE(r.error) << messageOf(r.error);
    EXPECT_EQ(keeper->volumes().at(1).config.mountPoint, "/data");
    EXPECT_EQ(keeper->volumes().at(1).lvSize, lvSize + 100 * MiB);
    EXPECT_EQ(keeper->volumes().at(0).lvSize, 0U);
}

TEST_F(KeeperTest, TheMetricsFileFollowsEveryChangeAtMostOncePerInterval)
{
    config.daemon.metricsFile = "/var/lib/prometheus/node-exporter/lvkeeper.prom";
    startKeeper();
    ASSERT_TRUE(textFiles.files.count(config.daemon.metricsFile));
    fill(95);
    keeper->onActivity("/data");
    auto writes = textFiles.writes;
    scheduler.advance(300ms);
    EXPECT_EQ(textFiles.writes, writes + 1);
    const auto& text = textFiles.files[config.daemon.metricsFile];
    EXPECT_THAT(text, HasSubstr("lvkeeper_volume_grows_total{volume=\"/data\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("# TYPE lvkeeper_volume_grows_total counter\n"));
    EXPECT_THAT(text, HasSubstr("lvkeeper_volume_logical_volume_size_bytes{volume=\"/data\"} " +
                                std::to_string(lvSize + step) + "\n"));
    EXPECT_THAT(text, HasSubstr("lvkeeper_volume_exhausted{volume=\"/data\"} 0\n"));
    EXPECT_THAT(text, HasSubstr("lvkeeper_volume_time_to_full_seconds{volume=\"/data\"} +Inf\n"));
    EXPECT_THAT(text, HasSubstr("lvkeeper_volume_group_free_bytes{vg=\"vg0\"} "));
    // A burst of writes is one write of the file per interval.
    writes = textFiles.writes;
    for (int n = 0; n < 50; ++n)
    {
        fill(30 + n % 5);
        keeper->onActivity("/data");
        scheduler.advance(10ms);
    }
    scheduler.advance(300ms);
    EXPECT_LE(textFiles.writes, writes + 3);
}

TEST_F(KeeperTest, CountersAndTheTimeOfTheLastGrowAreKeptForMonitoring)
{
    startKeeper();
    GrowResult r;
    keeper->grow("/data", "+100M", into(r));
    ASSERT_FALSE(r.error);
    EXPECT_EQ(data().growCount, 1U);
    ASSERT_TRUE(data().lastGrowTime);
    EXPECT_EQ(std::chrono::system_clock::to_time_t(*data().lastGrowTime), 1796083200);
}

// ---- Doctor: Repair's contract --------------------------------------------------------------------------------

std::vector<RepairResult> repairOf(Doctor& doctor, std::vector<std::string> ids)
{
    std::vector<RepairResult> results;
    bool answered = false;
    doctor.repair(std::move(ids),
                  [&](const std::vector<RepairResult>& r)
                  {
                      results = r;
                      answered = true;
                  });
    EXPECT_TRUE(answered);
    return results;
}

TEST_F(KeeperTest, RepairAnswersExactlyOneResultPerIdInTheOrderGiven)
{
    startKeeper();
    Doctor doctor(*keeper);
    auto results = repairOf(doctor, {"", "zzz1", "zzz2"});
    ASSERT_EQ(results.size(), 3U);
    EXPECT_EQ(results[0].id, "");
    EXPECT_EQ(results[1].id, "zzz1");
    EXPECT_EQ(results[2].id, "zzz2");
    for (const auto& r : results)
    {
        EXPECT_EQ(r.outcome, RepairOutcome::Failed);
        EXPECT_THAT(r.describe(), StartsWith("failed: unknown finding id"));
    }
    std::vector<std::string> many;
    for (int n = 0; n < 200; ++n)
    {
        many.push_back("nope" + std::to_string(n));
    }
    EXPECT_EQ(repairOf(doctor, many).size(), 200U);
    // Known kinds that are not found now, given out of repair order and twice: in the order given.
    auto mixed = repairOf(doctor, {"vg-low:vg0", "read-only:/data", "vg-low:vg0"});
    ASSERT_EQ(mixed.size(), 3U);
    EXPECT_EQ(mixed[0].id, "vg-low:vg0");
    EXPECT_EQ(mixed[1].id, "read-only:/data");
    EXPECT_EQ(mixed[2].id, "vg-low:vg0");
    EXPECT_EQ(mixed[1].outcome, RepairOutcome::Ok);
}

TEST_F(KeeperTest, AStopDuringARepairsPvmoveAnswersTheCallerAndThenStops)
{
    // loop1 starts its first extent 1 GiB in and holds 13 extents of data0: Repair moves them off.
    auto& pv = lvmModel.pvs[1];
    pv.peStart = GiB;
    pv.peAllocCount = 13;
    lvmModel.pvs[0].free = 100 * extent;
    runner.setHandler("pvmove",
                      [this](const std::vector<std::string>& argv)
                      {
                          lvmModel.moves.push_back(lvm::Move{"vg0", "pvmove0", argv.back(), 30.0});
                          return test::FakeRunner::Response{0, "", ""};
                      });
    startKeeper();
    Doctor doctor(*keeper);
    std::vector<RepairResult> results;
    doctor.repair({"pv-data-offset:/dev/loop1"}, [&](const std::vector<RepairResult>& r) { results = r; });
    ASSERT_EQ(runner.count("pvmove"), 1U);
    scheduler.advance(2s);
    // The move runs in LVM's background; its progress is on the bus, strictly between 0 and 1.
    ASSERT_FALSE(listener.progresses.empty());
    EXPECT_EQ(listener.progresses.back().first, "pvmove /dev/loop1");
    EXPECT_DOUBLE_EQ(listener.progresses.back().second, 0.3);
    EXPECT_TRUE(results.empty());
    bool stopped = false;
    keeper->stop([&] { stopped = true; });
    scheduler.advance(1s);
    ASSERT_EQ(results.size(), 1U);
    EXPECT_EQ(results[0].outcome, RepairOutcome::Failed);
    EXPECT_THAT(results[0].text, HasSubstr("goes on in LVM's background"));
    EXPECT_TRUE(stopped) << "the stop waited for the long wait that just ended";
    // The journal keeps it for the next start.
    ASSERT_TRUE(state.journal);
    auto open = parseJournal(*state.journal);
    ASSERT_EQ(open.size(), 1U);
    EXPECT_EQ(open[0].kind, "recreate-pv");
    EXPECT_EQ(open[0].step, "pvmove");
}

TEST_F(KeeperTest, ConcurrentDiagnoseCallsShareTwoLooksAtNormalPriority)
{
    startKeeper();
    Doctor doctor(*keeper);
    runner.holdNext("pvs");
    int answered = 0;
    auto before = runner.count("pvs");
    auto callsBefore = runner.calls().size();
    for (int n = 0; n < 24; ++n)
    {
        doctor.diagnose(65534,
                        [&](const std::vector<Finding>&, Doctor::Error error)
                        {
                            EXPECT_FALSE(error) << messageOf(error);
                            ++answered;
                        });
    }
    EXPECT_EQ(answered, 0);
    ASSERT_TRUE(runner.release("pvs"));
    // The first caller's look, and one more that started after the other 23 asked.
    EXPECT_EQ(answered, 24);
    EXPECT_EQ(runner.count("pvs"), before + 2);
    // Any local user may ask: its lvm scans must not run at the daemon's raised priority.
    ASSERT_GT(runner.calls().size(), callsBefore);
    for (auto i = callsBefore; i < runner.calls().size(); ++i)
    {
        EXPECT_TRUE(runner.calls()[i].background) << runner.calls()[i].key;
    }
    // Root's question after the look ended gets a look of its own: it may follow a change root made.
    doctor.diagnose(0, [&](const std::vector<Finding>&, Doctor::Error) { ++answered; });
    EXPECT_EQ(runner.count("pvs"), before + 3);
    EXPECT_EQ(answered, 25);
    // Others, who cannot change storage, are served by a look started a moment ago: a flood costs nothing.
    for (int n = 0; n < 10; ++n)
    {
        doctor.diagnose(65534, [&](const std::vector<Finding>&, Doctor::Error) { ++answered; });
    }
    EXPECT_EQ(answered, 35);
    EXPECT_EQ(runner.count("pvs"), before + 3);
    scheduler.advance(3s);
    doctor.diagnose(65534, [&](const std::vector<Finding>&, Doctor::Error) { ++answered; });
    EXPECT_EQ(runner.count("pvs"), before + 4) << "a look older than the reuse time is not reused";
}

TEST_F(KeeperTest, DiagnoseAskedDuringALookWaitsForALookThatStartsAfterIt)
{
    startKeeper();
    Doctor doctor(*keeper);
    runner.holdNext("pvs");
    std::vector<int> order;
    doctor.diagnose(0, [&](const std::vector<Finding>&, Doctor::Error) { order.push_back(1); });
    auto before = runner.count("pvs");
    runner.holdNext("pvs");
    for (int n = 2; n <= 4; ++n)
    {
        doctor.diagnose(0, [&order, n](const std::vector<Finding>&, Doctor::Error) { order.push_back(n); });
    }
    ASSERT_TRUE(runner.release("pvs"));
    // The first caller has its answer; the three who asked during that look wait for the next one.
    EXPECT_EQ(order, std::vector<int>{1});
    EXPECT_EQ(runner.count("pvs"), before + 1) << "one more look for all three, started after the first";
    ASSERT_TRUE(runner.release("pvs"));
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
    EXPECT_EQ(runner.count("pvs"), before + 1);
}

} // namespace
} // namespace lvkeeper

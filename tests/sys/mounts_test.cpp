// LinuxFilesystems and MountMonitor on a loop-mounted ext4.

#include "fixture.hpp"

#include "lvkeeper/sys/linux.hpp"
#include "lvkeeper/sys/mount_monitor.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>

using namespace std::chrono_literals;
using lvkeeper::FsUsage;
using lvkeeper::MountInfo;
using lvkeeper::sys::LinuxFilesystems;
using lvkeeper::sys::MountMonitor;
using lvkeeper::test::EventLoop;
using lvkeeper::test::LoopExt4;
using lvkeeper::test::TempDir;

namespace
{

constexpr std::uint64_t MiB = 1024 * 1024;

bool writeBytes(const std::string& path, std::size_t bytes)
{
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
    {
        return false;
    }
    std::string chunk(64 * 1024, 'x');
    std::size_t done = 0;
    bool ok = true;
    while (ok && done < bytes)
    {
        auto n = ::write(fd, chunk.data(), std::min(chunk.size(), bytes - done));
        ok = n > 0;
        done += ok ? static_cast<std::size_t>(n) : 0;
    }
    ok = ok && ::fsync(fd) == 0;
    ::close(fd);
    return ok;
}

class MountsTest : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        if (!lvkeeper::test::isRoot())
        {
            GTEST_SKIP() << "needs root (loop devices, mount)";
        }
        ASSERT_NO_THROW(fs = std::make_unique<LoopExt4>());
    }

    struct stat statOf(const std::string& path)
    {
        struct stat st{};
        EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
        return st;
    }

    std::unique_ptr<LoopExt4> fs;
    LinuxFilesystems filesystems;
};

TEST_F(MountsTest, FindMountDescribesTheExt4)
{
    auto mount = filesystems.findMount(fs->mountPoint());
    ASSERT_TRUE(mount);
    EXPECT_EQ(mount->mountPoint, fs->mountPoint());
    EXPECT_EQ(mount->source, fs->device());
    EXPECT_EQ(mount->fsType, "ext4");
    EXPECT_FALSE(mount->readOnly);
    auto st = statOf(fs->mountPoint());
    EXPECT_EQ(mount->devMajor, major(st.st_dev));
    EXPECT_EQ(mount->devMinor, minor(st.st_dev));
    EXPECT_NE(mount->options.find("rw"), std::string::npos) << mount->options;
}

TEST_F(MountsTest, FindMountMatchesOnlyTheExactMountPoint)
{
    ASSERT_EQ(::mkdir((*fs / "sub").c_str(), 0755), 0);
    EXPECT_FALSE(filesystems.findMount(*fs / "sub"));
    EXPECT_FALSE(filesystems.findMount("/nonexistent/lvkeeper"));
}

TEST_F(MountsTest, FindMountReturnsTheTopmostMount)
{
    // A tmpfs mounted over the ext4 hides it; the topmost mount is what a path there reaches.
    ASSERT_EQ(::mount("lvkeeper-test", fs->mountPoint().c_str(), "tmpfs", 0, "size=1m"), 0);
    auto mount = filesystems.findMount(fs->mountPoint());
    EXPECT_EQ(::umount2(fs->mountPoint().c_str(), 0), 0);
    ASSERT_TRUE(mount);
    EXPECT_EQ(mount->fsType, "tmpfs");
    EXPECT_EQ(mount->source, "lvkeeper-test");
}

TEST_F(MountsTest, MountOfAFileInsideIsTheMount)
{
    ASSERT_EQ(::mkdir((*fs / "dir").c_str(), 0755), 0);
    ASSERT_TRUE(writeBytes(*fs / "dir/file", 10));
    auto mount = filesystems.mountOf(*fs / "dir/file");
    ASSERT_TRUE(mount);
    EXPECT_EQ(mount->mountPoint, fs->mountPoint());
    EXPECT_EQ(mount->fsType, "ext4");

    auto root = filesystems.mountOf("/");
    ASSERT_TRUE(root);
    EXPECT_EQ(root->mountPoint, "/");
}

TEST_F(MountsTest, MonitorFiresOnRemountAndRemountReadWriteRestores)
{
    EventLoop loop;
    int changes = 0;
    MountMonitor monitor(loop.get(), [&] { ++changes; });
    loop.runFor(30ms);
    changes = 0;

    // Keep some per-mount flags to check remountReadWrite does not drop them.
    ASSERT_EQ(::mount(nullptr, fs->mountPoint().c_str(), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOEXEC | MS_NOSUID,
                      nullptr),
              0)
        << std::strerror(errno);
    ASSERT_TRUE(loop.runUntil([&] { return changes > 0; }, 100ms));
    EXPECT_EQ(changes, 1);

    auto mount = filesystems.findMount(fs->mountPoint());
    ASSERT_TRUE(mount);
    EXPECT_TRUE(mount->readOnly);
    EXPECT_TRUE(filesystems.usage(fs->mountPoint()).readOnly);
    EXPECT_FALSE(writeBytes(*fs / "file", 1));

    changes = 0;
    ASSERT_NO_THROW(filesystems.remountReadWrite(*mount));
    EXPECT_TRUE(writeBytes(*fs / "file", 4096));
    auto after = filesystems.findMount(fs->mountPoint());
    ASSERT_TRUE(after);
    EXPECT_FALSE(after->readOnly);
    struct statvfs st{};
    ASSERT_EQ(::statvfs(fs->mountPoint().c_str(), &st), 0);
    EXPECT_EQ(st.f_flag & ST_RDONLY, 0u);
    EXPECT_NE(st.f_flag & ST_NOEXEC, 0u);
    EXPECT_NE(st.f_flag & ST_NOSUID, 0u);
    EXPECT_TRUE(loop.runUntil([&] { return changes > 0; }, 100ms));
}

TEST_F(MountsTest, RemountReadWriteOfAReadOnlyBindMount)
{
    TempDir bindDir;
    std::string target = bindDir / "bind";
    ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
    ASSERT_EQ(::mount(fs->mountPoint().c_str(), target.c_str(), nullptr, MS_BIND, nullptr), 0);
    // Read-only only at the mount level: the superblock stays writable.
    ASSERT_EQ(::mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr), 0);

    auto mount = filesystems.findMount(target);
    bool wasReadOnly = mount && mount->readOnly;
    bool remounted = false;
    bool writable = false;
    if (mount)
    {
        try
        {
            filesystems.remountReadWrite(*mount);
            remounted = true;
        }
        catch (const std::system_error& e)
        {
            ADD_FAILURE() << e.what();
        }
        writable = writeBytes(target + "/file", 10);
    }
    ::umount2(target.c_str(), MNT_DETACH);

    ASSERT_TRUE(mount);
    EXPECT_TRUE(wasReadOnly);
    EXPECT_TRUE(remounted);
    EXPECT_TRUE(writable);
}

TEST_F(MountsTest, RemountReadWriteOfSomethingNotMountedThrows)
{
    MountInfo bogus;
    bogus.mountPoint = "/nonexistent/lvkeeper";
    bogus.source = "/dev/null";
    bogus.fsType = "ext4";
    try
    {
        filesystems.remountReadWrite(bogus);
        ADD_FAILURE() << "no exception";
    }
    catch (const std::system_error& e)
    {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/lvkeeper"), std::string::npos) << e.what();
    }
}

TEST_F(MountsTest, UsageIsSaneAndFollowsWrites)
{
    FsUsage before = filesystems.usage(fs->mountPoint());
    EXPECT_GT(before.size, 40 * MiB);
    EXPECT_LE(before.size, 64 * MiB);
    EXPECT_GT(before.used, 0u);
    EXPECT_GT(before.available, 0u);
    EXPECT_LE(before.used + before.available, before.size);
    EXPECT_GT(before.inodes, 0u);
    EXPECT_GT(before.inodesUsed, 0u);
    EXPECT_LT(before.inodesUsed, before.inodes);
    EXPECT_FALSE(before.readOnly);
    EXPECT_GT(before.usedPercent(), 0.0);
    EXPECT_LT(before.usedPercent(), 50.0);

    ASSERT_TRUE(writeBytes(*fs / "eight", 8 * MiB));
    FsUsage after = filesystems.usage(fs->mountPoint());
    EXPECT_EQ(after.size, before.size);
    EXPECT_GE(after.used, before.used + 8 * MiB);
    EXPECT_LE(after.available + 8 * MiB, before.available);
    EXPECT_EQ(after.inodesUsed, before.inodesUsed + 1);
    EXPECT_GT(after.usedPercent(), before.usedPercent());
}

TEST_F(MountsTest, UsageOfAMissingPathThrows)
{
    EXPECT_THROW(filesystems.usage("/nonexistent/lvkeeper"), std::system_error);
}

TEST(FsUsagePercent, AsDfCountsIt)
{
    FsUsage u;
    EXPECT_EQ(u.usedPercent(), 0.0);
    EXPECT_EQ(u.inodesUsedPercent(), 0.0);
    u.size = 1000;
    u.used = 250;
    u.available = 650; // 100 reserved for root do not count
    EXPECT_DOUBLE_EQ(u.usedPercent(), 250.0 * 100 / 900);
    u.inodes = 200;
    u.inodesUsed = 50;
    EXPECT_DOUBLE_EQ(u.inodesUsedPercent(), 25.0);
}

TEST_F(MountsTest, ErrorCountIsZeroOnACleanFilesystem)
{
    auto mount = filesystems.findMount(fs->mountPoint());
    ASSERT_TRUE(mount);
    std::string name = fs->device().substr(std::string("/dev/").size());
    // The real sysfs file, not the missing-file fallback.
    EXPECT_EQ(::access(("/sys/fs/ext4/" + name + "/errors_count").c_str(), R_OK), 0);
    EXPECT_EQ(filesystems.errorCount(*mount), 0u);
}

TEST_F(MountsTest, ErrorCountFollowsFilesystemErrors)
{
    auto mount = filesystems.findMount(fs->mountPoint());
    ASSERT_TRUE(mount);
    // ext4's own test hook records an error on this filesystem (the test's loop device only).
    const std::string trigger = "/sys/fs/ext4/" + fs->device().substr(5) + "/trigger_fs_error";
    if (::access(trigger.c_str(), W_OK) != 0)
    {
        GTEST_SKIP() << "no " << trigger;
    }
    std::ofstream(trigger) << "lvkeeper mounts test\n";
    // The count may reach the superblock (and sysfs) from a work item, a moment later.
    EventLoop loop;
    EXPECT_TRUE(loop.runUntil([&] { return filesystems.errorCount(*mount) > 0; }, 2s));
}

TEST(ErrorCount, ReadsExt4SysfsUnderTheGivenRoot)
{
    TempDir sys;
    std::filesystem::create_directories(sys / "dev/block");
    std::filesystem::create_directories(sys / "fs/ext4/dm-3");
    std::filesystem::create_symlink("../../devices/virtual/block/dm-3", sys / "dev/block/253:3");
    std::ofstream(sys / "fs/ext4/dm-3/errors_count") << "7\n";

    LinuxFilesystems filesystems("/proc", sys.path());
    MountInfo mount;
    mount.mountPoint = "/data";
    mount.fsType = "ext4";
    mount.devMajor = 253;
    mount.devMinor = 3;
    EXPECT_EQ(filesystems.errorCount(mount), 7u);

    mount.devMinor = 4; // no such device
    EXPECT_EQ(filesystems.errorCount(mount), 0u);
    mount.devMinor = 3;
    mount.fsType = "xfs";
    EXPECT_EQ(filesystems.errorCount(mount), 0u);
}

TEST_F(MountsTest, HeldDeletedFilesFindsAProcessHoldingOne)
{
    const std::string path = *fs / "held.log";
    int ready[2];
    int release[2];
    ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(release, O_CLOEXEC), 0);

    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0)
    {
        ::close(ready[0]);
        ::close(release[1]);
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
        char ok = (fd >= 0 && ::fallocate(fd, 0, 0, 4 * MiB) == 0 && ::unlink(path.c_str()) == 0) ? 'y' : 'n';
        [[maybe_unused]] auto n = ::write(ready[1], &ok, 1);
        char c;
        n = ::read(release[0], &c, 1);
        ::_exit(0);
    }
    ::close(ready[1]);
    ::close(release[0]);
    char ok = 0;
    ASSERT_EQ(::read(ready[0], &ok, 1), 1);
    ::close(ready[0]);

    auto mount = filesystems.findMount(fs->mountPoint());
    std::vector<lvkeeper::HeldDeletedFile> held;
    if (mount)
    {
        held = filesystems.heldDeletedFiles(mount->devMajor, mount->devMinor);
    }
    ::close(release[1]);
    int status = 0;
    ::waitpid(pid, &status, 0);

    ASSERT_EQ(ok, 'y');
    ASSERT_TRUE(mount);
    ASSERT_EQ(held.size(), 1u);
    EXPECT_EQ(held[0].pid, pid);
    EXPECT_EQ(held[0].path, path);
    EXPECT_GE(held[0].bytes, 4 * MiB);
    EXPECT_FALSE(held[0].command.empty());

    // Nothing once the holder is gone.
    EXPECT_TRUE(filesystems.heldDeletedFiles(mount->devMajor, mount->devMinor).empty());
}

} // namespace

// LinuxDisks (images, loop devices, blkid), UdevMonitor on kernel uevents, FileStateStore.

#include "fixture.hpp"

#include "lvkeeper/sys/linux.hpp"
#include "lvkeeper/sys/udev_monitor.hpp"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

using namespace std::chrono_literals;
using lvkeeper::LoopDevice;
using lvkeeper::sys::FileStateStore;
using lvkeeper::sys::LinuxDisks;
using lvkeeper::sys::UdevMonitor;
using lvkeeper::test::EventLoop;
using lvkeeper::test::TempDir;

namespace
{

constexpr std::uint64_t MiB = 1024 * 1024;

std::string realPath(const std::string& path)
{
    char* real = ::realpath(path.c_str(), nullptr);
    std::string result = real != nullptr ? real : path;
    std::free(real);
    return result;
}

bool hasLoop(const std::vector<LoopDevice>& loops, const std::string& device)
{
    return std::any_of(loops.begin(), loops.end(), [&](const LoopDevice& l) { return l.device == device; });
}

/// Detaches on scope exit, so a failed assertion never leaks a loop device.
class AttachedLoop
{
  public:
    AttachedLoop(LinuxDisks& disks, const std::string& image) : disks_(disks), device_(disks.attachLoop(image)) {}
    ~AttachedLoop()
    {
        detach();
    }
    AttachedLoop(const AttachedLoop&) = delete;
    AttachedLoop& operator=(const AttachedLoop&) = delete;

    const std::string& device() const
    {
        return device_;
    }
    void detach()
    {
        if (!detached_)
        {
            detached_ = true;
            disks_.detachLoop(device_);
        }
    }

  private:
    LinuxDisks& disks_;
    std::string device_;
    bool detached_ = false;
};

class DisksTest : public ::testing::Test
{
  protected:
    void SetUp() override
    {
        if (!lvkeeper::test::isRoot())
        {
            GTEST_SKIP() << "needs root (loop devices, mount)";
        }
    }

    TempDir dir;
    LinuxDisks disks;
};

TEST_F(DisksTest, CreateImageIsFullyAllocated)
{
    const std::string image = dir / "disk.img";
    disks.createImage(image, 16 * MiB);
    auto allocation = disks.fileAllocation(image);
    ASSERT_TRUE(allocation);
    EXPECT_EQ(allocation->second, 16 * MiB);
    EXPECT_GE(allocation->first, 16 * MiB);

    struct stat st{};
    ASSERT_EQ(::stat(image.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(DisksTest, CreateImageRefusesAnExistingPath)
{
    const std::string image = dir / "disk.img";
    std::ofstream(image) << "precious";
    try
    {
        disks.createImage(image, MiB);
        ADD_FAILURE() << "no exception";
    }
    catch (const std::system_error& e)
    {
        EXPECT_EQ(e.code().value(), EEXIST);
    }
    std::ifstream in(image);
    std::string content;
    in >> content;
    EXPECT_EQ(content, "precious");
}

TEST_F(DisksTest, CreateImageOnAFullFilesystemFailsWithEnospcAndLeavesNothing)
{
    const std::string small = dir / "small";
    ASSERT_EQ(::mkdir(small.c_str(), 0755), 0);
    ASSERT_EQ(::mount("lvkeeper-test", small.c_str(), "tmpfs", 0, "size=1m"), 0);
    int code = 0;
    try
    {
        disks.createImage(small + "/disk.img", 8 * MiB);
    }
    catch (const std::system_error& e)
    {
        code = e.code().value();
    }
    bool leftover = ::access((small + "/disk.img").c_str(), F_OK) == 0;
    ::umount2(small.c_str(), MNT_DETACH);
    EXPECT_EQ(code, ENOSPC);
    EXPECT_FALSE(leftover);
}

TEST_F(DisksTest, RemoveImage)
{
    const std::string image = dir / "disk.img";
    disks.createImage(image, MiB);
    disks.removeImage(image);
    EXPECT_FALSE(disks.fileAllocation(image));
    EXPECT_THROW(disks.removeImage(image), std::system_error);
}

TEST_F(DisksTest, LoopRoundTripAndSignatures)
{
    const std::string image = dir / "disk.img";
    disks.createImage(image, 32 * MiB);

    AttachedLoop loop(disks, image);
    EXPECT_EQ(loop.device().rfind("/dev/loop", 0), 0u) << loop.device();

    auto loops = disks.loopDevices();
    auto found =
        std::find_if(loops.begin(), loops.end(), [&](const LoopDevice& l) { return l.device == loop.device(); });
    ASSERT_NE(found, loops.end());
    EXPECT_EQ(found->backingFile, realPath(image));

    // fallocate leaves zeroes: nothing for blkid to find.
    EXPECT_EQ(disks.signature(loop.device()), std::nullopt);
    ASSERT_EQ(lvkeeper::test::runProgram({"mkfs.ext4", "-q", "-F", "-E", "nodiscard", loop.device()}), 0);
    EXPECT_EQ(disks.signature(loop.device()), std::optional<std::string>("ext4"));

    loop.detach();
    EXPECT_FALSE(hasLoop(disks.loopDevices(), loop.device()));
}

TEST_F(DisksTest, SignatureOfAMissingDeviceThrows)
{
    EXPECT_THROW(disks.signature("/dev/lvkeeper-no-such-device"), std::system_error);
}

TEST_F(DisksTest, DetachingAnUnboundDeviceThrows)
{
    const std::string image = dir / "disk.img";
    disks.createImage(image, MiB);
    AttachedLoop loop(disks, image);
    std::string device = loop.device();
    loop.detach();
    EXPECT_THROW(disks.detachLoop(device), std::system_error);
}

TEST_F(DisksTest, LoopDevicesUnderAFakeSysRoot)
{
    TempDir sys;
    std::filesystem::create_directories(sys / "block/loop3/loop");
    std::filesystem::create_directories(sys / "block/loop4");
    std::filesystem::create_directories(sys / "block/vda");
    std::ofstream(sys / "block/loop3/loop/backing_file") << "/media/disk3.img\n";

    LinuxDisks fake(sys.path());
    auto loops = fake.loopDevices();
    ASSERT_EQ(loops.size(), 1u);
    EXPECT_EQ(loops[0].device, "/dev/loop3");
    EXPECT_EQ(loops[0].backingFile, "/media/disk3.img");
}

TEST_F(DisksTest, ListDirectoryAndFileAllocation)
{
    std::ofstream(dir / "b") << "bb";
    std::ofstream(dir / "a") << "a";
    EXPECT_EQ(disks.listDirectory(dir.path()), (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(disks.listDirectory(dir / "missing").empty());

    auto allocation = disks.fileAllocation(dir / "b");
    ASSERT_TRUE(allocation);
    EXPECT_EQ(allocation->second, 2u);
    EXPECT_FALSE(disks.fileAllocation(dir / "missing"));
}

TEST_F(DisksTest, UdevMonitorSeesLoopAttachAndDetach)
{
    EventLoop loop;
    std::vector<std::pair<std::string, LoopDevice>> events;
    // No udevd on a bare host: listen to the kernel's own uevents, as the daemon does then.
    UdevMonitor monitor(
        loop.get(), [&](const std::string& action, const LoopDevice& device) { events.emplace_back(action, device); },
        "kernel");

    const std::string image = dir / "disk.img";
    disks.createImage(image, 16 * MiB);
    AttachedLoop attached(disks, image);
    const std::string backing = realPath(image);

    auto sawAttach = [&] {
        return std::any_of(events.begin(), events.end(), [&](const auto& e) {
            return (e.first == "change" || e.first == "add") && e.second.device == attached.device() &&
                   e.second.backingFile == backing;
        });
    };
    EXPECT_TRUE(loop.runUntil(sawAttach, 1s));

    events.clear();
    attached.detach();
    auto sawDetach = [&] {
        return std::any_of(events.begin(), events.end(), [&](const auto& e) {
            return e.second.device == attached.device() && e.second.backingFile.empty();
        });
    };
    EXPECT_TRUE(loop.runUntil(sawDetach, 1s));
}

// The image-path check the boot-time attach and adoption rely on: a regular, root-owned file that only
// root may write, directly inside the image directory, which only root may change.
class ImageRefusalTest : public DisksTest
{
  protected:
    void SetUp() override
    {
        DisksTest::SetUp();
        media = dir / "media";
        ASSERT_EQ(::mkdir(media.c_str(), 0755), 0);
        good = media + "/disk0.img";
        std::ofstream(good) << "image";
        ASSERT_EQ(::chmod(good.c_str(), 0600), 0);
    }

    /// The reason for image, "" when it is accepted.
    std::string refusal(const std::string& image)
    {
        return disks.imageRefusal(image, media).value_or("");
    }

    std::string media;
    std::string good;
};

TEST_F(ImageRefusalTest, AcceptsARootOwnedFileOnlyRootMayWrite)
{
    EXPECT_EQ(refusal(good), "");
    EXPECT_EQ(disks.imageRefusal(good, media + "/").value_or(""), "") << "a trailing slash on the directory";
    ASSERT_EQ(::chmod(good.c_str(), 0644), 0);
    EXPECT_EQ(refusal(good), "") << "others may read it";
}

TEST_F(ImageRefusalTest, RefusesASymlinkEvenToAGoodImage)
{
    const std::string link = media + "/link.img";
    ASSERT_EQ(::symlink(good.c_str(), link.c_str()), 0);
    EXPECT_EQ(refusal(link), "is a symbolic link, not a regular file");
    const std::string outside = media + "/passwd.img";
    ASSERT_EQ(::symlink("/etc/passwd", outside.c_str()), 0);
    EXPECT_EQ(refusal(outside), "is a symbolic link, not a regular file");
}

TEST_F(ImageRefusalTest, RefusesSubdirectoriesAndPathsOutside)
{
    // Like udisks2's /media/<user>/: whatever a user plugs in appears there.
    ASSERT_EQ(::mkdir((media + "/alice").c_str(), 0755), 0);
    const std::string nested = media + "/alice/disk.img";
    std::ofstream(nested) << "image";
    ASSERT_EQ(::chmod(nested.c_str(), 0600), 0);
    EXPECT_EQ(refusal(nested),
              "in a subdirectory of the image directory " + media + " (images must be directly inside it)");
    EXPECT_EQ(refusal(media + "/../disk0.img"), "not a file name inside the image directory " + media);
    EXPECT_EQ(refusal(media + "/alice/../disk0.img"), "not a file name inside the image directory " + media);
    EXPECT_EQ(refusal(media), "not inside the image directory " + media);
    EXPECT_EQ(refusal(media + "/"), "not a file name inside the image directory " + media);
    EXPECT_EQ(refusal(media + "2/disk0.img"), "not inside the image directory " + media);
    EXPECT_EQ(refusal("/etc/passwd"), "not inside the image directory " + media);
    EXPECT_EQ(refusal("disk0.img"), "not inside the image directory " + media);
    EXPECT_EQ(refusal(media + "/alice"), "is a directory, not a regular file");
}

TEST_F(ImageRefusalTest, RefusesFilesOthersMayWrite)
{
    ASSERT_EQ(::chmod(good.c_str(), 0620), 0);
    EXPECT_EQ(refusal(good), "is writable by group or others (mode 0620)");
    ASSERT_EQ(::chmod(good.c_str(), 0602), 0);
    EXPECT_EQ(refusal(good), "is writable by group or others (mode 0602)");
}

TEST_F(ImageRefusalTest, RefusesFilesNotOwnedByRoot)
{
    ASSERT_EQ(::chown(good.c_str(), 65534, 0), 0);
    EXPECT_EQ(refusal(good), "is owned by uid 65534, not root");
}

TEST_F(ImageRefusalTest, RefusesFifosWithoutBlockingOnThem)
{
    const std::string fifo = media + "/fifo.img";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    // No writer ever opens it: an open for reading would hang here.
    EXPECT_EQ(refusal(fifo), "is a fifo, not a regular file");
    EXPECT_THROW(disks.attachLoop(fifo), std::system_error);
}

TEST_F(ImageRefusalTest, RefusesWhatDoesNotExist)
{
    EXPECT_EQ(refusal(media + "/missing.img"), "does not exist");
}

TEST_F(ImageRefusalTest, RefusesADirectoryOthersMayChange)
{
    ASSERT_EQ(::chmod(media.c_str(), 0775), 0);
    EXPECT_EQ(refusal(good), "the image directory " + media + " is writable by group or others (mode 0775)");
    // Sticky (like /tmp): others may add files but not rename or remove root's.
    ASSERT_EQ(::chmod(media.c_str(), 01777), 0);
    EXPECT_EQ(refusal(good), "");
    ASSERT_EQ(::chmod(media.c_str(), 0755), 0);
    ASSERT_EQ(::chown(media.c_str(), 65534, 65534), 0);
    EXPECT_EQ(refusal(good), "the image directory " + media + " is owned by uid 65534, not root");
}

TEST_F(ImageRefusalTest, AttachLoopDoesNotFollowSymlinks)
{
    const std::string link = media + "/link.img";
    ASSERT_EQ(::symlink(good.c_str(), link.c_str()), 0);
    try
    {
        disks.attachLoop(link);
        ADD_FAILURE() << "attached a symlink";
    }
    catch (const std::system_error& e)
    {
        EXPECT_EQ(e.code().value(), ELOOP) << e.what();
    }
}

TEST(FileStateStoreTest, ABadLineMakesTheRecordCorruptButLeavesTheGoodLinesForTheBoot)
{
    TempDir dir;
    FileStateStore store(dir / "state");
    store.setImages({"/media/disk0.img", "/media/disk1.img"});
    {
        std::ofstream out(dir / "state/images", std::ios::app);
        out << "disk9.img\n/media/disk2.img\n";
    }
    EXPECT_THROW(store.images(), std::system_error);
    std::vector<std::string> rejected;
    EXPECT_EQ(store.readableImages(rejected),
              (std::vector<std::string>{"/media/disk0.img", "/media/disk1.img", "/media/disk2.img"}));
    EXPECT_EQ(rejected, std::vector<std::string>{"line 3 is not an absolute image path"});
}

TEST(FileStateStoreTest, RoundTrip)
{
    TempDir dir;
    FileStateStore store(dir / "state/lvkeeper");
    EXPECT_TRUE(store.images().empty());

    std::vector<std::string> images = {"/var/lib/lvkeeper/images/pv1.img", "/media/spare/pv 2.img"};
    store.setImages(images);
    EXPECT_EQ(store.images(), images);
    EXPECT_FALSE(std::filesystem::exists(dir / "state/lvkeeper/images.tmp"));

    struct stat st{};
    ASSERT_EQ(::stat((dir / "state/lvkeeper").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777 & ~0755u, 0u);

    FileStateStore reopened(dir / "state/lvkeeper");
    EXPECT_EQ(reopened.images(), images);

    store.setImages({});
    EXPECT_TRUE(store.images().empty());

    EXPECT_THROW(store.setImages({"relative.img"}), std::invalid_argument);
    EXPECT_THROW(store.setImages({"/two\nlines"}), std::invalid_argument);
}

} // namespace

#pragma once

#include "lvkeeper/system.hpp"

#include <string>

namespace lvkeeper::sys
{

/// Filesystems on the real kernel: libmount for the table, statvfs, sysfs ext4 errors, mount(2), /proc scan.
class LinuxFilesystems : public Filesystems
{
  public:
    /// Roots are parameters so tests can hand in a fake tree.
    explicit LinuxFilesystems(std::string procRoot = "/proc", std::string sysRoot = "/sys");

    std::optional<MountInfo> findMount(const std::string& mountPoint) override;
    std::optional<MountInfo> mountOf(const std::string& path) override;
    FsUsage usage(const std::string& path) override;
    std::uint64_t errorCount(const MountInfo& mount) override;
    void remountReadWrite(const MountInfo& mount) override;
    std::vector<HeldDeletedFile> heldDeletedFiles(unsigned devMajor, unsigned devMinor) override;
    std::optional<std::uint64_t> filesystemSize(const MountInfo& mount) override;

  private:
    std::string procRoot_;
    std::string sysRoot_;
};

/// Loop devices through /dev/loop-control and ioctls, images with fallocate(2), libblkid probes.
class LinuxDisks : public Disks
{
  public:
    explicit LinuxDisks(std::string sysRoot = "/sys");

    std::vector<LoopDevice> loopDevices() override;
    std::string attachLoop(const std::string& image) override;
    void detachLoop(const std::string& device) override;
    void createImage(const std::string& path, std::uint64_t size) override;
    void removeImage(const std::string& path) override;
    std::optional<std::string> signature(const std::string& device) override;
    void allocateImage(const std::string& path) override;
    void flush(const std::string& device) override;
    std::vector<std::string> listDirectory(const std::string& dir) override;
    std::optional<std::string> imageRefusal(const std::string& image, const std::string& directory) override;
    std::optional<std::pair<std::uint64_t, std::uint64_t>> fileAllocation(const std::string& path) override;

  private:
    std::string sysRoot_;
};

/// StateStore in a directory: one image path per line in <dir>/images, the intent journal in <dir>/journal;
/// each replaced by a durable rename.
class FileStateStore : public StateStore
{
  public:
    explicit FileStateStore(std::string dir);

    /// Throws on any line that is not an absolute path: the daemon reports the whole record as unreadable.
    std::vector<std::string> images() override;
    /// What the boot needs: every good line, each bad one (its number and why) in rejected. A record
    /// that cannot be read at all still throws.
    std::vector<std::string> readableImages(std::vector<std::string>& rejected);
    void setImages(const std::vector<std::string>& images) override;
    std::optional<std::string> readJournal() override;
    void writeJournal(const std::string& text) override;
    std::string setAsideJournal() override;
    std::string location() const override;

  private:
    std::string dir_;
};

} // namespace lvkeeper::sys

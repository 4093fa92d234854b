#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lvkeeper
{

/// A line of the mount table.
struct MountInfo
{
    std::string mountPoint;
    std::string source;    ///< /dev/mapper/vg0-data0
    std::string fsType;    ///< ext4, xfs
    unsigned devMajor = 0; ///< st_dev of the filesystem
    unsigned devMinor = 0;
    bool readOnly = false; ///< mount or superblock read-only
    std::string options;   ///< VFS and fs options, comma separated
};

/// statvfs of a mounted filesystem, in bytes and inodes.
struct FsUsage
{
    std::uint64_t size = 0;      ///< f_blocks * f_frsize
    std::uint64_t used = 0;      ///< (f_blocks - f_bfree) * f_frsize
    std::uint64_t available = 0; ///< f_bavail * f_frsize (what writers get)
    std::uint64_t inodes = 0;
    std::uint64_t inodesUsed = 0;
    bool readOnly = false;

    /// Used space as df counts it: used / (used + available), in percent.
    double usedPercent() const;
    /// Used inodes in percent, 0 when the fs has no inode limit.
    double inodesUsedPercent() const;
    /// Whether another reading says the same (size, used, available, inodes used, read-only).
    bool sameAs(const FsUsage& other) const;
};

/// A deleted file some process still holds open: space df counts as used that no file shows.
struct HeldDeletedFile
{
    pid_t pid = 0;
    uid_t uid = 0;       ///< the process's real uid: who may be told about it
    std::string command; ///< /proc/<pid>/comm
    std::string path;    ///< the name it had, without " (deleted)"
    std::uint64_t bytes = 0;
};

/// Mounts, statvfs, filesystem health, remount.
class Filesystems
{
  public:
    virtual ~Filesystems() = default;

    /// The mount whose mount point is exactly mountPoint (the topmost one), if any.
    virtual std::optional<MountInfo> findMount(const std::string& mountPoint) = 0;
    /// The mount that holds path (longest mount point prefix).
    virtual std::optional<MountInfo> mountOf(const std::string& path) = 0;
    /// statvfs of a path. Throws std::system_error.
    virtual FsUsage usage(const std::string& path) = 0;
    /// Errors the filesystem has recorded (ext4: sysfs errors_count or superblock state); 0 when clean or unknown.
    virtual std::uint64_t errorCount(const MountInfo& mount) = 0;
    /// Remounts read-write in place with mount(2) MS_REMOUNT, keeping the other flags. Throws std::system_error.
    virtual void remountReadWrite(const MountInfo& mount) = 0;
    /// Deleted files held open by any process on the filesystem with this st_dev.
    virtual std::vector<HeldDeletedFile> heldDeletedFiles(unsigned devMajor, unsigned devMinor) = 0;
    /// The size the filesystem itself records (superblock block count), which statvfs does not show
    /// (it leaves out metadata); nullopt when unknown.
    virtual std::optional<std::uint64_t> filesystemSize(const MountInfo& mount) = 0;
};

/// A running UsageProbes::watch; destroying it stops it, and its callback is never called after that.
class UsageWatch
{
  public:
    virtual ~UsageWatch() = default;
};

/// Looks at a filesystem's usage again and again, for writes fanotify cannot see (a shared mmap, a loop device
/// over a file on it), without waking the event loop while nothing changes: each look wakes a sleeping daemon,
/// and its whole loop costs several times what one statvfs does.
class UsageProbes
{
  public:
    virtual ~UsageProbes() = default;

    /// Every `every`, statvfs(path); the first time it differs from `seen` (size, used, available, inodes used,
    /// read-only) or fails, calls changed once, from the event loop, and stops.
    virtual std::unique_ptr<UsageWatch> watch(const std::string& path, std::chrono::milliseconds every,
                                              const FsUsage& seen, std::function<void()> changed) = 0;
};

/// A loop device and its backing file.
struct LoopDevice
{
    std::string device;      ///< /dev/loop3
    std::string backingFile; ///< /media/disk3.img, empty when unbound
};

/// Loop devices, image files, signatures.
class Disks
{
  public:
    virtual ~Disks() = default;

    /// Bound loop devices.
    virtual std::vector<LoopDevice> loopDevices() = 0;
    /// Binds image to a free loop device (loop-control), returns its node. Throws std::system_error.
    virtual std::string attachLoop(const std::string& image) = 0;
    /// Unbinds a loop device. Throws std::system_error.
    virtual void detachLoop(const std::string& device) = 0;
    /// Creates a new, fully allocated (fallocate, not sparse) file; fails if it exists. Throws std::system_error.
    virtual void createImage(const std::string& path, std::uint64_t size) = 0;
    /// Removes a file this daemon created. Throws std::system_error.
    virtual void removeImage(const std::string& path) = 0;
    /// The first signature (filesystem, RAID, LVM2_member, partition table) libblkid finds, if any. Throws
    /// std::system_error.
    virtual std::optional<std::string> signature(const std::string& device) = 0;
    /// Allocates every hole of an existing file (fallocate mode 0: data untouched). Throws std::system_error.
    virtual void allocateImage(const std::string& path) = 0;
    /// Makes what was written to a block device durable: fsync(2) of the device, which for a loop device also
    /// fsyncs its backing file (a loop device writes through the page cache of the image's filesystem).
    /// Throws std::system_error.
    virtual void flush(const std::string& device) = 0;
    /// Files in a directory (names only).
    virtual std::vector<std::string> listDirectory(const std::string& dir) = 0;
    /// Why image must not back a PV, nullopt when it may: it must be a regular file (opened with
    /// O_NOFOLLOW: not a symlink), owned by root and writable by nobody else, directly inside
    /// directory (not in a subdirectory), which itself only root may change.
    virtual std::optional<std::string> imageRefusal(const std::string& image, const std::string& directory) = 0;
    /// Allocated bytes of a file (st_blocks * 512) and its size; nullopt if missing.
    virtual std::optional<std::pair<std::uint64_t, std::uint64_t>> fileAllocation(const std::string& path) = 0;
};

/// Small persistent state under /var/lib/lvkeeper.
class StateStore
{
  public:
    virtual ~StateStore() = default;

    /// Image files that back PVs of watched VGs, re-attached at boot.
    virtual std::vector<std::string> images() = 0;
    /// Replaces the recorded list (atomically and durably).
    virtual void setImages(const std::vector<std::string>& images) = 0;
    /// The intent journal's text, nullopt when there is none. Throws std::system_error when it cannot be read.
    virtual std::optional<std::string> readJournal() = 0;
    /// Replaces the journal atomically and durably: temp file, fsync, rename, directory fsync. Throws.
    virtual void writeJournal(const std::string& text) = 0;
    /// Moves a journal that cannot be parsed aside so new intents can be recorded; returns where it went.
    virtual std::string setAsideJournal() = 0;
    /// Where the state lives (/var/lib/lvkeeper), for messages.
    virtual std::string location() const = 0;
};

} // namespace lvkeeper

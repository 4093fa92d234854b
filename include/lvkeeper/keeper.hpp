#pragma once

#include "lvkeeper/command.hpp"
#include "lvkeeper/config.hpp"
#include "lvkeeper/job_queue.hpp"
#include "lvkeeper/policy.hpp"
#include "lvkeeper/scheduler.hpp"
#include "lvkeeper/system.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace lvkeeper
{

/// Tunables that are not admin configuration.
struct KeeperOptions
{
    std::string lvmCommand = "lvm"; ///< the one test seam: LVKEEPER_LVM swaps in a recording fake
    std::chrono::milliseconds commandTimeout{10 * 60 * 1000};
    std::chrono::milliseconds propertiesInterval{250};
};

/// What a watched volume looks like now; published as D-Bus properties.
struct VolumeState
{
    VolumeConfig config;
    bool mounted = false;
    MountInfo mount;
    FsUsage usage;
    std::string vg; ///< empty when the mount is not an LVM LV
    std::string lv;
    std::string lvPath;
    std::uint64_t lvSize = 0;
    std::uint64_t vgFree = 0;
    std::uint64_t extentSize = 0;
    bool readOnly = false;
    bool fsErrors = false;
    bool fsGrowPending = false;
    std::string state = "idle";
    std::string lastError;

    // Bookkeeping for edge-triggered signals and auto-grow.
    bool aboveThreshold = false;
    bool exhaustedReported = false;
    bool autoGrowQueued = false;
    std::optional<std::chrono::steady_clock::time_point> lastGrowEnd;

    // Fill rate: recent (time, used) readings, the rate they give, how long the last grow took.
    std::deque<policy::UsageSample> history;
    double fillRate = 0.0; ///< bytes per second
    std::chrono::milliseconds lastGrowDuration{0};
    std::string exhaustedReason; ///< why the last SpaceExhausted was sent, for this episode

    /// "vg0/data0", empty when not LVM.
    std::string lvName() const
    {
        return vg.empty() ? std::string() : vg + "/" + lv;
    }
};

/// What the world hears from the keeper: D-Bus signals and sd_notify STATUS=.
class KeeperListener
{
  public:
    virtual ~KeeperListener() = default;

    virtual void thresholdCrossed(const std::string& volume, double usedPercent, std::uint64_t available) = 0;
    virtual void grown(const std::string& volume, std::uint64_t oldSize, std::uint64_t newSize,
                       const std::string& reason) = 0;
    virtual void growFailed(const std::string& volume, const std::string& error) = 0;
    virtual void diskAdded(const std::string& vg, const std::string& image, const std::string& device,
                           std::uint64_t size) = 0;
    virtual void remounted(const std::string& volume) = 0;
    virtual void readOnly(const std::string& volume, const std::string& reason) = 0;
    virtual void spaceExhausted(const std::string& volume, const std::string& reason) = 0;
    /// Properties of volumes()[index] changed (already rate-limited).
    virtual void volumeChanged(std::size_t index) = 0;
    /// The one-line status changed.
    virtual void statusChanged(const std::string& status) = 0;
    /// The list of volumes changed (reload): indexes are new.
    virtual void volumesReplaced() {}
};

/// The policy engine: watches volumes, decides and runs jobs through the seams. No syscalls of its own.
class Keeper
{
  public:
    using Error = std::exception_ptr;
    using GrowReply = std::function<void(std::uint64_t newSize, Error error)>;
    using AddDiskReply = std::function<void(const std::string& image, const std::string& device, Error error)>;
    using RemountReply = std::function<void(Error error)>;

    Keeper(Config config, CommandRunner& runner, Scheduler& scheduler, Filesystems& filesystems, Disks& disks,
           StateStore& state, ActivityWatcher& watcher, KeeperOptions options = {});
    ~Keeper();

    Keeper(const Keeper&) = delete;
    Keeper& operator=(const Keeper&) = delete;

    /// Listener for signals; may be set once before start().
    void setListener(KeeperListener* listener);

    /// Scans mounts and LVM, heals pending filesystem grows, then calls ready().
    void start(std::function<void()> ready);

    /// Replaces the configuration (SIGHUP): volumes are matched by mount point.
    void reload(Config config);

    /// Writes happened on the filesystem mounted at mountPoint.
    void onActivity(const std::string& mountPoint);
    /// The kernel reported a filesystem error there.
    void onFilesystemError(const std::string& mountPoint);
    /// The mount table changed.
    void onMountsChanged();
    /// A loop device was bound or unbound ("add", "change", "remove").
    void onLoopDevice(const std::string& action, const LoopDevice& device);
    /// The slow backstop timer fired: re-read everything once.
    void onBackstop();

    /// Grow a volume (mount point or vg/lv) to size ("", "4G", "+500M"); reply exactly once.
    void grow(const std::string& volume, const std::string& size, GrowReply reply);
    /// Add an image-backed disk to a watched VG; reply exactly once.
    void addDisk(const std::string& vg, const std::string& size, AddDiskReply reply);
    /// Remount a read-only watched volume read-write; reply exactly once.
    void remount(const std::string& volume, RemountReply reply);
    /// Grow the filesystem of a volume to its LV (a resize that did not happen), as a job; reply once.
    void healFilesystem(const std::string& volume, GrowReply reply);

    /// Runs a job in the queue of a VG, after the jobs already there (repairs share the grows' lane).
    void enqueue(const std::string& vg, std::string name, JobQueue::Job job);
    /// Re-reads LVM and every volume (after something else changed the VG); done once finished.
    void rescan(std::function<void()> done);
    /// The filesystem size of volume i as the filesystem records it (statvfs size when unknown).
    std::uint64_t filesystemSize(std::size_t index) const;

    /// The watched volumes, in configuration order.
    const std::vector<VolumeState>& volumes() const;
    /// The VGs that hold a watched, identified volume.
    std::set<std::string> watchedVolumeGroups() const;
    /// The current config.
    const Config& config() const;
    /// One line for STATUS=.
    std::string statusLine() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace lvkeeper

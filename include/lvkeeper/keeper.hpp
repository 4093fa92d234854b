#pragma once

#include "lvkeeper/command.hpp"
#include "lvkeeper/config.hpp"
#include "lvkeeper/executor.hpp"
#include "lvkeeper/fault_gate.hpp"
#include "lvkeeper/job_queue.hpp"
#include "lvkeeper/metrics.hpp"
#include "lvkeeper/operation.hpp"
#include "lvkeeper/policy.hpp"
#include "lvkeeper/publisher.hpp"
#include "lvkeeper/scheduler.hpp"
#include "lvkeeper/system.hpp"
#include "lvkeeper/volume.hpp"
#include "lvkeeper/volumes.hpp"

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace lvkeeper
{

/// Tunables that are not admin configuration.
struct KeeperOptions
{
    std::string lvmCommand = "lvm"; ///< the test seam LVKEEPER_LVM swaps in a recording fake
    std::chrono::milliseconds commandTimeout{10 * 60 * 1000};
    std::chrono::milliseconds propertiesInterval{250};
    std::string version; ///< for the metrics' build info
};

/// The seams a Keeper acts through; the real ones in the daemon, fakes in tests.
struct KeeperSeams
{
    CommandRunner& runner;
    Scheduler& scheduler;
    Filesystems& filesystems;
    Disks& disks;
    StateStore& state;
    ActivityWatcher& watcher;
    Executor& executor;
    FaultGate& gate;
    TextFiles& files; ///< where MetricsFile= goes
    UsageProbes& probes; ///< the looks at writes fanotify cannot see
};

/// The coordinator of one straight flow: an event -> the volume's state is refreshed (observe only) -> a pure
/// decision (decide()) -> the VG's queue -> an operation (named, journaled steps) -> its outcome -> published.
/// No syscalls of its own: everything goes through the seams.
class Keeper
{
  public:
    using Error = std::exception_ptr;
    using GrowReply = std::function<void(std::uint64_t newSize, Error error)>;
    using AddDiskReply = std::function<void(const std::string& image, const std::string& device, Error error)>;
    using RemountReply = std::function<void(Error error)>;

    Keeper(Config config, KeeperSeams seams, KeeperOptions options = {});
    ~Keeper();

    Keeper(const Keeper&) = delete;
    Keeper& operator=(const Keeper&) = delete;

    /// Listener for signals; may be set once before start().
    void setListener(KeeperListener* listener);

    /// Scans mounts and LVM, settles what the journal says was left half-done, heals pending filesystem grows,
    /// then calls ready().
    void start(std::function<void()> ready);
    /// SIGTERM: new calls and waiting jobs get Busy, the running operations finish (their callers get their
    /// answer), long waits are left to the next start; then stopped().
    void stop(std::function<void()> stopped);

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

    /// Runs a job in the queue of a VG, after the jobs already there (repairs share the grows' lane); cancel()
    /// instead when lvkeeperd stops before it ran.
    void enqueue(const std::string& vg, std::string name, JobQueue::Job job, JobQueue::Cancel cancel = {});
    /// Re-reads LVM and every volume (after something else changed the VG); done once finished. A background
    /// rescan (for Diagnose) runs its lvm scan at normal priority.
    void rescan(std::function<void()> done, bool background = false);
    /// Tries again to finish or undo an operation a stopped run left half-done (the journal's intent id).
    void settle(std::uint64_t intentId, std::function<void(Error error)> done);
    /// The filesystem size of volume i as the filesystem records it (statvfs size when unknown).
    std::uint64_t filesystemSize(std::size_t index) const;
    /// Whether it is stopping (new work is refused).
    bool stopping() const;

    /// The watched volumes, in configuration order.
    const std::vector<VolumeState>& volumes() const;
    /// The VGs that hold a watched, identified volume.
    std::set<std::string> watchedVolumeGroups() const;
    /// The current config.
    const Config& config() const;
    /// One line for STATUS=.
    std::string statusLine() const;
    /// What operations act through (the Doctor's repairs are operations too).
    OperationContext& context();
    /// Disks added since start, for monitoring.
    std::uint64_t disksAdded() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace lvkeeper

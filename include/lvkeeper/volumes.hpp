#pragma once

#include "lvkeeper/lvm.hpp"
#include "lvkeeper/policy.hpp"
#include "lvkeeper/publisher.hpp"
#include "lvkeeper/scheduler.hpp"
#include "lvkeeper/system.hpp"
#include "lvkeeper/volume.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace lvkeeper
{

/// Where write activity comes from (fanotify in the daemon): the keeper says which mounts to watch.
class ActivityWatcher
{
  public:
    virtual ~ActivityWatcher() = default;

    /// Starts reporting writes on the filesystem mounted at mountPoint. Throws std::system_error.
    virtual void watch(const std::string& mountPoint) = 0;
    /// Stops (no error when not watched or already unmounted).
    virtual void unwatch(const std::string& mountPoint) = 0;
};

/// What one look at a volume's mount found.
struct MountChange
{
    bool appeared = false;                     ///< a (new) filesystem is mounted there: identify its LV
    bool vanished = false;                     ///< it was unmounted
    std::optional<std::string> becameReadOnly; ///< why, when it just turned read-only
};

/// What one look at a volume's usage found.
struct UsageChange
{
    bool crossedUp = false; ///< used space or inodes reached GrowAt
    bool crossedDown = false;
};

/// The watched volumes and the only code that writes what is observed of them (mounts, statvfs, LVM). Observing
/// never starts an action: it updates the state, publishes what it saw (property changes, ThresholdCrossed,
/// ReadOnly), and says what changed.
class Volumes
{
  public:
    Volumes(Filesystems& fs, ActivityWatcher& watcher, Scheduler& scheduler, Publisher& publisher,
            const policy::Headroom& headroom);

    /// Replaces the list from a configuration, keeping what is known of volumes that stay (by mount point).
    void configure(const std::vector<VolumeConfig>& configs);

    std::vector<VolumeState>& all()
    {
        return volumes_;
    }
    const std::vector<VolumeState>& all() const
    {
        return volumes_;
    }
    /// The volume watched at mountPoint, nullptr when none (a reload dropped it).
    VolumeState* find(const std::string& mountPoint);
    /// A volume named by an admin: its mount point ("/data", "/data/") or its LV ("vg0/data0"). Throws
    /// KeeperError: InvalidArgument for an empty name, NotFound naming what is watched.
    VolumeState& named(const std::string& spec);
    /// The VGs that hold a watched, identified volume.
    std::set<std::string> volumeGroups() const;
    /// "/data (vg0/data0), /srv" for messages.
    std::string list() const;

    /// Re-reads the mount of v.
    MountChange refreshMount(VolumeState& v);
    /// Re-reads statvfs of v and its fill rate.
    UsageChange refreshUsage(VolumeState& v);
    /// Identifies v's LV in an lvs report by the mount's device number; true when it is an LV.
    bool applyLvs(VolumeState& v, const std::vector<lvm::Lv>& lvs);
    /// Applies an lvs report to every volume.
    void applyLvs(const std::vector<lvm::Lv>& lvs);
    /// What the filesystem records as its size (statvfs leaves out metadata, so it is no measure of a resize).
    std::uint64_t filesystemSize(const VolumeState& v);
    /// Sets what lvkeeper is doing with v.
    void setActivity(VolumeState& v, Activity activity);

  private:
    Filesystems& fs_;
    ActivityWatcher& watcher_;
    Scheduler& scheduler_;
    Publisher& publisher_;
    const policy::Headroom& headroom_;
    std::vector<VolumeState> volumes_;
};

} // namespace lvkeeper

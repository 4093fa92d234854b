#pragma once

#include "lvkeeper/config.hpp"
#include "lvkeeper/policy.hpp"
#include "lvkeeper/system.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lvkeeper
{

/// What lvkeeper is doing with a volume right now; the Volume's State property on the bus.
enum class Activity
{
    Idle,          ///< nothing running
    Growing,       ///< lvextend and the filesystem grow
    Remounting,    ///< mount(2) MS_REMOUNT read-write
    AddingDisk,    ///< a disk is being added to its VG
    FsGrowPending, ///< the LV grew but the filesystem did not (yet): healed on the next grow or at Remount
};

/// "idle", "growing", "remounting", "adding-disk", "fs-grow-pending".
std::string_view activityName(Activity activity);

/// What a watched volume looks like now (observed), and the episodes lvkeeper keeps for it. Published as the
/// D-Bus Volume properties. Identified by its mount point: operations look it up again after every step, so a
/// reload that replaced the list never leaves them holding a stale entry.
struct VolumeState
{
    VolumeConfig config;

    // ---- observed: the mount, statvfs and LVM
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
    Activity activity = Activity::Idle;
    std::string lastError;

    // ---- edge-triggered signals
    bool aboveThreshold = false;
    /// While the volume can get no more space: why ("max-size: ...", "max-disks: ...", "no-host-space: ...",
    /// "vg-full: ..."). SpaceExhausted is sent when this is set; it is cleared when space comes back.
    std::optional<std::string> exhausted;

    // ---- automatic growth
    bool autoGrowQueued = false;
    std::optional<std::chrono::steady_clock::time_point> lastGrowEnd;
    std::deque<policy::UsageSample> history; ///< recent (time, used) readings
    double fillRate = 0.0;                   ///< bytes per second
    double peakFillRate = 0.0;               ///< the fastest fill rate measured since start
    std::chrono::milliseconds lastGrowDuration{0};
    /// Automatic grows that failed in a row (a transient failure episode) and when to try again.
    unsigned failedGrows = 0;
    std::optional<std::chrono::steady_clock::time_point> retryGrowAt;

    // ---- counters for monitoring
    std::uint64_t growCount = 0;
    std::uint64_t growFailureCount = 0;
    std::optional<std::chrono::system_clock::time_point> lastGrowTime;

    /// "vg0/data0", empty when not LVM.
    std::string lvName() const
    {
        return vg.empty() ? std::string() : vg + "/" + lv;
    }
    /// Mounted read-write from an LV lvkeeper identified: something it can grow.
    bool growable() const
    {
        return mounted && !readOnly && !vg.empty();
    }
};

} // namespace lvkeeper

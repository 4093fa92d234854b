#pragma once

#include "lvkeeper/config.hpp"
#include "lvkeeper/policy.hpp"
#include "lvkeeper/volume.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace lvkeeper
{

/// What the keeper knows about adding disks to one VG, for decisions.
struct DiskLane
{
    bool autoAddDisk = false; ///< [Disks] AutoAddDisk=yes
    bool queued = false;      ///< an automatic AddDisk waits or runs in the VG's lane
    /// A reason that lasts until something changes ("max-disks: ...", "no-host-space: ..."): no disk is tried.
    std::optional<std::string> lastingBlock;
    /// After a transient failure (an lvm timeout, a failed pvcreate): when the next disk may be tried.
    std::optional<std::chrono::steady_clock::time_point> retryAt;
    unsigned failures = 0;                ///< transient failures in a row
    std::chrono::milliseconds lastAdd{0}; ///< how long the last automatic add took
};

/// What to do next for a volume, as a value: the keeper carries it out, nothing here touches the system.
struct Decision
{
    enum class Action
    {
        Nothing,
        Recheck,   ///< look again at `at` (cooldown, backoff)
        Grow,      ///< an automatic grow to `target`
        AddDisk,   ///< an automatic disk for the volume's VG (first, or early for a fast writer)
        Exhausted, ///< no more space can be had, for `reason`
    };
    Action action = Action::Nothing;
    std::chrono::steady_clock::time_point at{};
    std::uint64_t target = 0;
    std::string reason;
    bool addDiskToo = false; ///< with Grow: the VG cannot hold the next step, a disk goes right behind
};

/// The automatic step and target for a volume as it is now: GrowStep or larger for a fast writer, whole
/// extents, capped by MaxSize and by what the VG has free.
policy::GrowPlan autoGrowPlan(const VolumeState& v, const policy::Headroom& headroom);

/// Whether the VG cannot hold the next automatic step while MaxSize still allows it (a disk would help).
bool shortOfNextStep(const VolumeState& v, const policy::Headroom& headroom);

/// The grow duration to plan with for this volume.
std::chrono::milliseconds plannedGrow(const VolumeState& v, const policy::Headroom& headroom);
/// The add-disk duration to plan with for a VG.
std::chrono::milliseconds plannedAdd(const DiskLane& disks, const policy::Headroom& headroom);

/// The decision for one watched volume, from its state, its VG's disk lane and the time.
Decision decide(const VolumeState& v, const DiskLane& disks, std::chrono::steady_clock::time_point now,
                const policy::Headroom& headroom);

} // namespace lvkeeper

#include "lvkeeper/decision.hpp"

#include "lvkeeper/size.hpp"

namespace lvkeeper
{

namespace
{

bool canAddDisk(const DiskLane& disks, std::chrono::steady_clock::time_point now)
{
    return disks.autoAddDisk && !disks.lastingBlock && !(disks.retryAt && now < *disks.retryAt);
}

/// MaxSize leaves the volume no room beyond what the VG already has: a disk would not help.
bool maxSizeWithinVg(const VolumeState& v)
{
    return v.config.maxSize && v.lvSize + v.vgFree >= *v.config.maxSize;
}

} // namespace

std::chrono::milliseconds plannedGrow(const VolumeState& v, const policy::Headroom& headroom)
{
    return policy::plannedGrowDuration(v.lastGrowDuration, headroom);
}

std::chrono::milliseconds plannedAdd(const DiskLane& disks, const policy::Headroom& headroom)
{
    return disks.lastAdd.count() > 0 ? disks.lastAdd : headroom.assumedAdd;
}

policy::GrowPlan autoGrowPlan(const VolumeState& v, const policy::Headroom& headroom)
{
    std::uint64_t step = policy::autoStep(v.config.growStep, v.fillRate, plannedGrow(v, headroom), headroom, v.lvSize);
    std::uint64_t target = policy::requestedTarget(SizeRequest{}, v.lvSize, step, v.extentSize);
    return policy::planGrow(target, v.lvSize, v.config.maxSize, v.vgFree, v.extentSize, true);
}

bool shortOfNextStep(const VolumeState& v, const policy::Headroom& headroom)
{
    std::uint64_t next = policy::autoStep(v.config.growStep, v.fillRate, plannedGrow(v, headroom), headroom, v.lvSize);
    return v.vgFree < next && !(v.config.maxSize && v.lvSize + next > *v.config.maxSize);
}

Decision decide(const VolumeState& v, const DiskLane& disks, std::chrono::steady_clock::time_point now,
                const policy::Headroom& headroom)
{
    Decision d;
    if (!v.config.autoGrow || !v.growable())
    {
        return d;
    }
    bool addable = canAddDisk(disks, now) && !disks.queued;
    if (!policy::needsGrow(v.config, v.usage, v.fillRate, plannedGrow(v, headroom), headroom) || v.autoGrowQueued)
    {
        // No grow yet; but a writer fast enough to empty the VG before a disk could be added and grown into
        // gets the disk now.
        if (addable && !maxSizeWithinVg(v) &&
            policy::vgShort(v.fillRate, v.vgFree, plannedAdd(disks, headroom), plannedGrow(v, headroom), headroom))
        {
            d.action = Decision::Action::AddDisk;
            d.reason = "vg-short";
        }
        return d;
    }
    auto plan = autoGrowPlan(v, headroom);
    if (plan.growsAnything(v.lvSize))
    {
        if (v.retryGrowAt && now < *v.retryGrowAt)
        {
            d.action = Decision::Action::Recheck;
            d.at = *v.retryGrowAt;
            return d;
        }
        auto wait = policy::cooldownLeft(now, v.lastGrowEnd, v.config.cooldown);
        if (wait.count() > 0 && !policy::urgent(v.usage, v.fillRate, wait, plannedGrow(v, headroom), headroom))
        {
            d.action = Decision::Action::Recheck;
            d.at = now + wait;
            return d;
        }
        d.action = Decision::Action::Grow;
        d.target = plan.target;
        d.reason = "threshold";
        // The step after this one will not fit: the disk goes right behind the grow, before the VG is empty.
        VolumeState after = v;
        after.vgFree -= std::min(after.vgFree, plan.target - v.lvSize);
        after.lvSize = plan.target;
        d.addDiskToo = !plan.cappedByMaxSize && addable && shortOfNextStep(after, headroom);
        return d;
    }
    // Nothing to grow into: no cooldown helps here, only a disk or nothing.
    if (plan.cappedByMaxSize)
    {
        d.action = Decision::Action::Exhausted;
        d.reason = "max-size: " + v.config.mountPoint + " is at its MaxSize=" + formatSize(*v.config.maxSize);
        return d;
    }
    // The VG has not one extent left for the volume.
    if (addable)
    {
        d.action = Decision::Action::AddDisk;
        d.reason = "vg-full";
        return d;
    }
    if (disks.autoAddDisk && !disks.lastingBlock)
    {
        // A disk is on its way, or a transient failure waits out its backoff: never exhaustion.
        if (disks.retryAt && now < *disks.retryAt)
        {
            d.action = Decision::Action::Recheck;
            d.at = *disks.retryAt;
        }
        return d;
    }
    d.action = Decision::Action::Exhausted;
    d.reason = disks.lastingBlock
                   ? *disks.lastingBlock
                   : "vg-full: volume group " + v.vg + " is full and AutoAddDisk=no; add a disk with AddDisk";
    return d;
}

} // namespace lvkeeper

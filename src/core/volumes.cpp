#include "lvkeeper/volumes.hpp"

#include "lvkeeper/errors.hpp"
#include "lvkeeper/size.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace lvkeeper
{

namespace
{

std::string normalizePath(std::string path)
{
    while (path.size() > 1 && path.back() == '/')
    {
        path.pop_back();
    }
    return path;
}

} // namespace

std::string_view activityName(Activity activity)
{
    switch (activity)
    {
    case Activity::Idle:
        return "idle";
    case Activity::Growing:
        return "growing";
    case Activity::Remounting:
        return "remounting";
    case Activity::AddingDisk:
        return "adding-disk";
    case Activity::FsGrowPending:
        return "fs-grow-pending";
    }
    return "idle";
}

Volumes::Volumes(Filesystems& fs, ActivityWatcher& watcher, Scheduler& scheduler, Publisher& publisher,
                 const policy::Headroom& headroom) :
    fs_(fs),
    watcher_(watcher), scheduler_(scheduler), publisher_(publisher), headroom_(headroom)
{
}

void Volumes::configure(const std::vector<VolumeConfig>& configs)
{
    std::vector<VolumeState> next;
    for (const auto& vc : configs)
    {
        auto it = std::find_if(volumes_.begin(), volumes_.end(),
                               [&](const VolumeState& v)
                               {
                                   return v.config.mountPoint == vc.mountPoint;
                               });
        VolumeState v = it != volumes_.end() ? *it : VolumeState{};
        v.config = vc;
        v.autoGrowQueued = it != volumes_.end() && it->autoGrowQueued;
        next.push_back(std::move(v));
    }
    for (const auto& old : volumes_)
    {
        bool kept = std::any_of(next.begin(), next.end(),
                                [&](const VolumeState& v)
                                {
                                    return v.config.mountPoint == old.config.mountPoint;
                                });
        if (!kept && old.mounted)
        {
            watcher_.unwatch(old.config.mountPoint);
        }
    }
    volumes_ = std::move(next);
}

VolumeState* Volumes::find(const std::string& mountPoint)
{
    for (auto& v : volumes_)
    {
        if (v.config.mountPoint == mountPoint)
        {
            return &v;
        }
    }
    return nullptr;
}

VolumeState& Volumes::named(const std::string& spec)
{
    if (spec.empty())
    {
        throw KeeperError(ErrorKind::InvalidArgument,
                          "no volume given: name a watched mount point like /data or an LV like vg0/data0");
    }
    std::string wanted = spec[0] == '/' ? normalizePath(spec) : spec;
    for (auto& v : volumes_)
    {
        if (v.config.mountPoint == wanted || (!v.vg.empty() && v.lvName() == wanted))
        {
            return v;
        }
    }
    // A caller's string goes back to the caller only, and cut: it may be megabytes.
    std::string shown = spec.size() > 200 ? spec.substr(0, 200) + "..." : spec;
    throw KeeperError(ErrorKind::NotFound, "\"" + shown + "\" is not a watched volume; watched: " + list() +
                                               " (add a [Volume] section with MountPoint= to lvkeeper.conf)");
}

std::set<std::string> Volumes::volumeGroups() const
{
    std::set<std::string> vgs;
    for (const auto& v : volumes_)
    {
        if (!v.vg.empty())
        {
            vgs.insert(v.vg);
        }
    }
    return vgs;
}

std::string Volumes::list() const
{
    std::string list;
    for (const auto& v : volumes_)
    {
        list += (list.empty() ? "" : ", ") + v.config.mountPoint;
        if (!v.vg.empty())
        {
            list += " (" + v.lvName() + ")";
        }
    }
    return list.empty() ? "none" : list;
}

void Volumes::setActivity(VolumeState& v, Activity activity)
{
    if (v.activity != activity)
    {
        v.activity = activity;
        publisher_.changed(v.config.mountPoint);
    }
}

MountChange Volumes::refreshMount(VolumeState& v)
{
    MountChange change;
    std::optional<MountInfo> mount;
    try
    {
        mount = fs_.findMount(v.config.mountPoint);
    }
    catch (const std::exception& e)
    {
        spdlog::warn("event=mount-read-failed volume={} error=\"{}\"", v.config.mountPoint, e.what());
        return change;
    }
    const std::string& mp = v.config.mountPoint;
    bool wasMounted = v.mounted;
    bool wasReadOnly = v.readOnly;
    bool sameFs = wasMounted && mount && mount->devMajor == v.mount.devMajor && mount->devMinor == v.mount.devMinor;
    if (!mount)
    {
        if (wasMounted)
        {
            spdlog::warn("event=unmounted volume={}", mp);
            watcher_.unwatch(mp);
            v.mounted = false;
            v.readOnly = false;
            v.usage = FsUsage{};
            change.vanished = true;
            publisher_.changed(mp);
        }
        return change;
    }
    MountInfo previous = v.mount;
    v.mount = *mount;
    v.mounted = true;
    v.readOnly = mount->readOnly;
    if (!sameFs)
    {
        spdlog::info("event=mounted volume={} device={} fstype={} readonly={}", mp, mount->source, mount->fsType,
                     mount->readOnly ? "yes" : "no");
        v.vg.clear();
        v.lv.clear();
        v.fsErrors = false;
        change.appeared = true;
        try
        {
            watcher_.watch(mp);
        }
        catch (const std::exception& e)
        {
            spdlog::error("event=watch-failed volume={} error=\"{}\"", mp, e.what());
        }
    }
    if (v.readOnly && (!wasReadOnly || !sameFs))
    {
        std::uint64_t errors = fs_.errorCount(*mount);
        v.fsErrors = v.fsErrors || errors > 0;
        std::string reason =
            errors > 0 ? "filesystem recorded " + std::to_string(errors) + " errors" : "mounted read-only";
        spdlog::warn("event=read-only volume={} reason=\"{}\"", mp, reason);
        change.becameReadOnly = reason;
        publisher_.readOnly(mp, reason);
    }
    if (!sameFs || v.readOnly != wasReadOnly || mount->source != previous.source)
    {
        // Only a real change: every backstop tick and every mount anywhere comes through here.
        publisher_.changed(mp);
    }
    return change;
}

UsageChange Volumes::refreshUsage(VolumeState& v)
{
    UsageChange change;
    if (!v.mounted)
    {
        return change;
    }
    FsUsage usage;
    try
    {
        usage = fs_.usage(v.config.mountPoint);
    }
    catch (const std::exception& e)
    {
        spdlog::warn("event=statvfs-failed volume={} error=\"{}\"", v.config.mountPoint, e.what());
        return change;
    }
    bool changed = !usage.sameAs(v.usage);
    v.usage = usage;
    policy::recordSample(v.history, {scheduler_.now(), usage.used}, headroom_);
    double rate = policy::fillRate(v.history, headroom_);
    if (rate != v.fillRate)
    {
        v.fillRate = rate;
        v.peakFillRate = std::max(v.peakFillRate, rate);
        changed = true;
    }
    if (changed)
    {
        publisher_.changed(v.config.mountPoint);
    }
    bool above = policy::aboveThreshold(v.config, usage);
    if (above && !v.aboveThreshold)
    {
        v.aboveThreshold = true;
        change.crossedUp = true;
        spdlog::info("event=threshold-crossed volume={} used_percent={:.1f} inodes_percent={:.1f} available={} "
                     "grow_at={} available_bytes={}",
                     v.config.mountPoint, usage.usedPercent(), usage.inodesUsedPercent(), formatSize(usage.available),
                     v.config.growAt, usage.available);
        publisher_.thresholdCrossed(v);
    }
    else if (!above && v.aboveThreshold)
    {
        // Back below GrowAt (space was freed): an exhaustion episode is over.
        v.aboveThreshold = false;
        change.crossedDown = true;
        if (v.exhausted)
        {
            v.exhausted.reset();
            publisher_.changed(v.config.mountPoint);
        }
    }
    return change;
}

bool Volumes::applyLvs(VolumeState& v, const std::vector<lvm::Lv>& lvs)
{
    if (!v.mounted)
    {
        return false;
    }
    for (const auto& lv : lvs)
    {
        if (lv.kernelMajor >= 0 && static_cast<unsigned>(lv.kernelMajor) == v.mount.devMajor &&
            static_cast<unsigned>(lv.kernelMinor) == v.mount.devMinor)
        {
            if (v.vg.empty())
            {
                spdlog::info("event=identified volume={} lv={}/{} lv_size={}", v.config.mountPoint, lv.vgName, lv.name,
                             formatSize(lv.size));
            }
            bool changed = v.vg != lv.vgName || v.lv != lv.name || v.lvSize != lv.size || v.vgFree != lv.vgFree ||
                           v.extentSize != lv.vgExtentSize || v.lvPath != lv.path;
            v.vg = lv.vgName;
            v.lv = lv.name;
            v.lvPath = lv.path;
            v.lvSize = lv.size;
            v.vgFree = lv.vgFree;
            v.extentSize = lv.vgExtentSize;
            if (changed)
            {
                publisher_.changed(v.config.mountPoint);
            }
            return true;
        }
    }
    if (!v.vg.empty())
    {
        spdlog::warn("event=lv-vanished volume={} lv={}", v.config.mountPoint, v.lvName());
        v.vg.clear();
        v.lv.clear();
        publisher_.changed(v.config.mountPoint);
    }
    return false;
}

void Volumes::applyLvs(const std::vector<lvm::Lv>& lvs)
{
    for (auto& v : volumes_)
    {
        applyLvs(v, lvs);
    }
}

std::uint64_t Volumes::filesystemSize(const VolumeState& v)
{
    if (!v.mounted)
    {
        return 0;
    }
    try
    {
        if (auto size = fs_.filesystemSize(v.mount))
        {
            return *size;
        }
    }
    catch (const std::exception& e)
    {
        spdlog::warn("event=fs-size-unknown volume={} error=\"{}\"", v.config.mountPoint, e.what());
    }
    return v.usage.size;
}

} // namespace lvkeeper

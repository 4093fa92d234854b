#include "lvkeeper/keeper.hpp"

#include "lvkeeper/errors.hpp"
#include "lvkeeper/lvm.hpp"
#include "lvkeeper/policy.hpp"
#include "lvkeeper/size.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <map>
#include <set>
#include <system_error>

namespace lvkeeper
{

namespace
{

Keeper::Error makeError(ErrorKind kind, const std::string& message)
{
    return std::make_exception_ptr(KeeperError(kind, message));
}

std::string normalizePath(std::string path)
{
    while (path.size() > 1 && path.back() == '/')
    {
        path.pop_back();
    }
    return path;
}

std::string joinPath(const std::string& dir, const std::string& name)
{
    return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

bool startsWith(const std::string& text, const std::string& prefix)
{
    return text.compare(0, prefix.size(), prefix) == 0;
}

} // namespace

struct Keeper::Impl
{
    Impl(Config c, CommandRunner& r, Scheduler& s, Filesystems& f, Disks& d, StateStore& st, ActivityWatcher& w,
         KeeperOptions o) :
        config(std::move(c)),
        runner(r), scheduler(s), fs(f), disks(d), state(st), watcher(w), options(std::move(o))
    {
        for (const auto& vc : config.volumes)
        {
            VolumeState v;
            v.config = vc;
            volumes.push_back(std::move(v));
        }
    }

    Config config;
    CommandRunner& runner;
    Scheduler& scheduler;
    Filesystems& fs;
    Disks& disks;
    StateStore& state;
    ActivityWatcher& watcher;
    KeeperOptions options;
    KeeperListener* listener = nullptr;

    std::vector<VolumeState> volumes;
    JobQueue jobs;
    std::set<std::size_t> dirty;
    std::unique_ptr<Timer> propertiesTimer;
    std::map<std::size_t, std::unique_ptr<Timer>> cooldownTimers;
    std::set<std::string> ownDevices; ///< loop devices AddDisk attached; not adopted again
    policy::Headroom headroom;
    std::map<std::string, std::string> addDiskBlocked; ///< VG -> why auto-adding a disk failed (SpaceExhausted reason)
    std::set<std::string> addDiskQueued;               ///< VGs with an automatic AddDisk waiting in their lane
    std::map<std::string, std::chrono::milliseconds> lastAddDuration; ///< VG -> how long the last auto add took
    std::set<std::string> allocationFailed;                           ///< images fallocate could not fill (logged once)
    std::string lastStatus;
    bool started = false;

    // ---- helpers -------------------------------------------------------

    std::string watchedList() const
    {
        std::string list;
        for (const auto& v : volumes)
        {
            list += (list.empty() ? "" : ", ") + v.config.mountPoint;
            if (!v.vg.empty())
            {
                list += " (" + v.lvName() + ")";
            }
        }
        return list.empty() ? "none" : list;
    }

    std::size_t findVolume(const std::string& spec) const
    {
        if (spec.empty())
        {
            throw KeeperError(ErrorKind::InvalidArgument,
                              "no volume given: name a watched mount point like /data or an LV like vg0/data0");
        }
        std::string wanted = spec[0] == '/' ? normalizePath(spec) : spec;
        for (std::size_t i = 0; i < volumes.size(); ++i)
        {
            const auto& v = volumes[i];
            if (v.config.mountPoint == wanted || (!v.vg.empty() && v.lvName() == wanted))
            {
                return i;
            }
        }
        throw KeeperError(ErrorKind::NotFound, "\"" + spec + "\" is not a watched volume; watched: " + watchedList() +
                                                   " (add a [Volume] section with MountPoint= to lvkeeper.conf)");
    }

    std::set<std::string> watchedVgs() const
    {
        std::set<std::string> vgs;
        for (const auto& v : volumes)
        {
            if (!v.vg.empty())
            {
                vgs.insert(v.vg);
            }
        }
        return vgs;
    }

    void runLvm(std::vector<std::string> args, CommandRunner::Done done)
    {
        args.insert(args.begin(), options.lvmCommand);
        runner.run(std::move(args), options.commandTimeout, std::move(done));
    }

    void markDirty(std::size_t i)
    {
        dirty.insert(i);
        if (propertiesTimer)
        {
            return;
        }
        // Rate limit: one PropertiesChanged batch per interval, however busy the writers are.
        propertiesTimer = scheduler.after(options.propertiesInterval,
                                          [this]
                                          {
                                              flushDirty();
                                          });
    }

    void flushDirty()
    {
        auto pending = std::move(dirty);
        dirty.clear();
        auto keep = std::move(propertiesTimer); // destroyed at scope end, after the callback returns
        if (listener)
        {
            for (auto i : pending)
            {
                if (i < volumes.size())
                {
                    listener->volumeChanged(i);
                }
            }
        }
        publishStatus();
    }

    void publishStatus()
    {
        std::string status = statusLine();
        if (status != lastStatus)
        {
            lastStatus = status;
            if (listener)
            {
                listener->statusChanged(status);
            }
        }
    }

    std::string statusLine() const
    {
        if (volumes.empty())
        {
            return "watching no volumes (add a [Volume] section to lvkeeper.conf)";
        }
        std::string line;
        for (const auto& v : volumes)
        {
            std::string part = policy::statusFragment(v.config, v.usage, v.mounted, v.readOnly);
            if (v.state != "idle")
            {
                part += " (" + v.state + ")";
            }
            line += (line.empty() ? "" : "; ") + part;
        }
        return line;
    }

    void setState(std::size_t i, const std::string& s)
    {
        if (volumes[i].state != s)
        {
            volumes[i].state = s;
            markDirty(i);
        }
    }

    // ---- mounts and usage ---------------------------------------------

    /// Re-reads the mount of volume i; returns true when a (new) filesystem appeared there.
    bool refreshMount(std::size_t i)
    {
        auto& v = volumes[i];
        std::optional<MountInfo> mount;
        try
        {
            mount = fs.findMount(v.config.mountPoint);
        }
        catch (const std::exception& e)
        {
            spdlog::warn("event=mount-read-failed volume={} error=\"{}\"", v.config.mountPoint, e.what());
            return false;
        }
        bool wasMounted = v.mounted;
        bool wasReadOnly = v.readOnly;
        bool sameFs = wasMounted && mount && mount->devMajor == v.mount.devMajor && mount->devMinor == v.mount.devMinor;
        if (!mount)
        {
            if (wasMounted)
            {
                spdlog::warn("event=unmounted volume={}", v.config.mountPoint);
                watcher.unwatch(v.config.mountPoint);
                v.mounted = false;
                v.readOnly = false;
                v.usage = FsUsage{};
                markDirty(i);
            }
            return false;
        }
        MountInfo previous = v.mount;
        v.mount = *mount;
        v.mounted = true;
        v.readOnly = mount->readOnly;
        if (!sameFs)
        {
            spdlog::info("event=mounted volume={} device={} fstype={} readonly={}", v.config.mountPoint, mount->source,
                         mount->fsType, mount->readOnly ? "yes" : "no");
            v.vg.clear();
            v.lv.clear();
            v.fsErrors = false;
            try
            {
                watcher.watch(v.config.mountPoint);
            }
            catch (const std::exception& e)
            {
                spdlog::error("event=watch-failed volume={} error=\"{}\"", v.config.mountPoint, e.what());
            }
        }
        if (v.readOnly && (!wasReadOnly || !sameFs))
        {
            std::uint64_t errors = fs.errorCount(*mount);
            v.fsErrors = v.fsErrors || errors > 0;
            std::string reason =
                errors > 0 ? "filesystem recorded " + std::to_string(errors) + " errors" : "mounted read-only";
            spdlog::warn("event=read-only volume={} reason=\"{}\"", v.config.mountPoint, reason);
            if (listener)
            {
                listener->readOnly(v.config.mountPoint, reason);
            }
        }
        if (!sameFs || v.readOnly != wasReadOnly || mount->source != previous.source)
        {
            // Only a real change: every backstop tick and every mount anywhere comes through here.
            markDirty(i);
        }
        return !sameFs;
    }

    void refreshUsage(std::size_t i)
    {
        auto& v = volumes[i];
        if (!v.mounted)
        {
            return;
        }
        FsUsage usage;
        try
        {
            usage = fs.usage(v.config.mountPoint);
        }
        catch (const std::exception& e)
        {
            spdlog::warn("event=statvfs-failed volume={} error=\"{}\"", v.config.mountPoint, e.what());
            return;
        }
        bool changed = usage.size != v.usage.size || usage.used != v.usage.used ||
                       usage.available != v.usage.available || usage.inodesUsed != v.usage.inodesUsed ||
                       usage.readOnly != v.usage.readOnly;
        v.usage = usage;
        if (changed)
        {
            markDirty(i);
        }
        policy::recordSample(v.history, {scheduler.now(), usage.used}, headroom);
        double rate = policy::fillRate(v.history, headroom);
        if (rate != v.fillRate)
        {
            v.fillRate = rate;
            markDirty(i);
        }
        bool above = policy::aboveThreshold(v.config, usage);
        if (above && !v.aboveThreshold)
        {
            v.aboveThreshold = true;
            spdlog::info("event=threshold-crossed volume={} used_percent={:.1f} inodes_percent={:.1f} available={} "
                         "grow_at={}",
                         v.config.mountPoint, usage.usedPercent(), usage.inodesUsedPercent(),
                         formatSize(usage.available), v.config.growAt);
            if (listener)
            {
                listener->thresholdCrossed(v.config.mountPoint, usage.usedPercent(), usage.available);
            }
        }
        else if (!above && v.aboveThreshold)
        {
            // Back below GrowAt (space was freed): an exhaustion episode is over.
            v.aboveThreshold = false;
            v.exhaustedReported = false;
            v.exhaustedReason.clear();
        }
        if (policy::needsGrow(v.config, usage, v.fillRate, plannedGrow(v), headroom))
        {
            maybeAutoGrow(i);
        }
        maybeAddDiskEarly(i);
    }

    /// What the filesystem records as its size: statvfs leaves out metadata, so it is no measure of a resize.
    std::uint64_t fsSizeOf(const VolumeState& v) const
    {
        if (!v.mounted)
        {
            return 0;
        }
        try
        {
            if (auto size = fs.filesystemSize(v.mount))
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

    std::chrono::milliseconds plannedGrow(const VolumeState& v) const
    {
        return policy::plannedGrowDuration(v.lastGrowDuration, headroom);
    }

    // ---- LVM identity ---------------------------------------------------

    void refreshLvm(std::function<void(Error)> done)
    {
        runLvm(lvm::lvsArgs(),
               [this, done = std::move(done)](const CommandResult& r)
               {
                   if (!r.ok())
                   {
                       done(makeError(ErrorKind::CommandFailed, "cannot read LVM state: " + r.describe()));
                       return;
                   }
                   std::vector<lvm::Lv> lvs;
                   try
                   {
                       lvs = lvm::parseLvs(r.out);
                   }
                   catch (...)
                   {
                       done(std::current_exception());
                       return;
                   }
                   for (std::size_t i = 0; i < volumes.size(); ++i)
                   {
                       applyLvs(i, lvs);
                   }
                   done(nullptr);
               });
    }

    /// Re-reads LVM, then every volume's usage; a failed LVM read is logged, not fatal.
    void rescanAll(std::function<void()> then = {})
    {
        refreshLvm(
            [this, then = std::move(then)](Error error)
            {
                if (error)
                {
                    spdlog::warn("event=lvm-scan-failed error=\"{}\"", describeError(error));
                }
                for (std::size_t i = 0; i < volumes.size(); ++i)
                {
                    refreshUsage(i);
                    markDirty(i);
                }
                publishStatus();
                if (then)
                {
                    then();
                }
            });
    }

    void applyLvs(std::size_t i, const std::vector<lvm::Lv>& lvs)
    {
        auto& v = volumes[i];
        if (!v.mounted)
        {
            return;
        }
        for (const auto& lv : lvs)
        {
            if (lv.kernelMajor >= 0 && static_cast<unsigned>(lv.kernelMajor) == v.mount.devMajor &&
                static_cast<unsigned>(lv.kernelMinor) == v.mount.devMinor)
            {
                if (v.vg.empty())
                {
                    spdlog::info("event=identified volume={} lv={}/{} lv_size={}", v.config.mountPoint, lv.vgName,
                                 lv.name, formatSize(lv.size));
                }
                v.vg = lv.vgName;
                v.lv = lv.name;
                v.lvPath = lv.path;
                v.lvSize = lv.size;
                v.vgFree = lv.vgFree;
                v.extentSize = lv.vgExtentSize;
                markDirty(i);
                return;
            }
        }
        if (!v.vg.empty())
        {
            spdlog::warn("event=lv-vanished volume={} lv={}", v.config.mountPoint, v.lvName());
        }
        v.vg.clear();
        v.lv.clear();
        markDirty(i);
    }

    // ---- growing --------------------------------------------------------

    /// Finishes a filesystem grow an earlier run left undone; online resize needs a read-write mount.
    void queueHeal(std::size_t i)
    {
        auto& v = volumes[i];
        v.fsGrowPending = true;
        markDirty(i);
        if (v.readOnly)
        {
            spdlog::warn("event=fs-grow-deferred volume={} reason=\"mounted read-only, finished after Remount\"",
                         v.config.mountPoint);
            setState(i, "fs-grow-pending");
            return;
        }
        jobs.enqueue(v.vg, "heal-fs " + v.config.mountPoint,
                     [this, i](JobQueue::Finish finish)
                     {
                         GrowRequest request{SizeRequest{SizeRequest::Kind::Absolute, 0}, "heal", false};
                         growJob(
                             i, request, [](std::uint64_t, Error) {}, finish);
                     });
    }

    void growFilesystem(std::size_t i, std::function<void(Error)> done)
    {
        auto& v = volumes[i];
        std::vector<std::string> argv;
        if (v.mount.fsType == "ext4" || v.mount.fsType == "ext3" || v.mount.fsType == "ext2")
        {
            argv = {"resize2fs", v.mount.source};
        }
        else if (v.mount.fsType == "xfs")
        {
            argv = {"xfs_growfs", v.config.mountPoint};
        }
        else
        {
            done(makeError(ErrorKind::InvalidArgument,
                           "cannot grow a " + v.mount.fsType + " filesystem online; lvkeeper grows ext4 and xfs"));
            return;
        }
        runner.run(
            argv, options.commandTimeout,
            [this, i, done = std::move(done)](const CommandResult& r)
            {
                auto& vol = volumes[i];
                if (!r.ok())
                {
                    vol.fsGrowPending = true;
                    markDirty(i);
                    done(makeError(ErrorKind::CommandFailed, "the LV of " + vol.config.mountPoint +
                                                                 " grew but its filesystem did not: " + r.describe() +
                                                                 "; lvkeeper retries on the next grow and at start"));
                    return;
                }
                vol.fsGrowPending = false;
                spdlog::info("event=fs-grown volume={} duration_ms={}", vol.config.mountPoint, r.duration.count());
                refreshUsage(i);
                markDirty(i);
                done(nullptr);
            });
    }

    struct GrowRequest
    {
        SizeRequest size;
        std::string reason;
        bool automatic = false;
        bool mayAddDisk = true; ///< automatic: a disk may be added first when the VG cannot hold the step
        std::chrono::steady_clock::time_point start{};
    };

    /// The grow job: re-read the real sizes, heal a lagging filesystem, extend, grow the filesystem.
    void growJob(std::size_t i, GrowRequest request, GrowReply reply, JobQueue::Finish finish)
    {
        request.start = scheduler.now();
        setState(i, "growing");
        auto fail = [this, i, reply, finish](Error error)
        {
            auto& v = volumes[i];
            v.lastError = describeError(error);
            v.lastGrowEnd = scheduler.now();
            spdlog::error("event=grow-failed volume={} error=\"{}\"", v.config.mountPoint, v.lastError);
            if (listener)
            {
                listener->growFailed(v.config.mountPoint, v.lastError);
            }
            setState(i, v.fsGrowPending ? "fs-grow-pending" : "idle");
            reply(0, error);
            finish();
        };
        refreshLvm(
            [this, i, request, reply, finish, fail](Error error)
            {
                if (error)
                {
                    fail(error);
                    return;
                }
                auto& v = volumes[i];
                if (!v.mounted || v.vg.empty())
                {
                    fail(makeError(ErrorKind::NotFound,
                                   v.config.mountPoint + " is not mounted from an LVM logical volume"));
                    return;
                }
                if (v.readOnly && request.automatic)
                {
                    finishQuietly(i, reply, finish);
                    return;
                }
                refreshUsage(i);
                if (request.automatic && !policy::needsGrow(v.config, v.usage, v.fillRate, plannedGrow(v), headroom))
                {
                    // Someone freed space or another grow already happened: a stale reading never grows twice.
                    finishQuietly(i, reply, finish);
                    return;
                }
                auto extend = [this, i, request, reply, finish, fail]()
                {
                    extendStep(i, request, reply, finish, fail);
                };
                if (policy::filesystemBehind(fsSizeOf(v), v.lvSize, v.extentSize))
                {
                    std::uint64_t fsBefore = fsSizeOf(v);
                    spdlog::warn("event=fs-behind volume={} fs_size={} lv_size={}", v.config.mountPoint,
                                 formatSize(fsBefore), formatSize(v.lvSize));
                    growFilesystem(i,
                                   [this, i, fsBefore, extend, fail](Error e)
                                   {
                                       if (e)
                                       {
                                           fail(e);
                                           return;
                                       }
                                       // The filesystem caught up with its LV: Grown(heal) with its own sizes.
                                       std::uint64_t fsAfter = fsSizeOf(volumes[i]);
                                       spdlog::info("event=healed volume={} from={} to={}",
                                                    volumes[i].config.mountPoint, formatSize(fsBefore),
                                                    formatSize(fsAfter));
                                       if (listener)
                                       {
                                           listener->grown(volumes[i].config.mountPoint, fsBefore, fsAfter, "heal");
                                       }
                                       extend();
                                   });
                    return;
                }
                extend();
            });
    }

    void finishQuietly(std::size_t i, const GrowReply& reply, const JobQueue::Finish& finish)
    {
        volumes[i].lastGrowEnd = scheduler.now();
        setState(i, "idle");
        reply(volumes[i].lvSize, nullptr);
        finish();
    }

    void extendStep(std::size_t i, const GrowRequest& request, GrowReply reply, JobQueue::Finish finish,
                    std::function<void(Error)> fail)
    {
        auto& v = volumes[i];
        std::uint64_t step = request.automatic
                                 ? policy::autoStep(v.config.growStep, v.fillRate, plannedGrow(v), headroom, v.lvSize)
                                 : v.config.growStep;
        std::uint64_t target = policy::requestedTarget(request.size, v.lvSize, step, v.extentSize);
        auto plan = policy::planGrow(target, v.lvSize, v.config.maxSize, v.vgFree, v.extentSize, request.automatic);
        if (request.automatic && request.mayAddDisk && plan.cappedByVg && canAutoAddDisk(v.vg) &&
            !plan.growsAnything(v.lvSize))
        {
            // The VG is empty: add disks first (AddDisk's checks and reserve apply), then grow. When it still
            // has some room, the grow takes that at once and afterAutoGrow() adds disks right behind it: a
            // writer racing the grow must not wait for a disk it does not need yet.
            auto wanted = policy::planGrow(target, v.lvSize, v.config.maxSize,
                                           std::numeric_limits<std::uint64_t>::max(), v.extentSize, false);
            unsigned count =
                std::max(1u, policy::disksToAdd(wanted.target - v.lvSize, v.vgFree, config.disks.imageSize));
            GrowRequest next = request;
            next.mayAddDisk = false;
            autoAddDisks(v.vg, count,
                         [this, i, next, reply, finish, fail]()
                         {
                             setState(i, "growing");
                             refreshLvm(
                                 [this, i, next, reply, finish, fail](Error e)
                                 {
                                     if (e)
                                     {
                                         fail(e);
                                         return;
                                     }
                                     extendStep(i, next, reply, finish, fail);
                                 });
                         });
            return;
        }
        if (!plan.growsAnything(v.lvSize))
        {
            if (plan.cappedByMaxSize && target > v.lvSize)
            {
                exhausted(i,
                          "max-size: " + v.config.mountPoint + " is at its MaxSize=" + formatSize(*v.config.maxSize));
                fail(makeError(ErrorKind::NoSpace, v.config.mountPoint + " is at its MaxSize=" +
                                                       formatSize(*v.config.maxSize) + "; raise MaxSize= to grow it"));
                return;
            }
            if (plan.cappedByVg && target > v.lvSize)
            {
                noVgSpace(i, target, fail);
                return;
            }
            spdlog::info("event=grow-noop volume={} lv_size={} target={}", v.config.mountPoint, formatSize(v.lvSize),
                         formatSize(target));
            finishQuietly(i, reply, finish);
            return;
        }
        if (plan.cappedByVg && !request.automatic)
        {
            noVgSpace(i, target, fail);
            return;
        }
        std::uint64_t oldSize = v.lvSize;
        spdlog::info("event=grow volume={} lv={} from={} to={} reason={}", v.config.mountPoint, v.lvName(),
                     formatSize(oldSize), formatSize(plan.target), request.reason);
        runLvm(lvm::lvextendArgs(v.vg, v.lv, plan.target),
               [this, i, plan, oldSize, request, reply, finish, fail](const CommandResult& r)
               {
                   if (!r.ok())
                   {
                       fail(makeError(ErrorKind::CommandFailed, "lvextend failed: " + r.describe()));
                       return;
                   }
                   auto& vol = volumes[i];
                   vol.vgFree -= std::min(vol.vgFree, plan.target - vol.lvSize);
                   vol.lvSize = plan.target;
                   markDirty(i);
                   growFilesystem(i,
                                  [this, i, plan, oldSize, request, reply, finish, fail](Error e)
                                  {
                                      if (e)
                                      {
                                          fail(e);
                                          return;
                                      }
                                      auto& vv = volumes[i];
                                      vv.lastError.clear();
                                      vv.lastGrowEnd = scheduler.now();
                                      vv.lastGrowDuration = std::chrono::duration_cast<std::chrono::milliseconds>(
                                          *vv.lastGrowEnd - request.start);
                                      vv.exhaustedReported = false;
                                      spdlog::info("event=grown volume={} from={} to={} reason={} vg_free={}",
                                                   vv.config.mountPoint, formatSize(oldSize), formatSize(plan.target),
                                                   request.reason, formatSize(vv.vgFree));
                                      if (listener)
                                      {
                                          listener->grown(vv.config.mountPoint, oldSize, plan.target, request.reason);
                                      }
                                      keepImagesAllocated();
                                      if (request.automatic)
                                      {
                                          afterAutoGrow(i, plan);
                                      }
                                      setState(i, "idle");
                                      reply(plan.target, nullptr);
                                      finish();
                                  });
               });
    }

    void noVgSpace(std::size_t i, std::uint64_t target, const std::function<void(Error)>& fail)
    {
        auto& v = volumes[i];
        std::string message = "volume group " + v.vg + " has " + formatSize(v.vgFree) + " free but " +
                              v.config.mountPoint + " needs " + formatSize(target - v.lvSize) +
                              " more; add a disk: busctl call org.lvkeeper.Keeper1 /org/lvkeeper/Keeper1 "
                              "org.lvkeeper.Keeper1.Manager AddDisk ss " +
                              v.vg + " \"\"";
        // A request larger than what is free is refused, but only a VG without one more extent is exhausted:
        // exhaustion pauses auto-grow for the episode.
        if (v.vgFree < std::max<std::uint64_t>(v.extentSize, 1))
        {
            exhausted(i, vgFullReason(v.vg));
        }
        fail(makeError(ErrorKind::NoSpace, message));
    }

    void exhausted(std::size_t i, const std::string& reason)
    {
        auto& v = volumes[i];
        if (v.exhaustedReported)
        {
            return;
        }
        v.exhaustedReported = true;
        v.exhaustedReason = reason;
        spdlog::error("event=space-exhausted volume={} reason=\"{}\"", v.config.mountPoint, reason);
        if (listener)
        {
            listener->spaceExhausted(v.config.mountPoint, reason);
        }
    }

    /// Why a full VG cannot get more: the failed automatic AddDisk, or that it is not enabled.
    std::string vgFullReason(const std::string& vg) const
    {
        auto blocked = addDiskBlocked.find(vg);
        if (blocked != addDiskBlocked.end())
        {
            return blocked->second;
        }
        if (!config.disks.autoAddDisk)
        {
            return "vg-full: volume group " + vg + " is full and AutoAddDisk=no; add a disk with AddDisk";
        }
        return "vg-full: volume group " + vg + " is full";
    }

    bool canAutoAddDisk(const std::string& vg) const
    {
        return config.disks.autoAddDisk && !addDiskBlocked.count(vg);
    }

    /// Adds up to count disks to vg one after the other (AddDisk's job body, in the caller's lane); stops at
    /// the first failure and remembers it as the VG's SpaceExhausted reason. done() once finished.
    void autoAddDisks(const std::string& vg, unsigned count, std::function<void()> done)
    {
        if (count == 0 || !canAutoAddDisk(vg))
        {
            done();
            return;
        }
        setStateOfVg(vg, "adding-disk");
        spdlog::info("event=auto-add-disk vg={} remaining={}", vg, count);
        auto error = std::make_shared<Error>();
        auto start = scheduler.now();
        addDiskJob(
            vg, config.disks.imageSize,
            [error](const std::string&, const std::string&, Error e)
            {
                *error = e;
            },
            [this, vg, count, error, done, start]()
            {
                lastAddDuration[vg] = std::chrono::duration_cast<std::chrono::milliseconds>(scheduler.now() - start);
                if (*error)
                {
                    addDiskBlocked[vg] = addDiskFailureReason(vg, *error);
                    spdlog::warn("event=auto-add-disk-stopped vg={} reason=\"{}\"", vg, addDiskBlocked[vg]);
                    done();
                    return;
                }
                autoAddDisks(vg, count - 1, done);
            });
    }

    std::string addDiskFailureReason(const std::string& vg, const Error& error) const
    {
        std::string text = describeError(error);
        try
        {
            std::rethrow_exception(error);
        }
        catch (const KeeperError& e)
        {
            if (e.kind() == ErrorKind::NoHostSpace)
            {
                return "no-host-space: volume group " + vg + " is full and no disk can be added: " + text;
            }
            if (e.kind() == ErrorKind::NoSpace)
            {
                return "max-disks: volume group " + vg + " is full and no disk can be added: " + text;
            }
        }
        catch (...)
        {
        }
        return "vg-full: volume group " + vg + " is full and adding a disk failed: " + text;
    }

    void setStateOfVg(const std::string& vg, const std::string& state)
    {
        for (std::size_t i = 0; i < volumes.size(); ++i)
        {
            if (volumes[i].vg == vg)
            {
                setState(i, state);
            }
        }
    }

    /// After an automatic grow: when the VG could not hold the next step, add disks now, before it is empty.
    void afterAutoGrow(std::size_t i, const policy::GrowPlan& plan)
    {
        auto& v = volumes[i];
        if (!plan.cappedByMaxSize && shortOfNextStep(v) && canAutoAddDisk(v.vg))
        {
            queueAutoAddDisk(v.vg);
        }
    }

    /// Whether the VG cannot hold the next automatic step while MaxSize still allows it (a disk would help).
    bool shortOfNextStep(const VolumeState& v) const
    {
        std::uint64_t next = policy::autoStep(v.config.growStep, v.fillRate, plannedGrow(v), headroom, v.lvSize);
        return v.vgFree < next && !(v.config.maxSize && v.lvSize + next > *v.config.maxSize);
    }

    /// A VG that could get no disk for want of host space may have some now (a process restarted, files
    /// removed): if so, the episode is over and the next grow adds a disk again.
    void retryBlockedDisks()
    {
        for (auto it = addDiskBlocked.begin(); it != addDiskBlocked.end();)
        {
            bool retry = false;
            if (startsWith(it->second, "no-host-space:"))
            {
                try
                {
                    checkHostSpace(config.disks.imageSize);
                    retry = true;
                }
                catch (const std::exception&)
                {
                }
            }
            if (!retry)
            {
                ++it;
                continue;
            }
            spdlog::info("event=host-space-back vg={} dir={}", it->first, config.disks.imageDirectory);
            for (auto& v : volumes)
            {
                if (v.vg == it->first)
                {
                    v.exhaustedReported = false;
                    v.exhaustedReason.clear();
                }
            }
            it = addDiskBlocked.erase(it);
        }
    }

    std::chrono::milliseconds plannedAdd(const std::string& vg) const
    {
        auto it = lastAddDuration.find(vg);
        return it != lastAddDuration.end() && it->second.count() > 0 ? it->second : headroom.assumedAdd;
    }

    /// After a disk came in: still short for the writer's rate, or for the next step of a volume that is
    /// growing? Then the next disk.
    void recheckDisks(std::size_t i)
    {
        auto& v = volumes[i];
        maybeAddDiskEarly(i);
        if (addDiskQueued.count(v.vg) || !canAutoAddDisk(v.vg) || !v.aboveThreshold)
        {
            return;
        }
        if (shortOfNextStep(v))
        {
            queueAutoAddDisk(v.vg);
        }
    }

    /// A writer fast enough to empty the VG before a disk could be added and grown into: add it now.
    void maybeAddDiskEarly(std::size_t i)
    {
        auto& v = volumes[i];
        if (!started || !v.config.autoGrow || !v.mounted || v.readOnly || v.vg.empty() || !canAutoAddDisk(v.vg) ||
            addDiskQueued.count(v.vg) || (v.config.maxSize && v.lvSize + v.vgFree >= *v.config.maxSize))
        {
            return;
        }
        if (!policy::vgShort(v.fillRate, v.vgFree, plannedAdd(v.vg), plannedGrow(v), headroom))
        {
            return;
        }
        auto need = policy::headroomNeeded(v.fillRate, plannedAdd(v.vg) + plannedGrow(v), headroom);
        spdlog::info("event=vg-short vg={} vg_free={} fill_rate={}/s needed={}", v.vg, formatSize(v.vgFree),
                     formatSize(static_cast<std::uint64_t>(v.fillRate)), formatSize(need));
        queueAutoAddDisk(v.vg);
    }

    void queueAutoAddDisk(const std::string& vg)
    {
        if (!addDiskQueued.insert(vg).second)
        {
            return;
        }
        // One disk per job: a grow that becomes urgent meanwhile goes ahead of the next disk, not behind
        // all of them. Whether another is needed is asked again when this one is in.
        jobs.enqueue(vg, "auto-add-disk " + vg,
                     [this, vg](JobQueue::Finish finish)
                     {
                         autoAddDisks(vg, 1,
                                      [this, vg, finish]()
                                      {
                                          addDiskQueued.erase(vg);
                                          setStateOfVg(vg, "idle");
                                          finish();
                                          for (std::size_t k = 0; k < volumes.size(); ++k)
                                          {
                                              if (volumes[k].vg == vg)
                                              {
                                                  recheckDisks(k);
                                              }
                                          }
                                      });
                     });
    }

    /// Images that back watched PVs stay fully allocated: ext4 zeroes new inode tables after a grow, and a
    /// loop device turns those zeroes into holes in the image.
    void keepImagesAllocated()
    {
        std::vector<std::string> images;
        try
        {
            images = state.images();
        }
        catch (const std::exception& e)
        {
            spdlog::warn("event=state-read-failed error=\"{}\"", e.what());
            return;
        }
        for (const auto& image : images)
        {
            try
            {
                auto alloc = disks.fileAllocation(image);
                if (!alloc || alloc->first + MiB >= alloc->second)
                {
                    allocationFailed.erase(image);
                    continue;
                }
                disks.allocateImage(image);
                allocationFailed.erase(image);
                spdlog::info("event=image-allocated image={} was={} size={}", image, formatSize(alloc->first),
                             formatSize(alloc->second));
            }
            catch (const std::exception& e)
            {
                if (allocationFailed.insert(image).second)
                {
                    spdlog::error("event=image-allocate-failed image={} error=\"{}\"", image, e.what());
                }
            }
        }
    }

    void maybeAutoGrow(std::size_t i)
    {
        auto& v = volumes[i];
        if (!started || !v.config.autoGrow || !v.mounted || v.readOnly || v.vg.empty() || v.autoGrowQueued ||
            v.exhaustedReported)
        {
            return;
        }
        auto wait = policy::cooldownLeft(scheduler.now(), v.lastGrowEnd, v.config.cooldown);
        if (wait.count() > 0 && !policy::urgent(v.usage, v.fillRate, wait, plannedGrow(v), headroom))
        {
            if (!cooldownTimers[i])
            {
                cooldownTimers[i] = scheduler.after(wait,
                                                    [this, i]
                                                    {
                                                        auto keep = std::move(cooldownTimers[i]);
                                                        refreshUsage(i);
                                                    });
            }
            return;
        }
        v.autoGrowQueued = true;
        GrowRequest request{SizeRequest{}, "threshold", true};
        // Ahead of waiting jobs (a disk being queued, a repair): a writer is about to run out.
        jobs.enqueueFirst(v.vg, "auto-grow " + v.config.mountPoint,
                          [this, i, request](JobQueue::Finish finish)
                          {
                              growJob(
                                  i, request,
                                  [this, i](std::uint64_t, Error error)
                                  {
                                      volumes[i].autoGrowQueued = false;
                                      if (!error)
                                      {
                                          // Re-check at once: a fast writer may already be past the threshold again.
                                          refreshUsage(i);
                                      }
                                  },
                                  finish);
                          });
    }

    // ---- disks ------------------------------------------------------------

    std::string nextImagePath()
    {
        std::set<std::string> names;
        for (const auto& name : disks.listDirectory(config.disks.imageDirectory))
        {
            names.insert(name);
        }
        for (unsigned n = 0;; ++n)
        {
            std::string name = "disk" + std::to_string(n) + ".img";
            if (!names.count(name))
            {
                return joinPath(config.disks.imageDirectory, name);
            }
        }
    }

    std::string heldDeletedReport(const MountInfo& mount)
    {
        std::vector<HeldDeletedFile> held;
        try
        {
            held = fs.heldDeletedFiles(mount.devMajor, mount.devMinor);
        }
        catch (const std::exception& e)
        {
            return " (could not scan for deleted files held open: " + std::string(e.what()) + ")";
        }
        if (held.empty())
        {
            return "";
        }
        std::uint64_t total = 0;
        std::string list;
        for (const auto& h : held)
        {
            total += h.bytes;
            list += (list.empty() ? "" : ", ") + h.command + " (pid " + std::to_string(h.pid) + ") holds " + h.path +
                    " " + formatSize(h.bytes);
        }
        return "; " + formatSize(total) + " more is held by deleted files still open: " + list +
               " - restart those processes to free it (lvkeeper never kills a process)";
    }

    /// Checks that the image directory can take size more bytes and keep the reserve; throws NoHostSpace.
    void checkHostSpace(std::uint64_t size)
    {
        const auto& dir = config.disks.imageDirectory;
        auto mount = fs.mountOf(dir);
        FsUsage usage = fs.usage(dir);
        std::uint64_t needed = size + config.disks.reserveHostSpace;
        if (usage.available >= needed)
        {
            return;
        }
        std::string message = dir + " has " + formatSize(usage.available) + " free but a new " + formatSize(size) +
                              " disk needs " + formatSize(needed) +
                              " (ReserveHostSpace=" + formatSize(config.disks.reserveHostSpace) + " is kept free)";
        if (mount)
        {
            message += heldDeletedReport(*mount);
        }
        throw KeeperError(ErrorKind::NoHostSpace, message);
    }

    /// pvcreate + vgextend of a device; on failure undoes pvcreate; done(error).
    void joinVg(const std::string& vg, const std::string& device, std::function<void(Error)> done)
    {
        std::optional<std::string> signature;
        try
        {
            signature = disks.signature(device);
        }
        catch (...)
        {
            done(std::current_exception());
            return;
        }
        if (signature)
        {
            done(makeError(ErrorKind::InvalidArgument,
                           device + " carries a " + *signature + " signature; lvkeeper never writes over one"));
            return;
        }
        runLvm(lvm::pvcreateArgs(device),
               [this, vg, device, done](const CommandResult& r)
               {
                   if (!r.ok())
                   {
                       done(makeError(ErrorKind::CommandFailed, "pvcreate " + device + " failed: " + r.describe()));
                       return;
                   }
                   runLvm(lvm::vgextendArgs(vg, device),
                          [this, vg, device, done](const CommandResult& r2)
                          {
                              if (r2.ok())
                              {
                                  done(nullptr);
                                  return;
                              }
                              auto error =
                                  makeError(ErrorKind::CommandFailed, "vgextend " + vg + " failed: " + r2.describe());
                              runLvm(lvm::pvremoveArgs(device),
                                     [done, error](const CommandResult&)
                                     {
                                         done(error);
                                     });
                          });
               });
    }

    void recordImage(const std::string& image)
    {
        try
        {
            auto images = state.images();
            if (std::find(images.begin(), images.end(), image) == images.end())
            {
                images.push_back(image);
                state.setImages(images);
            }
        }
        catch (const std::exception& e)
        {
            spdlog::error("event=state-write-failed image={} error=\"{}\"", image, e.what());
        }
    }

    void announceDisk(const std::string& vg, const std::string& image, const std::string& device, std::uint64_t size)
    {
        for (std::size_t i = 0; i < volumes.size(); ++i)
        {
            if (volumes[i].vg == vg)
            {
                volumes[i].vgFree += size; // approximate until the next lvs
                volumes[i].exhaustedReported = false;
                volumes[i].exhaustedReason.clear();
                markDirty(i);
            }
        }
        spdlog::info("event=disk-added vg={} image={} device={} size={}", vg, image, device, formatSize(size));
        if (listener)
        {
            listener->diskAdded(vg, image, device, size);
        }
        // A full filesystem waiting for this disk may see no more writes (ENOSPC is not a modification): look now.
        for (std::size_t i = 0; i < volumes.size(); ++i)
        {
            if (volumes[i].vg == vg)
            {
                refreshUsage(i);
            }
        }
    }

    void addDiskJob(const std::string& vg, std::uint64_t size, AddDiskReply reply, JobQueue::Finish finish)
    {
        auto fail = [reply, finish, vg](Error e)
        {
            spdlog::error("event=add-disk-failed vg={} error=\"{}\"", vg, describeError(e));
            reply("", "", e);
            finish();
        };
        runLvm(lvm::vgsArgs(),
               [this, vg, size, reply, finish, fail](const CommandResult& r)
               {
                   if (!r.ok())
                   {
                       fail(makeError(ErrorKind::CommandFailed, "cannot read LVM state: " + r.describe()));
                       return;
                   }
                   std::string image;
                   std::string device;
                   try
                   {
                       auto vgs = lvm::parseVgs(r.out);
                       auto it = std::find_if(vgs.begin(), vgs.end(),
                                              [&](const lvm::Vg& g)
                                              {
                                                  return g.name == vg;
                                              });
                       if (it == vgs.end())
                       {
                           throw KeeperError(ErrorKind::NotFound, "volume group " + vg + " does not exist");
                       }
                       if (it->pvCount >= config.disks.maxDisks)
                       {
                           throw KeeperError(ErrorKind::NoSpace,
                                             "volume group " + vg + " already has " + std::to_string(it->pvCount) +
                                                 " disks, MaxDisks=" + std::to_string(config.disks.maxDisks) +
                                                 "; raise MaxDisks= in [Disks] to add more");
                       }
                       checkHostSpace(size);
                       image = nextImagePath();
                       disks.createImage(image, size);
                   }
                   catch (const std::system_error& e)
                   {
                       auto kind =
                           e.code() == std::errc::no_space_on_device ? ErrorKind::NoHostSpace : ErrorKind::Failed;
                       fail(makeError(kind, std::string("cannot create the image: ") + e.what()));
                       return;
                   }
                   catch (...)
                   {
                       fail(std::current_exception());
                       return;
                   }
                   try
                   {
                       device = disks.attachLoop(image);
                   }
                   catch (const std::exception& e)
                   {
                       removeQuietly(image);
                       fail(makeError(ErrorKind::Failed, "cannot attach " + image + " to a loop device: " + e.what()));
                       return;
                   }
                   ownDevices.insert(device);
                   spdlog::info("event=image-attached image={} device={} size={}", image, device, formatSize(size));
                   joinVg(vg, device,
                          [this, vg, image, device, size, reply, finish, fail](Error e)
                          {
                              ownDevices.erase(device);
                              if (e)
                              {
                                  // Undo in reverse: the device, then the file; nothing half-done is left behind.
                                  try
                                  {
                                      disks.detachLoop(device);
                                  }
                                  catch (const std::exception& d)
                                  {
                                      spdlog::error("event=undo-failed device={} error=\"{}\"", device, d.what());
                                  }
                                  removeQuietly(image);
                                  fail(e);
                                  return;
                              }
                              recordImage(image);
                              announceDisk(vg, image, device, size);
                              reply(image, device, nullptr);
                              finish();
                          });
               });
    }

    void removeQuietly(const std::string& image)
    {
        try
        {
            disks.removeImage(image);
        }
        catch (const std::exception& e)
        {
            spdlog::error("event=undo-failed image={} error=\"{}\"", image, e.what());
        }
    }

    void adoptJob(const std::string& vg, const LoopDevice& device, JobQueue::Finish finish)
    {
        joinVg(vg, device.device,
               [this, vg, device, finish](Error e)
               {
                   if (e)
                   {
                       spdlog::warn("event=adopt-skipped device={} image={} reason=\"{}\"", device.device,
                                    device.backingFile, describeError(e));
                       finish();
                       return;
                   }
                   std::uint64_t size = 0;
                   if (auto alloc = disks.fileAllocation(device.backingFile))
                   {
                       size = alloc->second;
                   }
                   recordImage(device.backingFile);
                   announceDisk(vg, device.backingFile, device.device, size);
                   finish();
               });
    }

    /// Records every image file that backs a PV of a watched VG so it comes back at boot.
    void recordBackingImages()
    {
        runLvm(lvm::pvsArgs(),
               [this](const CommandResult& r)
               {
                   if (!r.ok())
                   {
                       spdlog::warn("event=pvs-failed error=\"{}\"", r.describe());
                       return;
                   }
                   try
                   {
                       auto vgs = watchedVgs();
                       std::map<std::string, std::string> backing;
                       for (const auto& loop : disks.loopDevices())
                       {
                           backing[loop.device] = loop.backingFile;
                       }
                       for (const auto& pv : lvm::parsePvs(r.out))
                       {
                           auto it = backing.find(pv.name);
                           if (vgs.count(pv.vgName) && it != backing.end() && !it->second.empty())
                           {
                               recordImage(it->second);
                           }
                       }
                   }
                   catch (const std::exception& e)
                   {
                       spdlog::warn("event=record-images-failed error=\"{}\"", e.what());
                   }
               });
    }
};

Keeper::Keeper(Config config, CommandRunner& runner, Scheduler& scheduler, Filesystems& filesystems, Disks& disks,
               StateStore& state, ActivityWatcher& watcher, KeeperOptions options) :
    impl_(std::make_unique<Impl>(std::move(config), runner, scheduler, filesystems, disks, state, watcher,
                                 std::move(options)))
{
}

Keeper::~Keeper() = default;

void Keeper::setListener(KeeperListener* listener)
{
    impl_->listener = listener;
}

void Keeper::start(std::function<void()> ready)
{
    auto& d = *impl_;
    for (std::size_t i = 0; i < d.volumes.size(); ++i)
    {
        d.refreshMount(i);
        if (!d.volumes[i].mounted)
        {
            spdlog::warn("event=not-mounted volume={}", d.volumes[i].config.mountPoint);
        }
    }
    d.refreshLvm(
        [&d, ready = std::move(ready)](Error error)
        {
            if (error)
            {
                spdlog::warn("event=lvm-scan-failed error=\"{}\"", describeError(error));
            }
            d.started = true;
            for (std::size_t i = 0; i < d.volumes.size(); ++i)
            {
                auto& v = d.volumes[i];
                d.refreshUsage(i);
                if (v.mounted && !v.vg.empty() && policy::filesystemBehind(d.fsSizeOf(v), v.lvSize, v.extentSize))
                {
                    // An LV bigger than its filesystem is always healed, first thing.
                    d.queueHeal(i);
                }
            }
            if (!d.watchedVgs().empty())
            {
                d.recordBackingImages();
            }
            d.publishStatus();
            ready();
        });
}

void Keeper::reload(Config config)
{
    auto& d = *impl_;
    std::vector<VolumeState> next;
    for (const auto& vc : config.volumes)
    {
        auto it = std::find_if(d.volumes.begin(), d.volumes.end(),
                               [&](const VolumeState& v)
                               {
                                   return v.config.mountPoint == vc.mountPoint;
                               });
        VolumeState v = it != d.volumes.end() ? *it : VolumeState{};
        v.config = vc;
        v.exhaustedReported = false; // MaxSize, MaxDisks or AutoAddDisk may have changed: a new episode
        next.push_back(std::move(v));
    }
    for (const auto& old : d.volumes)
    {
        bool kept = std::any_of(next.begin(), next.end(),
                                [&](const VolumeState& v)
                                {
                                    return v.config.mountPoint == old.config.mountPoint;
                                });
        if (!kept && old.mounted)
        {
            d.watcher.unwatch(old.config.mountPoint);
        }
    }
    d.config = std::move(config);
    d.volumes = std::move(next);
    d.addDiskBlocked.clear();
    d.cooldownTimers.clear();
    d.dirty.clear();
    spdlog::info("event=reloaded volumes={}", d.volumes.size());
    if (d.listener)
    {
        d.listener->volumesReplaced();
    }
    for (std::size_t i = 0; i < d.volumes.size(); ++i)
    {
        if (!d.volumes[i].mounted)
        {
            d.refreshMount(i);
        }
        d.markDirty(i);
    }
    d.rescanAll();
}

void Keeper::onActivity(const std::string& mountPoint)
{
    auto& d = *impl_;
    for (std::size_t i = 0; i < d.volumes.size(); ++i)
    {
        if (d.volumes[i].config.mountPoint == mountPoint)
        {
            d.refreshUsage(i);
        }
    }
}

void Keeper::onFilesystemError(const std::string& mountPoint)
{
    auto& d = *impl_;
    for (std::size_t i = 0; i < d.volumes.size(); ++i)
    {
        if (d.volumes[i].config.mountPoint != mountPoint)
        {
            continue;
        }
        if (!d.volumes[i].fsErrors)
        {
            d.volumes[i].fsErrors = true;
            spdlog::error("event=fs-error volume={} action=\"run fsck on {} after unmounting it\"", mountPoint,
                          d.volumes[i].mount.source);
            d.markDirty(i);
        }
        // errors=remount-ro makes the superblock read-only without a mount table event: look now.
        d.refreshMount(i);
    }
}

void Keeper::onMountsChanged()
{
    auto& d = *impl_;
    bool identify = false;
    for (std::size_t i = 0; i < d.volumes.size(); ++i)
    {
        identify = d.refreshMount(i) || identify;
        d.refreshUsage(i);
    }
    if (identify)
    {
        d.rescanAll();
    }
    d.publishStatus();
}

void Keeper::onLoopDevice(const std::string& action, const LoopDevice& device)
{
    auto& d = *impl_;
    if (action == "remove" || device.backingFile.empty())
    {
        spdlog::debug("event=loop-unbound device={}", device.device);
        return;
    }
    spdlog::info("event=loop-attached device={} image={}", device.device, device.backingFile);
    const auto& dir = d.config.disks.imageDirectory;
    if (!d.config.disks.adoptLoopDevices || !startsWith(device.backingFile, joinPath(dir, "")) ||
        d.ownDevices.count(device.device))
    {
        return;
    }
    auto vgs = d.watchedVgs();
    if (vgs.empty())
    {
        spdlog::warn("event=adopt-skipped device={} reason=\"no watched volume group\"", device.device);
        return;
    }
    std::string vg = d.volumes.front().vg.empty() ? *vgs.begin() : d.volumes.front().vg;
    d.jobs.enqueue(vg, "adopt " + device.device,
                   [&d, vg, device](JobQueue::Finish finish)
                   {
                       d.adoptJob(vg, device, finish);
                   });
}

void Keeper::onBackstop()
{
    auto& d = *impl_;
    d.retryBlockedDisks();
    d.keepImagesAllocated();
    for (std::size_t i = 0; i < d.volumes.size(); ++i)
    {
        d.refreshMount(i);
        d.refreshUsage(i);
    }
    d.publishStatus();
}

void Keeper::grow(const std::string& volume, const std::string& size, GrowReply reply)
{
    auto& d = *impl_;
    std::size_t i = 0;
    SizeRequest request;
    try
    {
        i = d.findVolume(volume);
        request = parseSizeRequest(size);
        const auto& v = d.volumes[i];
        if (!v.mounted)
        {
            throw KeeperError(ErrorKind::NotFound, v.config.mountPoint + " is not mounted");
        }
        if (v.vg.empty())
        {
            throw KeeperError(ErrorKind::NotFound, v.config.mountPoint + " (" + v.mount.source +
                                                       ") is not an LVM logical volume lvkeeper could identify");
        }
        if (v.readOnly)
        {
            throw KeeperError(ErrorKind::Busy, v.config.mountPoint +
                                                   " is mounted read-only; call Remount first so the filesystem "
                                                   "can grow online");
        }
    }
    catch (...)
    {
        reply(0, std::current_exception());
        return;
    }
    Impl::GrowRequest grow{request, "request", false};
    d.jobs.enqueue(d.volumes[i].vg, "grow " + volume,
                   [&d, i, grow, reply](JobQueue::Finish finish)
                   {
                       d.growJob(i, grow, reply, finish);
                   });
}

void Keeper::addDisk(const std::string& vg, const std::string& size, AddDiskReply reply)
{
    auto& d = *impl_;
    std::uint64_t bytes = d.config.disks.imageSize;
    try
    {
        if (vg.empty())
        {
            throw KeeperError(ErrorKind::InvalidArgument, "no volume group given, e.g. vg0");
        }
        if (!d.watchedVgs().count(vg))
        {
            std::string list;
            for (const auto& g : d.watchedVgs())
            {
                list += (list.empty() ? "" : ", ") + g;
            }
            throw KeeperError(ErrorKind::NotFound, "volume group \"" + vg +
                                                       "\" holds no watched volume; watched volume groups: " +
                                                       (list.empty() ? "none" : list));
        }
        if (!size.empty())
        {
            if (size[0] == '+' || size[0] == '-')
            {
                throw KeeperError(ErrorKind::InvalidArgument,
                                  "disk size \"" + size + "\" must be absolute, like 1800M");
            }
            bytes = parseSize(size);
        }
        if (bytes < 16 * MiB)
        {
            throw KeeperError(ErrorKind::InvalidArgument,
                              "disk size " + formatSize(bytes) + " is too small; LVM needs at least 16M");
        }
        bytes = roundUp(bytes, MiB);
    }
    catch (...)
    {
        reply("", "", std::current_exception());
        return;
    }
    d.jobs.enqueue(vg, "add-disk " + vg,
                   [&d, vg, bytes, reply](JobQueue::Finish finish)
                   {
                       d.addDiskJob(vg, bytes, reply, finish);
                   });
}

void Keeper::remount(const std::string& volume, RemountReply reply)
{
    auto& d = *impl_;
    try
    {
        std::size_t i = d.findVolume(volume);
        d.refreshMount(i);
        auto& v = d.volumes[i];
        if (!v.mounted)
        {
            throw KeeperError(ErrorKind::NotFound, v.config.mountPoint + " is not mounted; mount it first");
        }
        if (!v.readOnly)
        {
            spdlog::info("event=remount-noop volume={} reason=\"already read-write\"", v.config.mountPoint);
            reply(nullptr);
            return;
        }
        std::uint64_t errors = d.fs.errorCount(v.mount);
        if (errors > 0 || v.fsErrors)
        {
            v.fsErrors = true;
            d.markDirty(i);
            std::string fsck = v.mount.fsType == "xfs" ? "xfs_repair " : "fsck." + v.mount.fsType + " -f ";
            throw KeeperError(ErrorKind::FilesystemErrors,
                              v.config.mountPoint + " has recorded filesystem errors (" + std::to_string(errors) +
                                  "); a remount would risk the data. Stop its users, then run: umount " +
                                  v.config.mountPoint + " && " + fsck + v.mount.source + " && mount " +
                                  v.config.mountPoint);
        }
        d.setState(i, "remounting");
        try
        {
            d.fs.remountReadWrite(v.mount);
        }
        catch (const std::exception& e)
        {
            d.setState(i, "idle");
            throw KeeperError(ErrorKind::CommandFailed,
                              "cannot remount " + v.config.mountPoint + " read-write: " + e.what());
        }
        d.setState(i, "idle");
        d.refreshMount(i);
        d.refreshUsage(i);
        spdlog::info("event=remounted volume={} readonly={}", v.config.mountPoint, v.readOnly ? "yes" : "no");
        if (v.readOnly)
        {
            throw KeeperError(ErrorKind::CommandFailed,
                              v.config.mountPoint + " is still read-only after the remount; see the kernel log");
        }
        if (v.fsGrowPending && !v.vg.empty())
        {
            d.queueHeal(i); // deferred while read-only
        }
        if (d.listener)
        {
            d.listener->remounted(v.config.mountPoint);
        }
        d.publishStatus();
        reply(nullptr);
    }
    catch (...)
    {
        reply(std::current_exception());
    }
}

void Keeper::healFilesystem(const std::string& volume, GrowReply reply)
{
    auto& d = *impl_;
    std::size_t i = 0;
    try
    {
        i = d.findVolume(volume);
        if (d.volumes[i].vg.empty())
        {
            throw KeeperError(ErrorKind::NotFound, volume + " is not a mounted LVM logical volume");
        }
    }
    catch (...)
    {
        reply(0, std::current_exception());
        return;
    }
    d.jobs.enqueue(d.volumes[i].vg, "heal-fs " + volume,
                   [&d, i, reply](JobQueue::Finish finish)
                   {
                       Impl::GrowRequest request{SizeRequest{SizeRequest::Kind::Absolute, 0}, "heal", false};
                       d.growJob(i, request, reply, finish);
                   });
}

void Keeper::enqueue(const std::string& vg, std::string name, JobQueue::Job job)
{
    impl_->jobs.enqueue(vg, std::move(name), std::move(job));
}

void Keeper::rescan(std::function<void()> done)
{
    auto& d = *impl_;
    for (std::size_t i = 0; i < d.volumes.size(); ++i)
    {
        d.refreshMount(i);
    }
    d.rescanAll(std::move(done));
}

std::uint64_t Keeper::filesystemSize(std::size_t index) const
{
    return impl_->fsSizeOf(impl_->volumes.at(index));
}

const std::vector<VolumeState>& Keeper::volumes() const
{
    return impl_->volumes;
}

std::set<std::string> Keeper::watchedVolumeGroups() const
{
    return impl_->watchedVgs();
}

const Config& Keeper::config() const
{
    return impl_->config;
}

std::string Keeper::statusLine() const
{
    return impl_->statusLine();
}

} // namespace lvkeeper

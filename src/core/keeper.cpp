#include "lvkeeper/keeper.hpp"

#include "lvkeeper/decision.hpp"
#include "lvkeeper/errors.hpp"
#include "lvkeeper/images.hpp"
#include "lvkeeper/journal.hpp"
#include "lvkeeper/lvm_client.hpp"
#include "lvkeeper/operations.hpp"
#include "lvkeeper/size.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

namespace lvkeeper
{

namespace
{

Keeper::Error makeError(ErrorKind kind, const std::string& message)
{
    return std::make_exception_ptr(KeeperError(kind, message));
}

std::optional<ErrorKind> kindOf(const Keeper::Error& error)
{
    try
    {
        std::rethrow_exception(error);
    }
    catch (const KeeperError& e)
    {
        return e.kind();
    }
    catch (...)
    {
        return std::nullopt;
    }
}

bool startsWith(const std::string& text, const std::string& prefix)
{
    return text.compare(0, prefix.size(), prefix) == 0;
}

const std::string stoppingMessage = "lvkeeperd is stopping; try again once it is back";

} // namespace

struct Keeper::Impl
{
    Impl(Config c, KeeperSeams s, KeeperOptions o) :
        config(std::move(c)), seams(s), options(std::move(o)), publisher(s.scheduler, options.propertiesInterval,
                                                                         [this]() -> const std::vector<VolumeState>&
                                                                         {
                                                                             return volumes.all();
                                                                         }),
        volumes(s.filesystems, s.watcher, s.scheduler, publisher, headroom),
        lvm(s.runner, s.executor, s.disks, options.lvmCommand, options.commandTimeout), journal(s.state, s.executor),
        images(s.state, s.executor, s.disks, s.filesystems),
        ctx{volumes,       lvm,     images,   journal,     publisher, jobs,     s.executor, s.disks,
            s.filesystems, s.state, s.runner, s.scheduler, s.gate,    headroom, config,     options.commandTimeout},
        metrics(s.executor, s.files,
                [this]
                {
                    return renderMetrics(volumes.all(), disksAdded, options.version);
                })
    {
        volumes.configure(config.volumes);
        jobs.setOnFinish(
            [this]
            {
                maybeStopped();
            });
        ctx.longWaitEnded = [this]
        {
            maybeStopped();
        };
        publisher.setOnFlush(
            [this]
            {
                writeMetrics();
            });
    }

    Config config;
    KeeperSeams seams;
    KeeperOptions options;
    policy::Headroom headroom;
    Publisher publisher;
    Volumes volumes;
    LvmClient lvm;
    Journal journal;
    Images images;
    JobQueue jobs;
    OperationContext ctx;
    MetricsFileWriter metrics;

    std::map<std::string, DiskLane> diskLanes;              ///< by VG
    std::map<std::string, std::unique_ptr<Timer>> rechecks; ///< by mount point: the next look
    std::map<std::string, Scheduler::Clock::time_point> recheckAt;
    std::map<std::string, std::unique_ptr<UsageWatch>> nextLooks; ///< by mount point: writes fanotify cannot see
    policy::Looks looks;
    std::uint64_t disksAdded = 0;
    std::map<std::string, std::string> loopBacking; ///< loop device -> backing file, as its uevents said
    bool started = false;
    std::function<void()> stopped;

    // ---- the flow: observe, decide, queue, operate, publish ---------------------------------------------------

    DiskLane& laneOf(const std::string& vg)
    {
        auto& lane = diskLanes[vg];
        lane.autoAddDisk = config.disks.autoAddDisk;
        return lane;
    }

    /// A fresh look at one volume's usage, then whatever the decision says (lvmFresh: LVM was just read too).
    void look(VolumeState& v, bool lvmFresh = false)
    {
        volumes.refreshUsage(v);
        std::string mountPoint = v.config.mountPoint;
        act(mountPoint, lvmFresh);
        if (auto* vol = volumes.find(mountPoint))
        {
            scheduleLook(*vol);
        }
    }

    /// The next look for writes fanotify cannot see: from the headroom left and the fastest writer, between the
    /// floor and the backstop. A look for any reason moves it.
    void scheduleLook(VolumeState& v)
    {
        auto backstop = std::chrono::duration_cast<std::chrono::milliseconds>(config.daemon.backstopInterval);
        std::string mountPoint = v.config.mountPoint;
        if (!started || ctx.stopping || !v.mounted || backstop.count() == 0)
        {
            nextLooks.erase(mountPoint);
            return;
        }
        auto wait =
            policy::nextLook(v.config, v.usage, v.peakFillRate, plannedGrow(v, headroom), headroom, looks, backstop);
        if (wait >= backstop)
        {
            nextLooks.erase(mountPoint); // the backstop looks then anyway
            return;
        }
        // Off the loop, and the loop only wakes when the usage changed: idle, a look costs one statvfs.
        nextLooks[mountPoint] = seams.probes.watch(mountPoint, wait, v.usage,
                                                   [this, mountPoint]
                                                   {
                                                       auto keep = std::move(nextLooks[mountPoint]);
                                                       if (auto* vol = volumes.find(mountPoint))
                                                       {
                                                           look(*vol);
                                                       }
                                                   });
    }

    /// fresh: the sizes were just read from LVM. Exhaustion is only declared on fresh sizes: a stale VG size
    /// must not excuse an ENOSPC (an admin's vgextend, a disk just added).
    void act(const std::string& mountPoint, bool fresh = false)
    {
        auto* v = volumes.find(mountPoint);
        if (!v || !started || ctx.stopping)
        {
            return;
        }
        if (v->vg.empty())
        {
            return;
        }
        Decision d = decide(*v, laneOf(v->vg), seams.scheduler.now(), headroom);
        switch (d.action)
        {
        case Decision::Action::Nothing:
            break;
        case Decision::Action::Recheck:
            recheck(mountPoint, d.at);
            break;
        case Decision::Action::Grow:
        {
            // The disk goes behind the grow; reserved first, so that a decision made while the grow runs (it
            // may finish at once) does not add a second one.
            auto& lane = laneOf(v->vg);
            bool disk = d.addDiskToo && !lane.queued;
            lane.queued = lane.queued || disk;
            std::string vg = v->vg;
            queueAutoGrow(*v);
            if (disk)
            {
                enqueueAutoAddDisk(vg);
            }
            break;
        }
        case Decision::Action::AddDisk:
            if (d.reason == "vg-short")
            {
                spdlog::info("event=vg-short vg={} vg_free={} fill_rate={}/s", v->vg, formatSize(v->vgFree),
                             formatSize(static_cast<std::uint64_t>(v->fillRate)));
            }
            queueAutoAddDisk(v->vg);
            break;
        case Decision::Action::Exhausted:
            if (v->exhausted)
            {
                break; // once per episode
            }
            if (!fresh)
            {
                queueAutoGrow(*v); // it reads LVM, then decides again on fresh sizes
                break;
            }
            exhausted(*v, d.reason);
            break;
        }
    }

    void recheck(const std::string& mountPoint, Scheduler::Clock::time_point at)
    {
        auto it = recheckAt.find(mountPoint);
        if (it != recheckAt.end() && rechecks[mountPoint] && it->second <= at)
        {
            return;
        }
        auto now = seams.scheduler.now();
        auto delay =
            std::chrono::duration_cast<std::chrono::milliseconds>(at > now ? at - now : Scheduler::Clock::duration{});
        recheckAt[mountPoint] = at;
        rechecks[mountPoint] = seams.scheduler.after(delay,
                                                     [this, mountPoint]
                                                     {
                                                         auto keep = std::move(rechecks[mountPoint]);
                                                         recheckAt.erase(mountPoint);
                                                         if (auto* v = volumes.find(mountPoint))
                                                         {
                                                             look(*v);
                                                         }
                                                     });
    }

    void exhausted(VolumeState& v, const std::string& reason)
    {
        if (v.exhausted)
        {
            return; // once per episode
        }
        v.exhausted = reason;
        spdlog::error("event=space-exhausted volume={} reason=\"{}\"", v.config.mountPoint, reason);
        publisher.spaceExhausted(v.config.mountPoint, reason);
        publisher.changed(v.config.mountPoint);
    }

    void notExhausted(VolumeState& v)
    {
        if (v.exhausted)
        {
            v.exhausted.reset();
            publisher.changed(v.config.mountPoint);
        }
    }

    void queueAutoGrow(VolumeState& v)
    {
        if (v.autoGrowQueued)
        {
            return;
        }
        v.autoGrowQueued = true;
        std::string mountPoint = v.config.mountPoint;
        GrowRequest request{SizeRequest{}, "threshold", true};
        // Ahead of waiting jobs (a disk being queued, a repair): a writer is about to run out.
        jobs.enqueueFirst(
            v.vg, "auto-grow " + mountPoint,
            [this, mountPoint, request](JobQueue::Finish finish)
            {
                auto op = std::make_shared<GrowOperation>(ctx, mountPoint, request);
                op->run(
                    [this, mountPoint, finish](const GrowResult& result)
                    {
                        if (auto* vol = volumes.find(mountPoint))
                        {
                            vol->autoGrowQueued = false;
                        }
                        grew(mountPoint, result, true);
                        finish();
                        if (volumes.find(mountPoint))
                        {
                            // A fast writer may be past the threshold again already; a VG with nothing left
                            // is decided again with the sizes just read.
                            act(mountPoint, !result.error);
                        }
                    });
            },
            [this, mountPoint]
            {
                if (auto* vol = volumes.find(mountPoint))
                {
                    vol->autoGrowQueued = false;
                }
            });
    }

    /// The outcome of any grow: counters, episodes, signals.
    void grew(const std::string& mountPoint, const GrowResult& result, bool automatic)
    {
        auto* v = volumes.find(mountPoint);
        if (!v)
        {
            return;
        }
        auto now = seams.scheduler.now();
        if (result.grown || result.error)
        {
            v->lastGrowEnd = now; // the cooldown counts from a grow that ran, not from one that had nothing to do
        }
        if (result.healed)
        {
            publisher.grown(mountPoint, result.healed->first, result.healed->second, "heal");
        }
        if (result.error)
        {
            v->lastError = describeError(result.error);
            ++v->growFailureCount;
            bool transient = kindOf(result.error) != ErrorKind::NoSpace &&
                             kindOf(result.error) != ErrorKind::NotFound &&
                             kindOf(result.error) != ErrorKind::InvalidArgument;
            if (automatic && transient)
            {
                // One log line and one GrowFailed per episode; the retries back off.
                ++v->failedGrows;
                v->retryGrowAt = now + policy::backoff(v->failedGrows);
                if (v->failedGrows == 1)
                {
                    spdlog::error("event=grow-failed volume={} error=\"{}\" retry_in_ms={}", mountPoint, v->lastError,
                                  policy::backoff(1).count());
                    publisher.growFailed(mountPoint, v->lastError);
                }
                else
                {
                    spdlog::debug("event=grow-failed volume={} attempt={} error=\"{}\"", mountPoint, v->failedGrows,
                                  v->lastError);
                }
                recheck(mountPoint, *v->retryGrowAt);
            }
            else
            {
                spdlog::error("event=grow-failed volume={} error=\"{}\"", mountPoint, v->lastError);
                publisher.growFailed(mountPoint, v->lastError);
            }
            publisher.changed(mountPoint);
            return;
        }
        if (result.grown)
        {
            if (v->failedGrows > 0)
            {
                spdlog::info("event=grow-recovered volume={} failures={}", mountPoint, v->failedGrows);
            }
            v->failedGrows = 0;
            v->retryGrowAt.reset();
            v->lastError.clear();
            v->lastGrowDuration = result.duration;
            ++v->growCount;
            v->lastGrowTime = seams.scheduler.wallNow();
            notExhausted(*v);
            spdlog::info("event=grown volume={} from={} to={} reason={} vg_free={} from_bytes={} to_bytes={} "
                         "vg_free_bytes={}",
                         mountPoint, formatSize(result.oldSize), formatSize(result.newSize),
                         automatic ? "threshold" : "request", formatSize(v->vgFree), result.oldSize, result.newSize,
                         v->vgFree);
            publisher.grown(mountPoint, result.oldSize, result.newSize, automatic ? "threshold" : "request");
            if (!ctx.stopping)
            {
                images.keepAllocated();
            }
            publisher.changed(mountPoint);
        }
    }

    void queueAutoAddDisk(const std::string& vg)
    {
        auto& lane = laneOf(vg);
        if (lane.queued)
        {
            return;
        }
        lane.queued = true;
        enqueueAutoAddDisk(vg);
    }

    void enqueueAutoAddDisk(const std::string& vg)
    {
        // One disk per job: a grow that becomes urgent meanwhile goes ahead of the next disk, not behind all.
        jobs.enqueue(
            vg, "auto-add-disk " + vg,
            [this, vg](JobQueue::Finish finish)
            {
                setActivityOfVg(vg, Activity::AddingDisk);
                spdlog::info("event=auto-add-disk vg={}", vg);
                auto start = seams.scheduler.now();
                auto op = std::make_shared<AddDiskOperation>(ctx, vg, config.disks.imageSize);
                op->run(
                    [this, vg, start, finish](const DiskResult& result)
                    {
                        auto& l = laneOf(vg);
                        l.queued = false;
                        l.lastAdd =
                            std::chrono::duration_cast<std::chrono::milliseconds>(seams.scheduler.now() - start);
                        setActivityOfVg(vg, Activity::Idle);
                        autoDiskOutcome(vg, result);
                        finish();
                        lookAtVg(vg);
                    });
            },
            [this, vg]
            {
                laneOf(vg).queued = false;
            });
    }

    void autoDiskOutcome(const std::string& vg, const DiskResult& result)
    {
        auto& lane = laneOf(vg);
        if (!result.error)
        {
            lane.failures = 0;
            lane.retryAt.reset();
            lane.lastingBlock.reset();
            diskAdded(result);
            return;
        }
        auto kind = kindOf(result.error);
        std::string text = describeError(result.error);
        if (kind == ErrorKind::NoHostSpace)
        {
            lane.lastingBlock = "no-host-space: volume group " + vg + " is full and no disk can be added: " + text;
        }
        else if (kind == ErrorKind::NoSpace)
        {
            lane.lastingBlock = "max-disks: volume group " + vg + " is full and no disk can be added: " + text;
        }
        if (lane.lastingBlock)
        {
            spdlog::warn("event=auto-add-disk-stopped vg={} reason=\"{}\"", vg, *lane.lastingBlock);
            return;
        }
        // Transient (an lvm timeout, a failed probe or pvcreate): try again later, never exhaustion.
        ++lane.failures;
        lane.retryAt = seams.scheduler.now() + policy::backoff(lane.failures);
        if (lane.failures == 1)
        {
            spdlog::warn("event=auto-add-disk-failed vg={} error=\"{}\" retry_in_ms={}", vg, text,
                         policy::backoff(1).count());
        }
        for (auto& v : volumes.all())
        {
            if (v.vg == vg)
            {
                recheck(v.config.mountPoint, *lane.retryAt);
            }
        }
    }

    /// A disk joined a VG (AddDisk, automatic, adoption or replay): announce it, then look at its volumes.
    void diskAdded(const DiskResult& result)
    {
        ++disksAdded;
        for (auto& v : volumes.all())
        {
            if (v.vg == result.vg)
            {
                v.vgFree += result.size; // approximate until the next lvs
                notExhausted(v);
                publisher.changed(v.config.mountPoint);
            }
        }
        spdlog::info("event=disk-added vg={} image={} device={} size={} size_bytes={}", result.vg, result.image,
                     result.device, formatSize(result.size), result.size);
        publisher.diskAdded(result.vg, result.image, result.device, result.size);
    }

    /// A full filesystem waiting for a disk may see no more writes (ENOSPC is not a modification): look now.
    void lookAtVg(const std::string& vg)
    {
        for (auto& v : volumes.all())
        {
            if (v.vg == vg)
            {
                look(v);
            }
        }
    }

    void setActivityOfVg(const std::string& vg, Activity activity)
    {
        for (auto& v : volumes.all())
        {
            if (v.vg == vg)
            {
                volumes.setActivity(v, activity);
            }
        }
    }

    // ---- LVM identity and rescans -------------------------------------------------------------------------

    /// Re-reads LVM, then every volume's usage; a failed LVM read is logged, not fatal.
    void rescanAll(std::function<void()> then = {}, bool background = false)
    {
        lvm.lvs(
            [this, then = std::move(then)](const std::vector<lvm::Lv>& lvs, Error error)
            {
                if (error)
                {
                    spdlog::warn("event=lvm-scan-failed error=\"{}\"", describeError(error));
                }
                else
                {
                    volumes.applyLvs(lvs);
                }
                for (auto& v : volumes.all())
                {
                    look(v, !error);
                }
                publisher.changedAll();
                publisher.status();
                if (then)
                {
                    then();
                }
            },
            background);
    }

    /// Records every image file that backs a PV of a watched VG so it comes back at boot.
    void recordBackingImages(const std::vector<lvm::Pv>& pvs)
    {
        auto vgs = volumes.volumeGroups();
        std::map<std::string, std::string> backing;
        try
        {
            for (const auto& loop : seams.disks.loopDevices())
            {
                backing[loop.device] = loop.backingFile;
            }
        }
        catch (const std::exception& e)
        {
            spdlog::warn("event=record-images-failed error=\"{}\"", e.what());
            return;
        }
        for (const auto& pv : pvs)
        {
            auto it = backing.find(pv.name);
            if (vgs.count(pv.vgName) && it != backing.end() && !it->second.empty())
            {
                std::string image = it->second;
                images.record(image,
                              [image](Error e)
                              {
                                  if (e)
                                  {
                                      spdlog::error("event=state-write-failed image={} error=\"{}\"", image,
                                                    describeError(e));
                                  }
                              });
            }
        }
    }

    // ---- start: the journal first ---------------------------------------------------------------------------

    void replay(const std::vector<Intent>& intents)
    {
        for (const auto& intent : intents)
        {
            spdlog::info("event=replay op={} step={} since={}", intent.kind, intent.step, intent.since);
            replayOne(intent,
                      [intent](Error error)
                      {
                          if (error)
                          {
                              spdlog::error("event=replay-failed op={} id={} error=\"{}\"", intent.kind, intent.id,
                                            describeError(error));
                          }
                      });
        }
    }

    /// Finishes or undoes one intent a stopped run left open; done(error) when it could not be settled (it stays
    /// open, and Diagnose names it).
    void replayOne(const Intent& intent, std::function<void(Error)> done)
    {
        std::string vg = intent.field("vg");
        if (vg.empty())
        {
            auto lv = intent.field("lv");
            vg = lv.substr(0, lv.find('/'));
        }
        if (intent.kind == "add-disk")
        {
            jobs.enqueueFirst(vg, "replay add-disk",
                              [this, intent, done](JobQueue::Finish finish)
                              {
                                  auto op = std::make_shared<AddDiskOperation>(ctx, intent.field("vg"), 0);
                                  op->resume(intent,
                                             [this, done, finish](const DiskResult& result)
                                             {
                                                 if (!result.error && result.added)
                                                 {
                                                     diskAdded(result);
                                                 }
                                                 done(result.error);
                                                 finish();
                                                 lookAtVg(result.vg);
                                             });
                              });
            return;
        }
        if (intent.kind == "recreate-pv")
        {
            auto op = std::make_shared<RecreatePvOperation>(ctx, vg, intent.field("device"), intent.field("image"));
            op->resume(intent,
                       [done](Error error, const std::string& fixed)
                       {
                           if (!error)
                           {
                               spdlog::info("event=replay-finished op=recreate-pv result=\"{}\"", fixed);
                           }
                           done(error);
                       });
            return;
        }
        // A grow: the sizes say it all, and an LV that grew but not its filesystem is healed at start like any
        // other. Single-step operations (adopt, remount, pv commands) are whole or not done at all.
        journal.close(intent.id);
        done(nullptr);
    }

    void queueHeal(VolumeState& v)
    {
        v.fsGrowPending = true;
        publisher.changed(v.config.mountPoint);
        if (v.readOnly)
        {
            spdlog::warn("event=fs-grow-deferred volume={} reason=\"mounted read-only, finished after Remount\"",
                         v.config.mountPoint);
            volumes.setActivity(v, Activity::FsGrowPending);
            return;
        }
        enqueueGrow(v, GrowRequest{SizeRequest{SizeRequest::Kind::Absolute, 0}, "heal", false},
                    [](std::uint64_t, Error) {});
    }

    void enqueueGrow(VolumeState& v, const GrowRequest& request, GrowReply reply)
    {
        std::string mountPoint = v.config.mountPoint;
        jobs.enqueue(
            v.vg, (request.reason == "heal" ? "heal-fs " : "grow ") + mountPoint,
            [this, mountPoint, request, reply](JobQueue::Finish finish)
            {
                auto op = std::make_shared<GrowOperation>(ctx, mountPoint, request);
                op->run(
                    [this, mountPoint, reply, finish](const GrowResult& result)
                    {
                        grew(mountPoint, result, false);
                        reply(result.newSize, result.error);
                        finish();
                        if (volumes.find(mountPoint))
                        {
                            act(mountPoint);
                        }
                    });
            },
            [reply]
            {
                reply(0, makeError(ErrorKind::Busy, stoppingMessage));
            });
    }

    void writeMetrics()
    {
        metrics.write(config.daemon.metricsFile);
    }

    // ---- stop ---------------------------------------------------------------------------------------------

    void maybeStopped()
    {
        if (!ctx.stopping || !stopped || !jobs.idle() || ctx.longWaits > 0)
        {
            return;
        }
        auto done = std::move(stopped);
        stopped = nullptr;
        spdlog::info("event=stopped reason=\"no operation left running\"");
        done();
    }
};

Keeper::Keeper(Config config, KeeperSeams seams, KeeperOptions options) :
    impl_(std::make_unique<Impl>(std::move(config), seams, std::move(options)))
{
}

Keeper::~Keeper() = default;

void Keeper::setListener(KeeperListener* listener)
{
    impl_->publisher.setListener(listener);
}

void Keeper::start(std::function<void()> ready)
{
    auto& d = *impl_;
    for (auto& v : d.volumes.all())
    {
        d.volumes.refreshMount(v);
        if (!v.mounted)
        {
            spdlog::warn("event=not-mounted volume={}", v.config.mountPoint);
        }
    }
    d.journal.load(
        [&d, ready = std::move(ready)](const std::vector<Intent>& intents)
        {
            // lvs waits for the VG lock: an lvm command a killed instance left running finishes first.
            d.lvm.lvs(
                [&d, intents, ready](const std::vector<lvm::Lv>& lvs, Error error)
                {
                    if (error)
                    {
                        spdlog::warn("event=lvm-scan-failed error=\"{}\"", describeError(error));
                    }
                    else
                    {
                        d.volumes.applyLvs(lvs);
                    }
                    d.lvm.pvs(
                        [&d, intents, ready](const std::vector<lvm::Pv>& pvs, Error e)
                        {
                            d.started = true;
                            // Before any new work: what the journal says was left half-done.
                            d.replay(intents);
                            for (auto& v : d.volumes.all())
                            {
                                d.volumes.refreshUsage(v);
                                if (v.mounted && !v.vg.empty() &&
                                    policy::filesystemBehind(d.volumes.filesystemSize(v), v.lvSize, v.extentSize))
                                {
                                    // An LV bigger than its filesystem is always healed, first thing.
                                    d.queueHeal(v);
                                }
                                d.act(v.config.mountPoint);
                            }
                            for (auto& v : d.volumes.all())
                            {
                                d.scheduleLook(v);
                            }
                            if (!e && !d.volumes.volumeGroups().empty())
                            {
                                d.recordBackingImages(pvs);
                            }
                            d.publisher.changedAll();
                            d.publisher.status();
                            d.writeMetrics();
                            ready();
                        });
                });
        });
}

void Keeper::stop(std::function<void()> stopped)
{
    auto& d = *impl_;
    if (d.ctx.stopping)
    {
        return;
    }
    d.ctx.stopping = true;
    d.stopped = std::move(stopped);
    d.rechecks.clear();
    d.recheckAt.clear();
    d.nextLooks.clear();
    spdlog::info("event=stop-draining running_jobs={} long_waits={}", d.jobs.idle() ? 0 : 1, d.ctx.longWaits);
    d.publisher.setNote("stopping");
    d.jobs.cancelWaiting();
    d.maybeStopped();
}

bool Keeper::stopping() const
{
    return impl_->ctx.stopping;
}

void Keeper::reload(Config config)
{
    auto& d = *impl_;
    d.config = std::move(config);
    d.volumes.configure(d.config.volumes);
    for (auto& v : d.volumes.all())
    {
        v.exhausted.reset(); // MaxSize, MaxDisks or AutoAddDisk may have changed: a new episode
    }
    // MaxDisks, AutoAddDisk or the image directory may have changed: every disk lane starts again.
    for (auto& [vg, lane] : d.diskLanes)
    {
        lane.lastingBlock.reset();
        lane.retryAt.reset();
        lane.failures = 0;
    }
    d.rechecks.clear();
    d.recheckAt.clear();
    d.nextLooks.clear();
    spdlog::info("event=reloaded volumes={}", d.volumes.all().size());
    d.publisher.replaced();
    for (auto& v : d.volumes.all())
    {
        if (!v.mounted)
        {
            d.volumes.refreshMount(v);
        }
    }
    d.rescanAll();
}

void Keeper::onActivity(const std::string& mountPoint)
{
    auto& d = *impl_;
    if (auto* v = d.volumes.find(mountPoint))
    {
        d.look(*v);
    }
}

void Keeper::onFilesystemError(const std::string& mountPoint)
{
    auto& d = *impl_;
    auto* v = d.volumes.find(mountPoint);
    if (!v)
    {
        return;
    }
    if (!v->fsErrors)
    {
        v->fsErrors = true;
        spdlog::error("event=fs-error volume={} action=\"run fsck on {} after unmounting it\"", mountPoint,
                      v->mount.source);
        d.publisher.changed(mountPoint);
    }
    // errors=remount-ro makes the superblock read-only without a mount table event: look now.
    d.volumes.refreshMount(*v);
}

void Keeper::onMountsChanged()
{
    auto& d = *impl_;
    bool identify = false;
    for (auto& v : d.volumes.all())
    {
        identify = d.volumes.refreshMount(v).appeared || identify;
        d.look(v);
    }
    if (identify)
    {
        d.rescanAll();
    }
    d.publisher.status();
}

void Keeper::onLoopDevice(const std::string& action, const LoopDevice& device)
{
    auto& d = *impl_;
    if (action == "remove" || device.backingFile.empty())
    {
        spdlog::debug("event=loop-unbound device={}", device.device);
        d.loopBacking.erase(device.device);
        return;
    }
    // Binding a loop device is a "change" uevent, and so is every write an lvm command makes to a PV (udev's watch
    // rule): only a backing file not seen on that device before is news.
    auto known = d.loopBacking.find(device.device);
    if (known != d.loopBacking.end() && known->second == device.backingFile)
    {
        spdlog::debug("event=loop-changed device={} image={}", device.device, device.backingFile);
        return;
    }
    d.loopBacking[device.device] = device.backingFile;
    spdlog::info("event=loop-attached device={} image={}", device.device, device.backingFile);
    if (!d.config.disks.adoptLoopDevices || d.ctx.stopping)
    {
        return;
    }
    const auto& dir = d.config.disks.imageDirectory;
    std::string prefix = dir.empty() || dir.back() == '/' ? dir : dir + "/";
    if (!startsWith(device.backingFile, prefix))
    {
        return;
    }
    if (device.backingFile.find('/', prefix.size()) != std::string::npos)
    {
        // Only images directly in the image directory: /media/<user>/... are udisks2's per-user mounts,
        // which any active local user may loop-attach without a password.
        spdlog::warn("event=adopt-refused device={} image={} reason=\"not directly inside {}\"", device.device,
                     device.backingFile, dir);
        return;
    }
    // An image an operation of ours is adding or bringing back is not a stranger to adopt.
    for (const auto& intent : d.journal.open())
    {
        if (intent.field("image") == device.backingFile)
        {
            return;
        }
    }
    auto vgs = d.volumes.volumeGroups();
    if (vgs.empty())
    {
        spdlog::warn("event=adopt-skipped device={} reason=\"no watched volume group\"", device.device);
        return;
    }
    const auto& volumes = d.volumes.all();
    std::string vg = volumes.front().vg.empty() ? *vgs.begin() : volumes.front().vg;
    d.jobs.enqueue(vg, "adopt " + device.device,
                   [&d, vg, device](JobQueue::Finish finish)
                   {
                       auto op = std::make_shared<AdoptOperation>(d.ctx, vg, device);
                       op->run(
                           [&d, finish](const DiskResult& result)
                           {
                               if (result.added)
                               {
                                   d.diskAdded(result);
                               }
                               finish();
                               if (result.added)
                               {
                                   d.lookAtVg(result.vg);
                               }
                           });
                   });
}

void Keeper::onBackstop()
{
    auto& d = *impl_;
    if (d.ctx.stopping)
    {
        return; // nothing new while stopping
    }
    // Host space may be back (a process restarted, files removed): the next grow adds a disk again.
    for (auto& [vg, lane] : d.diskLanes)
    {
        if (!lane.lastingBlock || !startsWith(*lane.lastingBlock, "no-host-space:"))
        {
            continue;
        }
        try
        {
            d.images.checkRoom(d.config.disks, d.config.disks.imageSize);
            spdlog::info("event=host-space-back vg={} dir={}", vg, d.config.disks.imageDirectory);
            lane.lastingBlock.reset();
        }
        catch (const std::exception&)
        {
        }
    }
    d.images.keepAllocated();
    bool rescan = false;
    for (auto& v : d.volumes.all())
    {
        d.volumes.refreshMount(v);
        // An exhausted volume gets space back by an admin's vgextend too: only LVM tells.
        rescan = rescan || v.exhausted.has_value() || (v.mounted && v.vg.empty());
    }
    if (rescan)
    {
        d.rescanAll();
    }
    else
    {
        for (auto& v : d.volumes.all())
        {
            d.look(v);
        }
    }
    d.publisher.status();
}

void Keeper::grow(const std::string& volume, const std::string& size, GrowReply reply)
{
    auto& d = *impl_;
    VolumeState* v = nullptr;
    SizeRequest request;
    try
    {
        if (d.ctx.stopping)
        {
            throw KeeperError(ErrorKind::Busy, stoppingMessage);
        }
        v = &d.volumes.named(volume);
        request = parseSizeRequest(size);
        if (!v->mounted)
        {
            throw KeeperError(ErrorKind::NotFound, v->config.mountPoint + " is not mounted");
        }
        if (v->vg.empty())
        {
            throw KeeperError(ErrorKind::NotFound, v->config.mountPoint + " (" + v->mount.source +
                                                       ") is not an LVM logical volume lvkeeper could identify");
        }
        if (v->readOnly)
        {
            throw KeeperError(ErrorKind::Busy, v->config.mountPoint +
                                                   " is mounted read-only; call Remount first so the filesystem "
                                                   "can grow online");
        }
    }
    catch (...)
    {
        reply(0, std::current_exception());
        return;
    }
    d.enqueueGrow(*v, GrowRequest{request, "request", false}, std::move(reply));
}

void Keeper::addDisk(const std::string& vg, const std::string& size, AddDiskReply reply)
{
    auto& d = *impl_;
    std::uint64_t bytes = d.config.disks.imageSize;
    try
    {
        if (d.ctx.stopping)
        {
            throw KeeperError(ErrorKind::Busy, stoppingMessage);
        }
        if (vg.empty())
        {
            throw KeeperError(ErrorKind::InvalidArgument, "no volume group given, e.g. vg0");
        }
        auto vgs = d.volumes.volumeGroups();
        if (!vgs.count(vg))
        {
            std::string list;
            for (const auto& g : vgs)
            {
                list += (list.empty() ? "" : ", ") + g;
            }
            std::string shown = vg.size() > 200 ? vg.substr(0, 200) + "..." : vg;
            throw KeeperError(ErrorKind::NotFound, "volume group \"" + shown +
                                                       "\" holds no watched volume; watched volume groups: " +
                                                       (list.empty() ? "none" : list));
        }
        if (!size.empty())
        {
            if (size[0] == '+' || size[0] == '-')
            {
                throw KeeperError(ErrorKind::InvalidArgument, "disk size must be absolute, like 1800M");
            }
            bytes = parseSize(size);
        }
        if (bytes < 16 * MiB)
        {
            throw KeeperError(ErrorKind::InvalidArgument,
                              "disk size " + formatSize(bytes) + " is too small; LVM needs at least 16M");
        }
        // Sizes near the top of the range would wrap in the host-space check (size + reserve) or in rounding.
        if (bytes > 1024 * TiB)
        {
            throw KeeperError(ErrorKind::InvalidArgument,
                              "disk size " + formatSize(bytes) + " is too large; lvkeeper adds disks of at most 1024T");
        }
        bytes = roundUp(bytes, MiB);
    }
    catch (...)
    {
        reply("", "", std::current_exception());
        return;
    }
    d.jobs.enqueue(
        vg, "add-disk " + vg,
        [&d, vg, bytes, reply](JobQueue::Finish finish)
        {
            d.setActivityOfVg(vg, Activity::AddingDisk);
            auto op = std::make_shared<AddDiskOperation>(d.ctx, vg, bytes);
            op->run(
                [&d, vg, reply, finish](const DiskResult& result)
                {
                    d.setActivityOfVg(vg, Activity::Idle);
                    if (!result.error)
                    {
                        d.diskAdded(result);
                        d.laneOf(vg).lastingBlock.reset();
                    }
                    reply(result.image, result.device, result.error);
                    finish();
                    d.lookAtVg(vg);
                });
        },
        [reply]
        {
            reply("", "", makeError(ErrorKind::Busy, stoppingMessage));
        });
}

void Keeper::remount(const std::string& volume, RemountReply reply)
{
    auto& d = *impl_;
    std::string mountPoint;
    try
    {
        if (d.ctx.stopping)
        {
            throw KeeperError(ErrorKind::Busy, stoppingMessage);
        }
        mountPoint = d.volumes.named(volume).config.mountPoint;
    }
    catch (...)
    {
        reply(std::current_exception());
        return;
    }
    auto op = std::make_shared<RemountOperation>(d.ctx, mountPoint);
    op->run(
        [&d, mountPoint, reply](Error error, bool remounted)
        {
            auto* v = d.volumes.find(mountPoint);
            if (!error && remounted && v)
            {
                if (v->fsGrowPending && !v->vg.empty())
                {
                    d.queueHeal(*v); // deferred while read-only
                }
                d.publisher.remounted(mountPoint);
                d.publisher.status();
            }
            reply(error);
            if (!error && remounted && v)
            {
                d.act(mountPoint);
            }
        });
}

void Keeper::healFilesystem(const std::string& volume, GrowReply reply)
{
    auto& d = *impl_;
    VolumeState* v = nullptr;
    try
    {
        if (d.ctx.stopping)
        {
            throw KeeperError(ErrorKind::Busy, stoppingMessage);
        }
        v = &d.volumes.named(volume);
        if (v->vg.empty())
        {
            throw KeeperError(ErrorKind::NotFound, v->config.mountPoint + " is not a mounted LVM logical volume");
        }
    }
    catch (...)
    {
        reply(0, std::current_exception());
        return;
    }
    d.enqueueGrow(*v, GrowRequest{SizeRequest{SizeRequest::Kind::Absolute, 0}, "heal", false}, std::move(reply));
}

void Keeper::enqueue(const std::string& vg, std::string name, JobQueue::Job job, JobQueue::Cancel cancel)
{
    if (impl_->ctx.stopping)
    {
        if (cancel)
        {
            cancel();
        }
        return;
    }
    impl_->jobs.enqueue(vg, std::move(name), std::move(job), std::move(cancel));
}

void Keeper::rescan(std::function<void()> done, bool background)
{
    auto& d = *impl_;
    for (auto& v : d.volumes.all())
    {
        d.volumes.refreshMount(v);
    }
    d.rescanAll(std::move(done), background);
}

void Keeper::settle(std::uint64_t intentId, std::function<void(Error)> done)
{
    auto& d = *impl_;
    for (const auto& intent : d.journal.unsettled())
    {
        if (intent.id == intentId)
        {
            d.replayOne(intent, std::move(done));
            return;
        }
    }
    done(makeError(ErrorKind::NotFound, "operation " + std::to_string(intentId) + " is not left half-done"));
}

std::uint64_t Keeper::filesystemSize(std::size_t index) const
{
    return impl_->volumes.filesystemSize(impl_->volumes.all().at(index));
}

const std::vector<VolumeState>& Keeper::volumes() const
{
    return impl_->volumes.all();
}

std::set<std::string> Keeper::watchedVolumeGroups() const
{
    return impl_->volumes.volumeGroups();
}

const Config& Keeper::config() const
{
    return impl_->config;
}

std::string Keeper::statusLine() const
{
    return impl_->publisher.statusLine();
}

OperationContext& Keeper::context()
{
    return impl_->ctx;
}

std::uint64_t Keeper::disksAdded() const
{
    return impl_->disksAdded;
}

} // namespace lvkeeper

#include "lvkeeper/errors.hpp"
#include "lvkeeper/operations.hpp"
#include "lvkeeper/size.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

namespace lvkeeper
{

namespace
{

/// A PV's first extent normally starts at 1 MiB; far beyond that, the space before it is lost.
constexpr std::uint64_t farPeStart = 8 * MiB;
/// Each look is one lvm command (a second under emulation): the progress on the bus moves about as often.
constexpr std::chrono::milliseconds pollInterval{500};
/// A move whose progress has not changed for this long has lost its poller (a crash, a power cut): restart it.
constexpr std::chrono::milliseconds stalled{30000};

} // namespace

RecreatePvOperation::RecreatePvOperation(OperationContext& ctx, std::string vg, std::string device, std::string image) :
    Operation(ctx, "recreate-pv"), vg_(std::move(vg)), device_(std::move(device)), image_(std::move(image))
{
}

std::string RecreatePvOperation::device() const
{
    if (!image_.empty())
    {
        // After a reboot the image may sit on another loop device: the image is the identity.
        for (const auto& loop : ctx_.disks.loopDevices())
        {
            if (loop.backingFile == image_)
            {
                return loop.device;
            }
        }
    }
    return device_;
}

void RecreatePvOperation::run(RepairDone done)
{
    done_ = std::move(done);
    // Required: a PV that left its VG must be found again after a crash; without the journal it is not started.
    journal({{"vg", vg_}, {"device", device_}, {"image", image_}}, true);
    auto me = self<RecreatePvOperation>();
    auto signature = std::make_shared<std::optional<std::string>>();
    offload(
        "probe " + device_,
        [me, signature]
        {
            *signature = me->ctx_.disks.signature(me->device_);
        },
        [me, signature](Error error)
        {
            if (error)
            {
                me->end(operationError(ErrorKind::Failed, "cannot probe " + me->device_ + ": " + describeError(error)),
                        "", {});
                return;
            }
            if (*signature != std::optional<std::string>("LVM2_member"))
            {
                me->end(operationError(ErrorKind::AccessDenied,
                                       me->device_ + " does not carry an LVM2_member signature (" +
                                           signature->value_or("none") + "); lvkeeper touches only PVs of watched VGs"),
                        "", {});
                return;
            }
            me->inLane(
                [me](JobQueue::Finish finish)
                {
                    me->converge(finish);
                });
        });
}

void RecreatePvOperation::resume(const Intent& intent, RepairDone done)
{
    adopt(intent);
    required_ = true;
    done_ = std::move(done);
    vg_ = intent.field("vg");
    device_ = intent.field("device");
    image_ = intent.field("image");
    moved_ = std::strtoull(intent.field("moved").c_str(), nullptr, 10);
    spdlog::info("event=replay-continue op=recreate-pv device={} image={} step={}", device_, image_, intent.step);
    auto me = self<RecreatePvOperation>();
    inLane(
        [me](JobQueue::Finish finish)
        {
            me->converge(finish);
        });
}

void RecreatePvOperation::inLane(std::function<void(JobQueue::Finish)> job)
{
    ctx_.jobs.enqueue(vg_, "recreate " + device_, std::move(job));
}

void RecreatePvOperation::converge(JobQueue::Finish finish)
{
    auto me = self<RecreatePvOperation>();
    ctx_.lvm.moves(
        [me, finish](std::vector<lvm::Move> moves, Error error)
        {
            if (error)
            {
                me->end(error, "", finish);
                return;
            }
            std::string dev = me->device();
            if (std::any_of(moves.begin(), moves.end(),
                            [&](const lvm::Move& m)
                            {
                                return m.sourcePv == dev;
                            }))
            {
                finish(); // the lane is free while LVM moves the extents in the background
                me->waitForMove();
                return;
            }
            me->ctx_.lvm.pvs(
                [me, dev, finish](std::vector<lvm::Pv> pvs, Error e)
                {
                    if (e)
                    {
                        me->end(e, "", finish);
                        return;
                    }
                    me->note("device", dev);
                    auto it = std::find_if(pvs.begin(), pvs.end(),
                                           [&](const lvm::Pv& pv)
                                           {
                                               return pv.name == dev;
                                           });
                    auto again = [me, finish](Error stepError)
                    {
                        if (stepError)
                        {
                            me->end(stepError, "", finish);
                            return;
                        }
                        me->converge(finish);
                    };
                    if (it == pvs.end())
                    {
                        // Removed as a PV and not yet created again: only a device with no signature at all.
                        me->step(
                            "pvcreate",
                            [me, dev](Next next)
                            {
                                me->pvcreateBlank(dev, next);
                            },
                            again);
                        return;
                    }
                    const lvm::Pv& pv = *it;
                    if (!pv.vgName.empty() && pv.vgName != me->vg_)
                    {
                        me->end(operationError(ErrorKind::Failed, dev + " is a PV of " + pv.vgName + " now, not of " +
                                                                      me->vg_ + "; lvkeeper leaves it alone"),
                                "", finish);
                        return;
                    }
                    bool far = pv.peStart > farPeStart;
                    if (pv.vgName == me->vg_ && !far)
                    {
                        me->end(nullptr,
                                "moved " + std::to_string(me->moved_) + " extents off " + dev +
                                    ", recreated it with its first extent at " + formatSize(pv.peStart) +
                                    " and added it back to " + me->vg_,
                                finish);
                        return;
                    }
                    if (pv.vgName == me->vg_ && pv.peAllocCount > 0)
                    {
                        me->moved_ = pv.peAllocCount;
                        me->note("moved", std::to_string(pv.peAllocCount));
                        me->step(
                            "pvmove",
                            [me, dev](Next next)
                            {
                                spdlog::info("event=pvmove-start device={} extents={}", dev, me->moved_);
                                me->ctx_.publisher.progress("pvmove " + dev, 0);
                                // Background mode: the move is LVM's and outlives lvkeeperd; its progress is read.
                                me->ctx_.lvm.run(lvm::pvmoveStartArgs(dev),
                                                 [next](const CommandResult& r)
                                                 {
                                                     next(r.ok()
                                                              ? nullptr
                                                              : operationError(ErrorKind::CommandFailed,
                                                                               r.describe() + "; nothing was changed"));
                                                 });
                            },
                            again);
                        return;
                    }
                    if (pv.vgName == me->vg_)
                    {
                        me->step(
                            "vgreduce",
                            [me, dev](Next next)
                            {
                                me->ctx_.lvm.change(me->vg_, lvm::vgreduceArgs(me->vg_, dev), {dev}, next);
                            },
                            again);
                        return;
                    }
                    if (far)
                    {
                        me->step(
                            "pvremove",
                            [me, dev](Next next)
                            {
                                me->ctx_.lvm.change("", lvm::pvremoveArgs(dev), {dev}, next);
                            },
                            again);
                        return;
                    }
                    me->step(
                        "vgextend",
                        [me, dev](Next next)
                        {
                            me->ctx_.lvm.change(me->vg_, lvm::vgextendArgs(me->vg_, dev), {dev}, next);
                        },
                        again);
                });
        });
}

void RecreatePvOperation::waitForMove()
{
    ++ctx_.longWaits;
    lastProgress_ = ctx_.scheduler.now();
    auto me = self<RecreatePvOperation>();
    std::function<void()> tick;
    auto poll = std::make_shared<std::function<void()>>();
    *poll = [me, poll]
    {
        if (me->ctx_.stopping)
        {
            me->ctx_.endLongWait();
            me->poll_.reset();
            *poll = nullptr; // the closure held itself (and so the operation): the wait is over
            // Not closed: the journal keeps it and the next start finishes the PV once LVM has moved it.
            me->ctx_.publisher.progress("", 0);
            std::string dev = me->device();
            me->done_(operationError(ErrorKind::Busy, "lvkeeperd is stopping; the pvmove of " + dev +
                                                          " goes on in LVM's background and the next start of "
                                                          "lvkeeperd finishes the repair"),
                      "");
            me->done_ = [](Error, const std::string&) {};
            return;
        }
        me->ctx_.lvm.moves(
            [me, poll](std::vector<lvm::Move> moves, Error error)
            {
                std::string dev = me->device();
                auto it = std::find_if(moves.begin(), moves.end(),
                                       [&](const lvm::Move& m)
                                       {
                                           return m.sourcePv == dev;
                                       });
                if (!error && it == moves.end())
                {
                    me->ctx_.endLongWait();
                    me->poll_.reset();
                    *poll = nullptr; // the closure held itself (and so the operation): the wait is over
                    me->ctx_.publisher.progress("", 0);
                    spdlog::info("event=pvmove-done device={}", dev);
                    me->inLane(
                        [me](JobQueue::Finish finish)
                        {
                            me->converge(finish);
                        });
                    return;
                }
                if (!error)
                {
                    auto now = me->ctx_.scheduler.now();
                    if (it->percent != me->lastPercent_)
                    {
                        me->lastPercent_ = it->percent;
                        me->lastProgress_ = now;
                        me->ctx_.publisher.progress("pvmove " + dev, it->percent / 100.0);
                    }
                    else if (now - me->lastProgress_ >= stalled)
                    {
                        // Nobody polls it (its poller died with a crash or a power cut): LVM restarts it.
                        spdlog::warn("event=pvmove-resume device={} percent={:.1f}", dev, it->percent);
                        me->lastProgress_ = now;
                        me->ctx_.lvm.run(lvm::pvmoveResumeArgs(), [](const CommandResult&) {});
                    }
                }
                me->poll_ = me->ctx_.scheduler.after(pollInterval, *poll);
            },
            true);
    };
    poll_ = ctx_.scheduler.after(std::chrono::milliseconds(0), *poll);
}

void RecreatePvOperation::end(std::exception_ptr error, const std::string& fixed, JobQueue::Finish finish)
{
    auto me = self<RecreatePvOperation>();
    auto answer = [me, error, fixed, finish]
    {
        me->ctx_.publisher.progress("", 0);
        me->done_(error, fixed);
        if (finish)
        {
            finish();
        }
    };
    if (error)
    {
        // What it did is kept in the journal: Diagnose names it and Repair (or the next start) goes on from there.
        spdlog::error("event=recreate-pv-stopped device={} step={} error=\"{}\"", device_, intent_.step,
                      describeError(error));
        answer();
        return;
    }
    closeIntent(answer);
}

} // namespace lvkeeper

#include "lvkeeper/decision.hpp"
#include "lvkeeper/errors.hpp"
#include "lvkeeper/fs_commands.hpp"
#include "lvkeeper/operations.hpp"
#include "lvkeeper/size.hpp"

#include <spdlog/spdlog.h>

namespace lvkeeper
{

GrowOperation::GrowOperation(OperationContext& ctx, std::string mountPoint, GrowRequest request) :
    Operation(ctx, "grow"), mountPoint_(std::move(mountPoint)), request_(std::move(request))
{
}

VolumeState* GrowOperation::volume()
{
    return ctx_.volumes.find(mountPoint_);
}

void GrowOperation::run(Done done)
{
    done_ = std::move(done);
    start_ = ctx_.scheduler.now();
    if (auto* v = volume())
    {
        ctx_.volumes.setActivity(*v, Activity::Growing);
    }
    auto me = self<GrowOperation>();
    // The real sizes, now: a queued grow must not act on what was true when it was queued.
    ctx_.lvm.lvs(
        [me](const std::vector<lvm::Lv>& lvs, Error error)
        {
            if (error)
            {
                me->fail(error);
                return;
            }
            me->ctx_.volumes.applyLvs(lvs);
            me->checked();
        });
}

void GrowOperation::checked()
{
    auto* v = volume();
    if (!v)
    {
        fail(operationError(ErrorKind::NotFound,
                            mountPoint_ + " is no longer watched (the configuration was reloaded)"));
        return;
    }
    if (!v->mounted || v->vg.empty())
    {
        fail(operationError(ErrorKind::NotFound, mountPoint_ + " is not mounted from an LVM logical volume"));
        return;
    }
    result_.oldSize = result_.newSize = v->lvSize;
    if (request_.automatic && v->readOnly)
    {
        result_.skipped = true;
        finish();
        return;
    }
    ctx_.volumes.refreshUsage(*v);
    if (request_.automatic &&
        !policy::needsGrow(v->config, v->usage, v->fillRate, plannedGrow(*v, ctx_.headroom), ctx_.headroom))
    {
        // Someone freed space or another grow already happened: a stale reading never grows twice.
        result_.skipped = true;
        finish();
        return;
    }
    auto me = self<GrowOperation>();
    auto plan = [me]
    {
        auto* vol = me->volume();
        if (!vol)
        {
            me->fail(operationError(ErrorKind::NotFound, me->mountPoint_ + " is no longer watched"));
            return;
        }
        policy::GrowPlan grow;
        std::uint64_t target = 0;
        if (me->request_.automatic)
        {
            grow = autoGrowPlan(*vol, me->ctx_.headroom);
            target = grow.target;
        }
        else
        {
            target = policy::requestedTarget(me->request_.size, vol->lvSize, vol->config.growStep, vol->extentSize);
            grow = policy::planGrow(target, vol->lvSize, vol->config.maxSize, vol->vgFree, vol->extentSize, false);
        }
        me->result_.atMaxSize = grow.cappedByMaxSize && !grow.growsAnything(vol->lvSize);
        if (me->request_.automatic && !grow.growsAnything(vol->lvSize))
        {
            me->result_.nothingToGrow = true;
            me->finish();
            return;
        }
        if (!me->request_.automatic && (grow.cappedByVg || !grow.growsAnything(vol->lvSize)))
        {
            if (grow.cappedByMaxSize && target > vol->lvSize)
            {
                me->fail(operationError(ErrorKind::NoSpace, vol->config.mountPoint + " is at its MaxSize=" +
                                                                formatSize(*vol->config.maxSize) +
                                                                "; raise MaxSize= to grow it"));
                return;
            }
            if (grow.cappedByVg && target > vol->lvSize)
            {
                me->fail(operationError(ErrorKind::NoSpace,
                                        "volume group " + vol->vg + " has " + formatSize(vol->vgFree) + " free but " +
                                            vol->config.mountPoint + " needs " + formatSize(target - vol->lvSize) +
                                            " more; add a disk: busctl call org.lvkeeper.Keeper1 /org/lvkeeper/Keeper1 "
                                            "org.lvkeeper.Keeper1.Manager AddDisk ss " +
                                            vol->vg + " \"\""));
                return;
            }
            if (me->request_.reason != "heal")
            {
                spdlog::info("event=grow-noop volume={} lv_size={} target={}", vol->config.mountPoint,
                             formatSize(vol->lvSize), formatSize(target));
            }
            me->finish();
            return;
        }
        me->extend(grow.target);
    };
    std::uint64_t fsBefore = ctx_.volumes.filesystemSize(*v);
    if (!policy::filesystemBehind(fsBefore, v->lvSize, v->extentSize))
    {
        plan();
        return;
    }
    // An earlier grow extended the LV but not its filesystem: that first, it is space the writers can have now.
    spdlog::warn("event=fs-behind volume={} fs_size={} lv_size={}", mountPoint_, formatSize(fsBefore),
                 formatSize(v->lvSize));
    growFilesystem(
        [me, fsBefore, plan](Error error)
        {
            if (error)
            {
                me->fail(error);
                return;
            }
            auto* vol = me->volume();
            std::uint64_t fsAfter = vol ? me->ctx_.volumes.filesystemSize(*vol) : fsBefore;
            spdlog::info("event=healed volume={} from={} to={} from_bytes={} to_bytes={}", me->mountPoint_,
                         formatSize(fsBefore), formatSize(fsAfter), fsBefore, fsAfter);
            me->result_.healed = std::make_pair(fsBefore, fsAfter);
            plan();
        });
}

void GrowOperation::extend(std::uint64_t target)
{
    auto* v = volume();
    std::string vg = v->vg;
    std::string lv = v->lv;
    std::uint64_t from = v->lvSize;
    spdlog::info("event=grow volume={} lv={} from={} to={} reason={} from_bytes={} to_bytes={}", mountPoint_,
                 v->lvName(), formatSize(from), formatSize(target), request_.reason, from, target);
    // Not required: with a journal that cannot be written the grow still goes ahead (an interrupted grow is
    // healed at start from the sizes alone); what keeps /data alive comes first.
    journal({{"volume", mountPoint_},
             {"lv", vg + "/" + lv},
             {"from", std::to_string(from)},
             {"target", std::to_string(target)}},
            false);
    auto me = self<GrowOperation>();
    step(
        "lvextend",
        [me, vg, lv, target](Next next)
        {
            me->ctx_.lvm.change(vg, lvm::lvextendArgs(vg, lv, target), {}, next);
        },
        [me, target](Error error)
        {
            if (error)
            {
                me->fail(operationError(ErrorKind::CommandFailed, "lvextend failed: " + describeError(error)));
                return;
            }
            if (auto* vol = me->volume())
            {
                vol->vgFree -= std::min(vol->vgFree, target - std::min(target, vol->lvSize));
                vol->lvSize = target;
                me->ctx_.publisher.changed(vol->config.mountPoint);
            }
            me->result_.newSize = target;
            me->step(
                "fs-grow",
                [me](Next next)
                {
                    me->growFilesystem(next);
                },
                [me](Error e)
                {
                    if (e)
                    {
                        me->fail(e);
                        return;
                    }
                    me->result_.grown = true;
                    me->finish();
                });
        });
}

void GrowOperation::growFilesystem(std::function<void(std::exception_ptr)> next)
{
    auto* v = volume();
    if (!v)
    {
        next(operationError(ErrorKind::NotFound, mountPoint_ + " is no longer watched"));
        return;
    }
    auto argv = growFilesystemArgv(v->mount);
    if (argv.empty())
    {
        next(operationError(ErrorKind::InvalidArgument,
                            "cannot grow a " + v->mount.fsType + " filesystem online; lvkeeper grows ext4 and xfs"));
        return;
    }
    auto me = self<GrowOperation>();
    ctx_.runner.run(argv, CommandOptions(ctx_.commandTimeout),
                    [me, next = std::move(next)](const CommandResult& r)
                    {
                        auto* vol = me->volume();
                        if (!r.ok())
                        {
                            if (vol)
                            {
                                vol->fsGrowPending = true;
                                me->ctx_.publisher.changed(vol->config.mountPoint);
                            }
                            next(operationError(ErrorKind::CommandFailed,
                                                "the LV of " + me->mountPoint_ + " grew but its filesystem did not: " +
                                                    r.describe() + "; lvkeeper retries on the next grow and at start"));
                            return;
                        }
                        spdlog::info("event=fs-grown volume={} duration_ms={}", me->mountPoint_, r.duration.count());
                        if (vol)
                        {
                            vol->fsGrowPending = false;
                            me->ctx_.volumes.refreshUsage(*vol);
                            me->ctx_.publisher.changed(vol->config.mountPoint);
                        }
                        next(nullptr);
                    });
}

void GrowOperation::fail(std::exception_ptr error)
{
    result_.error = error;
    finish();
}

void GrowOperation::finish()
{
    result_.duration = std::chrono::duration_cast<std::chrono::milliseconds>(ctx_.scheduler.now() - start_);
    if (auto* v = volume())
    {
        ctx_.volumes.setActivity(*v, v->fsGrowPending ? Activity::FsGrowPending : Activity::Idle);
    }
    auto me = self<GrowOperation>();
    closeIntent(
        [me]
        {
            me->done_(me->result_);
        });
}

} // namespace lvkeeper

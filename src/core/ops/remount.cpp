#include "lvkeeper/errors.hpp"
#include "lvkeeper/fs_commands.hpp"
#include "lvkeeper/operations.hpp"

#include <spdlog/spdlog.h>

#include <memory>

namespace lvkeeper
{

RemountOperation::RemountOperation(OperationContext& ctx, std::string mountPoint) :
    Operation(ctx, "remount"), mountPoint_(std::move(mountPoint))
{
}

void RemountOperation::run(Done done)
{
    auto* v = ctx_.volumes.find(mountPoint_);
    if (!v)
    {
        done(operationError(ErrorKind::NotFound, mountPoint_ + " is no longer watched"), false);
        return;
    }
    ctx_.volumes.refreshMount(*v);
    if (!v->mounted)
    {
        done(operationError(ErrorKind::NotFound, mountPoint_ + " is not mounted; mount it first"), false);
        return;
    }
    if (!v->readOnly)
    {
        spdlog::info("event=remount-noop volume={} reason=\"already read-write\"", mountPoint_);
        done(nullptr, false);
        return;
    }
    std::uint64_t errors = ctx_.fs.errorCount(v->mount);
    if (errors > 0 || v->fsErrors)
    {
        v->fsErrors = true;
        ctx_.publisher.changed(mountPoint_);
        done(operationError(ErrorKind::FilesystemErrors,
                            mountPoint_ + " has recorded filesystem errors (" + std::to_string(errors) +
                                "); a remount would risk the data. " + fsckAdvice(mountPoint_, v->mount)),
             false);
        return;
    }
    ctx_.volumes.setActivity(*v, Activity::Remounting);
    MountInfo mount = v->mount;
    auto me = self<RemountOperation>();
    step(
        "remount",
        [me, mount](Next next)
        {
            me->offload(
                "remount " + mount.mountPoint,
                [me, mount]
                {
                    me->ctx_.fs.remountReadWrite(mount);
                },
                next);
        },
        [me, done](Error error)
        {
            auto* vol = me->ctx_.volumes.find(me->mountPoint_);
            if (!vol)
            {
                done(operationError(ErrorKind::NotFound, me->mountPoint_ + " is no longer watched"), false);
                return;
            }
            me->ctx_.volumes.setActivity(*vol, vol->fsGrowPending ? Activity::FsGrowPending : Activity::Idle);
            if (error)
            {
                done(operationError(ErrorKind::CommandFailed,
                                    "cannot remount " + me->mountPoint_ + " read-write: " + describeError(error)),
                     false);
                return;
            }
            me->ctx_.volumes.refreshMount(*vol);
            me->ctx_.volumes.refreshUsage(*vol);
            spdlog::info("event=remounted volume={} readonly={}", me->mountPoint_, vol->readOnly ? "yes" : "no");
            if (vol->readOnly)
            {
                done(operationError(ErrorKind::CommandFailed,
                                    me->mountPoint_ + " is still read-only after the remount; see the kernel log"),
                     false);
                return;
            }
            done(nullptr, true);
        });
}

} // namespace lvkeeper

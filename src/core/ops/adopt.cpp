#include "lvkeeper/errors.hpp"
#include "lvkeeper/operations.hpp"

#include <spdlog/spdlog.h>

#include <memory>

namespace lvkeeper
{

AdoptOperation::AdoptOperation(OperationContext& ctx, std::string vg, LoopDevice device) :
    Operation(ctx, "adopt"), vg_(std::move(vg)), device_(std::move(device))
{
}

void AdoptOperation::run(Done done)
{
    done_ = std::move(done);
    auto me = self<AdoptOperation>();
    auto result = std::make_shared<DiskResult>();
    result->vg = vg_;
    result->image = device_.backingFile;
    result->device = device_.device;
    auto end = [me, result](Error error)
    {
        result->error = error;
        if (error)
        {
            spdlog::warn("event=adopt-skipped device={} image={} reason=\"{}\"", me->device_.device,
                         me->device_.backingFile, describeError(error));
        }
        me->done_(*result);
    };
    auto signature = std::make_shared<std::optional<std::string>>();
    auto refusal = std::make_shared<std::optional<std::string>>();
    auto size = std::make_shared<std::uint64_t>(0);
    offload(
        "probe " + device_.device,
        [me, signature, refusal, size]
        {
            // The same trust lvkeeper-attach asks of a recorded image: a root-owned regular file directly
            // in a directory only root may change. Anything else any user could have put there.
            *refusal = me->ctx_.disks.imageRefusal(me->device_.backingFile, me->ctx_.config.disks.imageDirectory);
            if (*refusal)
            {
                return;
            }
            *signature = me->ctx_.disks.signature(me->device_.device);
            if (auto alloc = me->ctx_.disks.fileAllocation(me->device_.backingFile))
            {
                *size = alloc->second;
            }
        },
        [me, signature, refusal, size, result, end](Error error)
        {
            if (error)
            {
                end(error);
                return;
            }
            if (*refusal)
            {
                spdlog::warn("event=adopt-refused device={} image={} reason=\"{}\"", me->device_.device,
                             me->device_.backingFile, **refusal);
                me->done_(*result);
                return;
            }
            if (*signature)
            {
                end(operationError(ErrorKind::InvalidArgument, me->device_.device + " carries a " + **signature +
                                                                   " signature; lvkeeper never writes over one"));
                return;
            }
            result->size = *size;
            const std::string device = me->device_.device;
            me->step(
                "record",
                [me](Next next)
                {
                    me->ctx_.images.record(me->device_.backingFile, next);
                },
                [me, device, result, end](Error e)
                {
                    if (e)
                    {
                        end(e);
                        return;
                    }
                    me->step(
                        "pvcreate",
                        [me, device](Next next)
                        {
                            me->ctx_.lvm.change("", lvm::pvcreateArgs(device), {device}, next);
                        },
                        [me, device, result, end](Error e2)
                        {
                            if (e2)
                            {
                                me->ctx_.images.forget(me->device_.backingFile,
                                                       [end, e2](Error)
                                                       {
                                                           end(e2);
                                                       });
                                return;
                            }
                            me->step(
                                "vgextend",
                                [me, device](Next next)
                                {
                                    me->ctx_.lvm.change(me->vg_, lvm::vgextendArgs(me->vg_, device), {device}, next);
                                },
                                [me, device, result, end](Error e3)
                                {
                                    if (e3)
                                    {
                                        me->ctx_.lvm.change("", lvm::pvremoveArgs(device), {device},
                                                            [me, end, e3](Error)
                                                            {
                                                                me->ctx_.images.forget(me->device_.backingFile,
                                                                                       [end, e3](Error)
                                                                                       {
                                                                                           end(e3);
                                                                                       });
                                                            });
                                        return;
                                    }
                                    result->added = true;
                                    end(nullptr);
                                });
                        });
                });
        });
}

} // namespace lvkeeper

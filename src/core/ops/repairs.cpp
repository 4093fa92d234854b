#include "lvkeeper/errors.hpp"
#include "lvkeeper/operations.hpp"

#include <spdlog/spdlog.h>

#include <memory>

namespace lvkeeper
{

PvCommandOperation::PvCommandOperation(OperationContext& ctx, std::string vg, std::vector<std::string> args,
                                       std::string fixed) :
    Operation(ctx, args.empty() ? "lvm" : args.front()),
    vg_(std::move(vg)), args_(std::move(args)), fixed_(std::move(fixed))
{
}

void PvCommandOperation::run(RepairDone done)
{
    auto me = self<PvCommandOperation>();
    step(
        kind(),
        [me](Next next)
        {
            std::vector<std::string> alsoFlush{me->args_.back()};
            me->ctx_.lvm.change(me->vg_, me->args_, alsoFlush, next);
        },
        [me, done](Error error)
        {
            done(error, me->fixed_);
        });
}

ImageOperation::ImageOperation(OperationContext& ctx, ImageRepair what, std::string image) :
    Operation(ctx, what == ImageRepair::Allocate ? "allocate"
                   : what == ImageRepair::Attach ? "attach"
                                                 : "forget"),
    what_(what), image_(std::move(image))
{
}

void ImageOperation::run(RepairDone done)
{
    auto me = self<ImageOperation>();
    if (what_ == ImageRepair::Forget)
    {
        ctx_.images.forget(image_,
                           [me, done](Error error)
                           {
                               done(error, me->image_ + " is no longer recorded for boot");
                           });
        return;
    }
    auto device = std::make_shared<std::string>();
    offload(
        kind() + " " + image_,
        [me, device]
        {
            if (me->what_ == ImageRepair::Allocate)
            {
                me->ctx_.disks.allocateImage(me->image_);
            }
            else
            {
                *device = me->ctx_.disks.attachLoop(me->image_);
            }
        },
        [me, device, done](Error error)
        {
            done(error,
                 me->what_ == ImageRepair::Allocate ? me->image_ + " is fully allocated" : "attached as " + *device);
        });
}

} // namespace lvkeeper

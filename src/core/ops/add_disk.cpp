#include "lvkeeper/errors.hpp"
#include "lvkeeper/operations.hpp"
#include "lvkeeper/size.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <system_error>

namespace lvkeeper
{

namespace
{

/// The loop device over image, "" when it is not attached.
std::string loopOf(Disks& disks, const std::string& image)
{
    for (const auto& loop : disks.loopDevices())
    {
        if (loop.backingFile == image)
        {
            return loop.device;
        }
    }
    return "";
}

} // namespace

AddDiskOperation::AddDiskOperation(OperationContext& ctx, std::string vg, std::uint64_t size) :
    Operation(ctx, "add-disk"), vg_(std::move(vg)), size_(size)
{
    result_.vg = vg_;
    result_.size = size_;
}

void AddDiskOperation::run(Done done)
{
    done_ = std::move(done);
    auto me = self<AddDiskOperation>();
    ctx_.lvm.vgs(
        [me](std::vector<lvm::Vg> vgs, Error error)
        {
            if (error)
            {
                me->undo(error);
                return;
            }
            auto it = std::find_if(vgs.begin(), vgs.end(),
                                   [&](const lvm::Vg& g)
                                   {
                                       return g.name == me->vg_;
                                   });
            if (it == vgs.end())
            {
                me->undo(operationError(ErrorKind::NotFound, "volume group " + me->vg_ + " does not exist"));
                return;
            }
            me->checked(it->pvCount);
        });
}

void AddDiskOperation::checked(unsigned pvCount)
{
    const auto& disks = ctx_.config.disks;
    if (pvCount >= disks.maxDisks)
    {
        undo(operationError(ErrorKind::NoSpace, "volume group " + vg_ + " already has " + std::to_string(pvCount) +
                                                    " disks, MaxDisks=" + std::to_string(disks.maxDisks) +
                                                    "; raise MaxDisks= in [Disks] to add more"));
        return;
    }
    try
    {
        ctx_.images.checkRoom(disks, size_);
        result_.image = ctx_.images.nextPath(disks.imageDirectory);
    }
    catch (...)
    {
        undo(std::current_exception());
        return;
    }
    // From here on every step is recorded first: a crash leaves an intent that names the image.
    journal({{"vg", vg_}, {"image", result_.image}, {"size", std::to_string(size_)}}, false);
    allocate();
}

void AddDiskOperation::allocate()
{
    auto me = self<AddDiskOperation>();
    step(
        "allocate",
        [me](Next next)
        {
            std::string image = me->result_.image;
            std::uint64_t size = me->size_;
            me->offload(
                "fallocate " + image,
                [me, image, size]
                {
                    me->ctx_.disks.createImage(image, size);
                },
                next);
        },
        [me](Error error)
        {
            if (error)
            {
                try
                {
                    std::rethrow_exception(error);
                }
                catch (const std::system_error& e)
                {
                    auto kind = e.code() == std::errc::no_space_on_device ? ErrorKind::NoHostSpace : ErrorKind::Failed;
                    me->undo(operationError(kind, std::string("cannot create the image: ") + e.what()));
                }
                catch (...)
                {
                    me->undo(std::current_exception());
                }
                return;
            }
            me->stage_ = Stage::Allocated;
            me->attach();
        });
}

void AddDiskOperation::attach()
{
    auto me = self<AddDiskOperation>();
    auto device = std::make_shared<std::string>();
    step(
        "attach",
        [me, device](Next next)
        {
            std::string image = me->result_.image;
            me->offload(
                "attach " + image,
                [me, image, device]
                {
                    *device = me->ctx_.disks.attachLoop(image);
                },
                next);
        },
        [me, device](Error error)
        {
            if (error)
            {
                me->undo(operationError(ErrorKind::Failed, "cannot attach " + me->result_.image +
                                                               " to a loop device: " + describeError(error)));
                return;
            }
            me->result_.device = *device;
            me->note("device", *device);
            me->stage_ = Stage::Attached;
            spdlog::info("event=image-attached image={} device={} size={}", me->result_.image, *device,
                         formatSize(me->size_));
            me->record();
        });
}

void AddDiskOperation::record()
{
    auto me = self<AddDiskOperation>();
    step(
        "record",
        [me](Next next)
        {
            me->ctx_.images.record(me->result_.image, next);
        },
        [me](Error error)
        {
            if (error)
            {
                // Without the record the next boot would not attach it: a PV missing from the VG.
                me->undo(operationError(ErrorKind::Failed, "cannot record " + me->result_.image + " in " +
                                                               me->ctx_.images.location() + ": " +
                                                               describeError(error)));
                return;
            }
            me->stage_ = Stage::Recorded;
            me->pvcreate();
        });
}

void AddDiskOperation::pvcreate()
{
    auto me = self<AddDiskOperation>();
    step(
        "pvcreate",
        [me](Next next)
        {
            me->pvcreateBlank(me->result_.device, next);
        },
        [me](Error error)
        {
            if (error)
            {
                me->undo(error);
                return;
            }
            me->stage_ = Stage::PvCreated;
            me->vgextend();
        });
}

void AddDiskOperation::vgextend()
{
    auto me = self<AddDiskOperation>();
    step(
        "vgextend",
        [me](Next next)
        {
            me->ctx_.lvm.change(me->vg_, lvm::vgextendArgs(me->vg_, me->result_.device), {me->result_.device}, next);
        },
        [me](Error error)
        {
            if (error)
            {
                me->undo(operationError(ErrorKind::CommandFailed,
                                        "vgextend " + me->vg_ + " failed: " + describeError(error)));
                return;
            }
            me->result_.added = true;
            me->finish();
        });
}

void AddDiskOperation::undo(std::exception_ptr error)
{
    result_.error = error;
    // In reverse, each step best effort: nothing half-done is left behind. A step that fails is logged and the
    // rest still run.
    auto me = self<AddDiskOperation>();
    const std::string image = result_.image;
    const std::string device = result_.device;
    struct Undo
    {
        bool applies;
        std::string what;
        std::function<void(Next)> run;
    };
    auto steps = std::make_shared<std::vector<Undo>>(std::vector<Undo>{
        {stage_ >= Stage::PvCreated, "pvremove " + device,
         [me, device](Next next)
         {
             me->ctx_.lvm.change("", lvm::pvremoveArgs(device), {device}, next);
         }},
        // A resumed run does not know whether the record was written: forgetting is harmless either way.
        {stage_ >= Stage::Recorded || resumed_, "forget " + image,
         [me, image](Next next)
         {
             me->ctx_.images.forget(image, next);
         }},
        {stage_ >= Stage::Attached && !device.empty(), "detach " + device,
         [me, device](Next next)
         {
             me->offload(
                 "detach " + device,
                 [me, device]
                 {
                     me->ctx_.disks.detachLoop(device);
                 },
                 next);
         }},
        {stage_ >= Stage::Allocated, "remove " + image,
         [me, image](Next next)
         {
             me->offload(
                 "remove " + image,
                 [me, image]
                 {
                     me->ctx_.disks.removeImage(image);
                 },
                 next);
         }},
    });
    auto index = std::make_shared<std::size_t>(0);
    auto runNext = std::make_shared<std::function<void()>>();
    *runNext = [me, steps, index, runNext]
    {
        while (*index < steps->size() && !(*steps)[*index].applies)
        {
            ++*index;
        }
        if (*index == steps->size())
        {
            auto op = me;       // NOLINT(performance-unnecessary-copy-initialization): me dies with this closure
            *runNext = nullptr; // breaks the cycle; this closure is gone now, only locals are used
            op->finish();
            return;
        }
        const Undo& step = (*steps)[(*index)++];
        std::string what = step.what;
        step.run(
            [runNext, what](Error e)
            {
                if (e)
                {
                    spdlog::error("event=undo-failed what=\"{}\" error=\"{}\"", what, describeError(e));
                }
                (*runNext)();
            });
    };
    (*runNext)();
}

void AddDiskOperation::finish()
{
    if (result_.error)
    {
        spdlog::error("event=add-disk-failed vg={} error=\"{}\"", vg_, describeError(result_.error));
    }
    auto me = self<AddDiskOperation>();
    closeIntent(
        [me]
        {
            me->done_(me->result_);
        });
}

void AddDiskOperation::resume(const Intent& intent, Done done)
{
    adopt(intent);
    resumed_ = true;
    done_ = std::move(done);
    result_.image = intent.field("image");
    auto me = self<AddDiskOperation>();
    auto undoAll = [me](const std::string& why)
    {
        spdlog::warn("event=replay-undo op=add-disk image={} step={} reason=\"{}\"", me->result_.image,
                     me->intent_.step, why);
        me->stage_ = me->result_.device.empty() ? Stage::Allocated : Stage::Attached;
        me->undo(nullptr); // settled: as if it never started
    };
    if (result_.image.empty())
    {
        finish();
        return;
    }
    auto exists = std::make_shared<bool>(false);
    auto signature = std::make_shared<std::optional<std::string>>();
    offload(
        "look at " + result_.image,
        [me, exists, signature]
        {
            const std::string& image = me->result_.image;
            me->result_.device = loopOf(me->ctx_.disks, image);
            *exists = me->ctx_.disks.fileAllocation(image).has_value();
            if (*exists)
            {
                *signature = me->ctx_.disks.signature(me->result_.device.empty() ? image : me->result_.device);
            }
        },
        [me, exists, signature, undoAll](Error error)
        {
            if (error)
            {
                me->result_.error = error;
                me->done_(me->result_); // the intent stays: Diagnose reports it
                return;
            }
            if (!*exists)
            {
                me->ctx_.images.forget(me->result_.image,
                                       [me](Error)
                                       {
                                           me->finish();
                                       });
                return;
            }
            if (*signature != std::optional<std::string>("LVM2_member"))
            {
                undoAll(signature->has_value() ? "carries a " + **signature + " signature, not ours"
                                               : "never became a PV");
                return;
            }
            // It is a PV: finish what was asked for. Attached and recorded first, so the VG is complete.
            auto afterAttach = [me]
            {
                me->ctx_.images.record(
                    me->result_.image,
                    [me](Error e)
                    {
                        if (e)
                        {
                            me->result_.error = e;
                            me->done_(me->result_);
                            return;
                        }
                        me->ctx_.lvm.pvs(
                            [me](std::vector<lvm::Pv> pvs, Error e2)
                            {
                                if (e2)
                                {
                                    me->result_.error = e2;
                                    me->done_(me->result_);
                                    return;
                                }
                                auto it = std::find_if(pvs.begin(), pvs.end(),
                                                       [&](const lvm::Pv& pv)
                                                       {
                                                           return pv.name == me->result_.device;
                                                       });
                                me->vg_ = me->intent_.field("vg");
                                me->result_.vg = me->vg_;
                                if (it != pvs.end() && it->vgName == me->vg_)
                                {
                                    spdlog::info("event=replay-finished op=add-disk image={} device={}",
                                                 me->result_.image, me->result_.device);
                                    me->result_.size = it->size;
                                    me->result_.added = true;
                                    me->finish();
                                    return;
                                }
                                if (it != pvs.end() && !it->vgName.empty())
                                {
                                    me->result_.error = operationError(
                                        ErrorKind::Failed, me->result_.device + " is a PV of " + it->vgName +
                                                               ", not of " + me->vg_ + "; lvkeeper leaves it alone");
                                    me->done_(me->result_);
                                    return;
                                }
                                spdlog::info("event=replay-continue op=add-disk image={} device={} step=vgextend",
                                             me->result_.image, me->result_.device);
                                me->stage_ = Stage::PvCreated;
                                me->result_.size = it != pvs.end() ? it->size : 0;
                                me->vgextend();
                            });
                    });
            };
            if (!me->result_.device.empty())
            {
                afterAttach();
                return;
            }
            auto device = std::make_shared<std::string>();
            me->offload(
                "attach " + me->result_.image,
                [me, device]
                {
                    *device = me->ctx_.disks.attachLoop(me->result_.image);
                },
                [me, device, afterAttach](Error e)
                {
                    if (e)
                    {
                        me->result_.error = e;
                        me->done_(me->result_);
                        return;
                    }
                    me->result_.device = *device;
                    afterAttach();
                });
        });
}

} // namespace lvkeeper

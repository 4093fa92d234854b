#pragma once

#include "lvkeeper/operation.hpp"
#include "lvkeeper/size.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace lvkeeper
{

// ---- grow -----------------------------------------------------------------------------------------------------

/// What a grow is asked for.
struct GrowRequest
{
    SizeRequest size;
    std::string reason;     ///< "request", "threshold", "heal"
    bool automatic = false; ///< re-checked against fresh sizes; grows into what the VG has
};

/// How a grow ended.
struct GrowResult
{
    std::exception_ptr error;
    bool grown = false;
    std::uint64_t oldSize = 0;
    std::uint64_t newSize = 0;                                     ///< the LV size now (also when nothing was done)
    std::optional<std::pair<std::uint64_t, std::uint64_t>> healed; ///< the filesystem caught up with its LV: from, to
    bool skipped = false;       ///< automatic, and no longer needed (space was freed, another grow came first)
    bool nothingToGrow = false; ///< automatic, and the VG or MaxSize leaves nothing to grow into
    bool atMaxSize = false;     ///< the LV is at MaxSize
    std::chrono::milliseconds duration{0};
};

/// Grows a volume: re-reads the real sizes, heals a filesystem that lags its LV, lvextend (flushed), then the
/// filesystem grow. Steps: lvextend, fs-grow.
class GrowOperation : public Operation
{
  public:
    using Done = std::function<void(const GrowResult& result)>;

    GrowOperation(OperationContext& ctx, std::string mountPoint, GrowRequest request);
    void run(Done done);

  private:
    VolumeState* volume();
    void checked();
    void extend(std::uint64_t target);
    void growFilesystem(std::function<void(std::exception_ptr)> next);
    void fail(std::exception_ptr error);
    void finish();

    std::string mountPoint_;
    GrowRequest request_;
    Done done_;
    GrowResult result_;
    std::chrono::steady_clock::time_point start_{};
};

// ---- disks ----------------------------------------------------------------------------------------------------

/// How adding (or adopting) a disk ended.
struct DiskResult
{
    std::exception_ptr error;
    std::string vg;
    std::string image;
    std::string device;
    std::uint64_t size = 0;
    bool added = false;
};

/// Adds an image-backed disk to a VG. Steps: allocate (fallocate + fsync), attach (loop device), record (in the
/// boot-time list, before it becomes a PV so a reboot always brings it back), pvcreate, vgextend (flushed).
/// A failure undoes what was done, in reverse; an interrupted run is finished (it became a PV) or undone (it
/// did not) by resume().
class AddDiskOperation : public Operation
{
  public:
    using Done = std::function<void(const DiskResult& result)>;

    AddDiskOperation(OperationContext& ctx, std::string vg, std::uint64_t size);
    void run(Done done);
    /// Settles an add-disk intent found in the journal at start.
    void resume(const Intent& intent, Done done);

  private:
    void checked(unsigned pvCount);
    void allocate();
    void attach();
    void record();
    void pvcreate();
    void vgextend();
    void undo(std::exception_ptr error);
    void finish();

    std::string vg_;
    std::uint64_t size_;
    Done done_;
    DiskResult result_;
    enum class Stage
    {
        None,
        Allocated,
        Attached,
        Recorded,
        PvCreated,
    } stage_ = Stage::None;
    bool resumed_ = false;
};

/// Makes a hand-attached, signature-free loop device over an image a PV of a VG (AdoptLoopDevices=yes).
/// Steps: pvcreate, vgextend, record.
class AdoptOperation : public Operation
{
  public:
    using Done = std::function<void(const DiskResult& result)>;

    AdoptOperation(OperationContext& ctx, std::string vg, LoopDevice device);
    void run(Done done);

  private:
    std::string vg_;
    LoopDevice device_;
    Done done_;
};

// ---- mounts ---------------------------------------------------------------------------------------------------

/// Turns a read-only mount of a clean filesystem read-write in place (mount(2) MS_REMOUNT, off the loop).
class RemountOperation : public Operation
{
  public:
    /// remounted: it was read-only and is read-write now (false when it was read-write already).
    using Done = std::function<void(std::exception_ptr error, bool remounted)>;

    RemountOperation(OperationContext& ctx, std::string mountPoint);
    void run(Done done);

  private:
    std::string mountPoint_;
};

// ---- repairs --------------------------------------------------------------------------------------------------

/// How a repair ended: the text after "fixed: " or the error.
using RepairDone = std::function<void(std::exception_ptr error, const std::string& fixed)>;

/// One lvm command that fixes a PV (pvchange --allocatable y, pvresize), flushed.
class PvCommandOperation : public Operation
{
  public:
    PvCommandOperation(OperationContext& ctx, std::string vg, std::vector<std::string> args, std::string fixed);
    void run(RepairDone done);

  private:
    std::string vg_;
    std::vector<std::string> args_;
    std::string fixed_;
};

/// Recreates a PV whose first extent starts far in (the incident's 1 GiB): moves its extents to the other PVs
/// (pvmove in LVM's background mode, which outlives lvkeeperd; its progress on the bus), vgreduce, pvremove,
/// pvcreate, vgextend. Each step is chosen from what the PV looks like now, so a run interrupted anywhere (or an
/// admin's pvmove) is finished from where it stopped. The long move waits outside the VG's lane: grows go on.
class RecreatePvOperation : public Operation
{
  public:
    RecreatePvOperation(OperationContext& ctx, std::string vg, std::string device, std::string image);
    void run(RepairDone done);
    /// Takes over a recreate-pv intent found at start.
    void resume(const Intent& intent, RepairDone done);

  private:
    void inLane(std::function<void(JobQueue::Finish)> job);
    void converge(JobQueue::Finish finish);
    void waitForMove();
    void end(std::exception_ptr error, const std::string& fixed, JobQueue::Finish finish);
    std::string device() const;

    std::string vg_;
    std::string device_;
    std::string image_;
    RepairDone done_;
    std::uint64_t moved_ = 0;
    std::unique_ptr<Timer> poll_;
    double lastPercent_ = -1;
    std::chrono::steady_clock::time_point lastProgress_{};
};

/// What an image repair does.
enum class ImageRepair
{
    Allocate, ///< fill the holes of a sparse image (data untouched)
    Attach,   ///< attach a detached, recorded image to a free loop device
    Forget,   ///< drop a missing image nothing needs from the boot-time record
};

/// One image repair, off the loop.
class ImageOperation : public Operation
{
  public:
    ImageOperation(OperationContext& ctx, ImageRepair what, std::string image);
    void run(RepairDone done);

  private:
    ImageRepair what_;
    std::string image_;
};

} // namespace lvkeeper

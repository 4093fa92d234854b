#pragma once

#include "lvkeeper/command.hpp"
#include "lvkeeper/config.hpp"
#include "lvkeeper/errors.hpp"
#include "lvkeeper/executor.hpp"
#include "lvkeeper/fault_gate.hpp"
#include "lvkeeper/images.hpp"
#include "lvkeeper/job_queue.hpp"
#include "lvkeeper/journal.hpp"
#include "lvkeeper/lvm_client.hpp"
#include "lvkeeper/publisher.hpp"
#include "lvkeeper/scheduler.hpp"
#include "lvkeeper/system.hpp"
#include "lvkeeper/volumes.hpp"

#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace lvkeeper
{

/// What operations act through: the seams and the keeper's shared pieces. Owned by the Keeper.
struct OperationContext
{
    Volumes& volumes;
    LvmClient& lvm;
    Images& images;
    Journal& journal;
    Publisher& publisher;
    JobQueue& jobs;
    Executor& executor;
    Disks& disks;
    Filesystems& fs;
    StateStore& stateStore;
    CommandRunner& runner;
    Scheduler& scheduler;
    FaultGate& gate;
    const policy::Headroom& headroom;
    const Config& config; ///< the keeper's current configuration (a reload replaces it)
    std::chrono::milliseconds commandTimeout;
    bool stopping = false; ///< SIGTERM came: long waits give up their caller and leave the rest to the next start
    int longWaits = 0;     ///< operations waiting outside their lane (a background pvmove)
    /// Called when a long wait ends: a stop may have been waiting for it.
    std::function<void()> longWaitEnded = nullptr;

    /// A long wait ends (its operation answered or went back to its lane).
    void endLongWait()
    {
        --longWaits;
        if (longWaitEnded)
        {
            longWaitEnded();
        }
    }
};

/// One multi-step change of the system, as an explicit sequence of named steps. Before each step that changes
/// the system the operation passes the fault gate and, when it is journaled, records the step durably, so that a
/// crash at any point leaves an intent the next start can finish or undo. Operations refer to volumes by mount
/// point and look them up again after every step. They run in their VG's lane of the JobQueue.
class Operation : public std::enable_shared_from_this<Operation>
{
  public:
    using Error = std::exception_ptr;
    using Next = std::function<void(Error error)>;

    Operation(OperationContext& ctx, std::string kind);
    virtual ~Operation();

    Operation(const Operation&) = delete;
    Operation& operator=(const Operation&) = delete;

    /// "grow", "add-disk", "recreate-pv", ...
    const std::string& kind() const
    {
        return intent_.kind;
    }

  protected:
    /// Passes the gate, records the step when journaled, then runs body; next(error) with what body reported.
    /// A journal that cannot be written stops a journal-required operation before the step changes anything.
    void step(const std::string& name, std::function<void(Next)> body, Next next);
    /// From now on every step is recorded, with these fields; required: no step runs unrecorded.
    void journal(std::map<std::string, std::string> fields, bool required);
    /// Sets a field of the intent (written with the next step).
    void note(const std::string& key, const std::string& value);
    /// Closes the intent, durably when waited for: done() once it is gone from the journal (or could not be).
    void closeIntent(std::function<void()> done);
    /// Runs an offloaded call, then next.
    void offload(std::string what, Executor::Work work, Next next);
    /// Takes over the intent of an interrupted run (replay).
    void adopt(const Intent& intent);
    /// pvcreate of a device that carries no signature at all (probed off the loop first): lvkeeper never
    /// writes over one. Flushed.
    void pvcreateBlank(const std::string& device, Next next);

    template <typename Self>
    std::shared_ptr<Self> self()
    {
        return std::static_pointer_cast<Self>(shared_from_this());
    }

    OperationContext& ctx_;
    Intent intent_;
    bool journaled_ = false;
    bool required_ = false;
};

/// An Error with a kind, for operations.
Operation::Error operationError(ErrorKind kind, const std::string& message);

} // namespace lvkeeper

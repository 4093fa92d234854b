#pragma once

#include "lvkeeper/findings.hpp"
#include "lvkeeper/keeper.hpp"

#include <sys/types.h>

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lvkeeper
{

/// How one repair ended; on the bus the text of each result starts with its name.
enum class RepairOutcome
{
    Fixed,   ///< "fixed:" it is repaired
    Failed,  ///< "failed:" it was tried and did not work (or the id is unknown)
    Refused, ///< "refused:" Repair does not do it: it needs a person
    Ok,      ///< "ok:" nothing to do
};

/// "fixed", "failed", "refused", "ok".
std::string_view repairOutcomeName(RepairOutcome outcome);

/// One result of Repair: the id it answers and what happened.
struct RepairResult
{
    std::string id;
    RepairOutcome outcome = RepairOutcome::Failed;
    std::string text;

    /// "fixed: /data is read-write", as the bus says it.
    std::string describe() const;
};

/// Diagnose and Repair: finds the faults of the incident (and their like) and fixes the safe ones, each repair
/// an operation in the VG's lane, re-diagnosing after each. Uses the keeper's pieces: its lvm client, images,
/// journal. Never kills a process, never writes over a signature, never touches a device that is not a PV of a
/// watched VG.
class Doctor
{
  public:
    using Error = std::exception_ptr;
    using DiagnoseReply = std::function<void(const std::vector<Finding>& findings, Error error)>;
    using RepairReply = std::function<void(const std::vector<RepairResult>& results)>;

    explicit Doctor(Keeper& keeper);
    ~Doctor();

    Doctor(const Doctor&) = delete;
    Doctor& operator=(const Doctor&) = delete;

    /// Looks at everything and replies with the findings, most urgent first. Calls at the same time share one
    /// look, and a look a moment old is reused; its lvm scans run at normal priority. viewer is the caller's uid:
    /// only root learns other users' processes and paths.
    void diagnose(uid_t viewer, DiagnoseReply reply);

    /// Applies the named fixes (empty: every safe one) in a safe order; exactly one result per id given, in the
    /// order given.
    void repair(std::vector<std::string> ids, RepairReply reply);

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

} // namespace lvkeeper

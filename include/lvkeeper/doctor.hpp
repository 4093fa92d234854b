#pragma once

#include "lvkeeper/command.hpp"
#include "lvkeeper/keeper.hpp"
#include "lvkeeper/system.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lvkeeper
{

/// One thing wrong, as Diagnose reports it.
struct Finding
{
    std::string id;       ///< stable: "pv-not-allocatable:/dev/loop0"
    std::string severity; ///< critical, warning, info
    std::string subject;  ///< /data, /dev/loop0, vg0, /media/disk0.img, pid 381
    std::string problem;  ///< what is wrong, with numbers
    std::string fix;      ///< what Repair would do, or what the admin must do
    bool safe = false;    ///< Repair applies it without being named
};

/// Diagnose and Repair: finds the faults of the incident (and their like) and fixes the safe ones,
/// one job at a time on the VG's lane, re-diagnosing after each. Never kills a process, never writes
/// over a signature, never touches a device that is not a PV of a watched VG.
class Doctor
{
  public:
    using Error = std::exception_ptr;
    using DiagnoseReply = std::function<void(const std::vector<Finding>& findings, Error error)>;
    using RepairReply = std::function<void(const std::vector<std::pair<std::string, std::string>>& results)>;
    /// Progress of a long repair step ("pvmove /dev/loop1", percent); ("", 0) when it ends.
    using Progress = std::function<void(const std::string& job, double percent)>;

    Doctor(Keeper& keeper, CommandRunner& runner, Filesystems& filesystems, Disks& disks, StateStore& state,
           std::string lvmCommand = "lvm");
    ~Doctor();

    Doctor(const Doctor&) = delete;
    Doctor& operator=(const Doctor&) = delete;

    /// Where progress goes (the D-Bus Progress property).
    void setProgress(Progress progress);

    /// Looks at everything and replies with the findings, most urgent first.
    void diagnose(DiagnoseReply reply);

    /// Applies the named fixes (empty: every safe one), in a safe order; one result per id.
    void repair(std::vector<std::string> ids, RepairReply reply);

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

} // namespace lvkeeper

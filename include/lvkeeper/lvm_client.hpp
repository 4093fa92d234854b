#pragma once

#include "lvkeeper/command.hpp"
#include "lvkeeper/executor.hpp"
#include "lvkeeper/lvm.hpp"
#include "lvkeeper/system.hpp"

#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace lvkeeper
{

/// The one way lvkeeper talks to lvm(8): the reports, parsed, and the commands that change metadata, each
/// followed by a flush of the PVs it wrote to, so that what a command changed is on stable storage before anyone
/// is told it happened.
class LvmClient
{
  public:
    using Error = std::exception_ptr;
    template <typename Row>
    using Report = std::function<void(std::vector<Row> rows, Error error)>;
    using Done = std::function<void(Error error)>;

    LvmClient(CommandRunner& runner, Executor& executor, Disks& disks, std::string lvmCommand,
              std::chrono::milliseconds timeout);

    /// Reports; background ones run at normal priority (scans any caller may ask for). CommandFailed on error.
    void lvs(Report<lvm::Lv> done, bool background = false);
    void pvs(Report<lvm::Pv> done, bool background = false);
    void vgs(Report<lvm::Vg> done, bool background = false);
    void moves(Report<lvm::Move> done, bool background = false);

    /// Runs `lvm args...`, which changes the metadata of vg (empty for a device outside any VG, as pvcreate's),
    /// then flushes every PV device of vg and alsoFlush. done(nullptr) once that is durable; CommandFailed when
    /// the command failed, Failed when its result could not be flushed.
    void change(const std::string& vg, std::vector<std::string> args, std::vector<std::string> alsoFlush, Done done);

    /// Runs `lvm args...` and hands back the raw result (a pvmove start, which changes metadata through lvm's
    /// own background process).
    void run(std::vector<std::string> args, CommandRunner::Done done);

    /// The lvm binary ("lvm", or the test seam's fake).
    const std::string& command() const
    {
        return command_;
    }

  private:
    template <typename Row>
    void report(std::vector<std::string> args, std::vector<Row> (*parse)(std::string_view), Report<Row> done,
                bool background);
    void flushDevices(const std::string& vg, std::set<std::string> devices, const std::string& what, Done done);

    CommandRunner& runner_;
    Executor& executor_;
    Disks& disks_;
    std::string command_;
    std::chrono::milliseconds timeout_;
    std::map<std::string, std::set<std::string>> devicesOf_; ///< VG -> its PV devices, from the last pvs
};

} // namespace lvkeeper

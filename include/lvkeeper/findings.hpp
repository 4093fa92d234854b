#pragma once

#include "lvkeeper/config.hpp"
#include "lvkeeper/journal.hpp"
#include "lvkeeper/lvm.hpp"
#include "lvkeeper/system.hpp"
#include "lvkeeper/volume.hpp"

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lvkeeper
{

/// How urgent a finding is.
enum class Severity
{
    Critical, ///< writers fail or data is at risk now
    Warning,  ///< space is lost or will be
    Info,     ///< worth knowing
};

/// "critical", "warning", "info".
std::string_view severityName(Severity severity);

/// One thing wrong, as Diagnose reports it.
struct Finding
{
    std::string id; ///< stable: "pv-not-allocatable:/dev/loop0"
    Severity severity = Severity::Info;
    std::string subject; ///< /data, /dev/loop0, vg0, /media/disk0.img, pid 381
    std::string problem; ///< what is wrong, with numbers
    std::string fix;     ///< what Repair would do, or what the admin must do
    bool safe = false;   ///< Repair applies it without being named
};

/// Everything Diagnose looks at, read once; findings() is a pure function of it.
struct Snapshot
{
    struct Volume
    {
        VolumeState state;
        std::uint64_t filesystemSize = 0; ///< what the filesystem records
        std::uint64_t errorCount = 0;     ///< errors it recorded (read when read-only)
    };
    struct Place ///< a filesystem whose deleted-but-open files are reported
    {
        std::string name;
        MountInfo mount;
        std::vector<HeldDeletedFile> held;
        std::string scanError;
    };

    std::vector<Volume> volumes;
    std::set<std::string> watchedVgs;
    std::vector<lvm::Pv> pvs;
    std::vector<lvm::Vg> vgs;
    std::vector<lvm::Move> moves;
    std::set<std::string> stalledMoves; ///< source PVs whose move made no progress for a while
    std::set<std::string> movesOfOurs;  ///< source PVs a Repair of ours is moving
    std::vector<LoopDevice> loops;
    std::vector<std::string> recordedImages;
    std::optional<std::string> recordProblem; ///< the image record could not be read
    std::map<std::string, std::optional<std::pair<std::uint64_t, std::uint64_t>>>
        allocations; ///< image -> (alloc, size)
    std::vector<Place> places;
    std::optional<FsUsage> imageDirectoryUsage;
    DisksConfig disks;
    std::vector<Intent> unsettled;                                     ///< journal intents no running operation owns
    std::optional<std::pair<std::string, std::string>> journalProblem; ///< id, text
    std::string stateDirectory;
};

/// The findings, most urgent first. viewer: the caller's uid; only root (0) is told other users' pids, commands
/// and paths of deleted files held open (anyone still learns how much space they hold).
std::vector<Finding> findings(const Snapshot& snapshot, uid_t viewer);

/// The kinds of finding ids, in Repair's order: what unblocks the others first, the slow pvmove late.
const std::vector<std::string>& findingKinds();
/// The kind of an id ("pv-not-allocatable" of "pv-not-allocatable:/dev/loop0") and its subject.
std::string findingKind(const std::string& id);
std::string findingSubject(const std::string& id);
/// Repair's order of an id; unknown kinds last.
int repairRank(const std::string& id);

} // namespace lvkeeper

#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lvkeeper::lvm
{

/// One row of `lvm pvs` (sizes in bytes).
struct Pv
{
    std::string name;   ///< /dev/loop0
    std::string vgName; ///< empty when orphan
    std::uint64_t size = 0;
    std::uint64_t free = 0;
    std::uint64_t devSize = 0;
    std::uint64_t peStart = 0;
    std::uint64_t peCount = 0;
    std::uint64_t peAllocCount = 0;
    bool allocatable = false;
};

/// One row of `lvm vgs`.
struct Vg
{
    std::string name;
    std::uint64_t size = 0;
    std::uint64_t free = 0;
    std::uint64_t extentSize = 0;
    std::uint64_t extentCount = 0;
    std::uint64_t freeCount = 0;
    unsigned pvCount = 0;
};

/// One row of `lvm lvs`, with the fields of its VG that growing needs.
struct Lv
{
    std::string vgName;
    std::string name;
    std::string path;   ///< /dev/vg0/data0
    std::string dmPath; ///< /dev/mapper/vg0-data0
    std::uint64_t size = 0;
    int kernelMajor = -1; ///< -1 when not active
    int kernelMinor = -1;
    std::uint64_t vgFree = 0;
    std::uint64_t vgExtentSize = 0;
};

/// A pvmove in progress: LVM's temporary mirror LV (pvmove0) and how far it got.
struct Move
{
    std::string vgName;
    std::string lvName;   ///< pvmove0
    std::string sourcePv; ///< /dev/loop1
    double percent = 0;   ///< copy_percent, 0..100
};

/// The argv tails (after the lvm binary) of the three reports.
std::vector<std::string> pvsArgs();
std::vector<std::string> vgsArgs();
std::vector<std::string> lvsArgs();

/// argv tail of the report of moves in progress (`lvs -a` rows that have a move_pv).
std::vector<std::string> movesArgs();

/// Parse `lvm ... --reportformat json --units b --nosuffix` output. Throw KeeperError(CommandFailed) on malformed
/// input.
std::vector<Pv> parsePvs(std::string_view json);
std::vector<Vg> parseVgs(std::string_view json);
std::vector<Lv> parseLvs(std::string_view json);
std::vector<Move> parseMoves(std::string_view json);

/// argv tail of `lvextend` to an absolute size in bytes (a multiple of the extent size).
std::vector<std::string> lvextendArgs(const std::string& vg, const std::string& lv, std::uint64_t bytes);
/// argv tail of `pvcreate` for a device that carries no signature.
std::vector<std::string> pvcreateArgs(const std::string& device);
/// argv tail of `vgextend`.
std::vector<std::string> vgextendArgs(const std::string& vg, const std::string& device);
/// argv tail of `vgreduce` (undo of vgextend).
std::vector<std::string> vgreduceArgs(const std::string& vg, const std::string& device);
/// argv tail of `pvremove` (undo of pvcreate).
std::vector<std::string> pvremoveArgs(const std::string& device);
/// argv tail of `pvchange --allocatable y`.
std::vector<std::string> pvchangeAllocatableArgs(const std::string& device);
/// argv tail of `pvresize` to the size of the device.
std::vector<std::string> pvresizeArgs(const std::string& device);
/// argv tail of a pvmove that moves every extent off device in LVM's background mode: it returns at once and
/// the move outlives lvkeeperd; progress is read from movesArgs().
std::vector<std::string> pvmoveStartArgs(const std::string& device);
/// argv tail of the pvmove that restarts interrupted moves (after a crash or a power cut), in the background.
std::vector<std::string> pvmoveResumeArgs();
/// argv tail of `pvmove --abort`: every extent goes back where it was.
std::vector<std::string> pvmoveAbortArgs();

} // namespace lvkeeper::lvm

#include "lvkeeper/lvm.hpp"

#include "lvkeeper/errors.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <limits>

namespace lvkeeper::lvm
{

namespace
{

using nlohmann::json;

constexpr const char* pvFields =
    "pv_name,vg_name,pv_size,pv_free,dev_size,pe_start,pv_pe_count,pv_pe_alloc_count,pv_attr";
constexpr const char* vgFields = "vg_name,vg_size,vg_free,vg_extent_size,vg_extent_count,vg_free_count,pv_count";
constexpr const char* moveFields = "lv_name,vg_name,copy_percent,move_pv";
constexpr const char* lvFields =
    "lv_name,vg_name,lv_path,lv_dm_path,lv_size,lv_kernel_major,lv_kernel_minor,vg_free,vg_extent_size";

[[noreturn]] void throwUnexpected(const std::string& detail)
{
    throw KeeperError(ErrorKind::CommandFailed, "unexpected lvm report: " + detail);
}

std::vector<std::string> reportArgs(const char* command, const char* fields)
{
    // Bytes without a suffix so every size parses as an integer; JSON so names with spaces cannot split columns.
    return {command, "--reportformat", "json", "--units", "b", "--nosuffix", "-o", fields};
}

std::string excerpt(std::string_view text)
{
    constexpr std::size_t maxLength = 80;
    std::string shown(text.substr(0, maxLength));
    if (text.size() > maxLength)
    {
        shown += "...";
    }
    return "\"" + shown + "\"";
}

// Rows of every report entry holding `kind`; lvm adds other entries (such as "log") beside them.
std::vector<json> reportRows(std::string_view text, const char* kind)
{
    const json root = json::parse(text.begin(), text.end(), nullptr, false);
    if (root.is_discarded())
    {
        throwUnexpected("not JSON: " + excerpt(text));
    }
    if (!root.is_object() || !root.contains("report") || !root["report"].is_array())
    {
        throwUnexpected("no \"report\" array in " + excerpt(text));
    }
    std::vector<json> rows;
    bool found = false;
    for (const json& entry : root["report"])
    {
        if (!entry.is_object() || !entry.contains(kind))
        {
            continue;
        }
        const json& list = entry[kind];
        if (!list.is_array())
        {
            throwUnexpected(std::string("\"") + kind + "\" is not an array");
        }
        found = true;
        for (const json& row : list)
        {
            if (!row.is_object())
            {
                throwUnexpected(std::string("a \"") + kind + "\" row is not an object");
            }
            rows.push_back(row);
        }
    }
    if (!found)
    {
        throwUnexpected(std::string("no \"") + kind + "\" list in " + excerpt(text));
    }
    return rows;
}

std::string stringField(const json& row, const char* name)
{
    const auto it = row.find(name);
    if (it == row.end())
    {
        throwUnexpected(std::string("a row lacks \"") + name + "\"");
    }
    if (it->is_string())
    {
        return it->get<std::string>();
    }
    // lvm prints every value as a string; a number here would still be what we asked for.
    if (it->is_number_integer())
    {
        return it->dump();
    }
    throwUnexpected(std::string("\"") + name + "\" is not a string");
}

std::uint64_t sizeField(const json& row, const char* name)
{
    std::string text = stringField(row, name);
    // --nosuffix should drop the "B"; older lvm releases may not.
    if (!text.empty() && (text.back() == 'B' || text.back() == 'b'))
    {
        text.pop_back();
    }
    // lvm leaves a value empty where it does not apply.
    if (text.empty())
    {
        return 0;
    }
    std::uint64_t value = 0;
    for (const char c : text)
    {
        if (c < '0' || c > '9')
        {
            throwUnexpected(std::string("\"") + name + "\" is not a number: \"" + text + "\"");
        }
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
        {
            throwUnexpected(std::string("\"") + name + "\" is too large: \"" + text + "\"");
        }
        value = value * 10 + digit;
    }
    return value;
}

// Kernel device numbers: "-1" (or empty) when the LV is not active.
int deviceNumberField(const json& row, const char* name)
{
    const std::string text = stringField(row, name);
    if (text.empty() || text == "-1")
    {
        return -1;
    }
    constexpr std::uint64_t maxDeviceNumber = 1U << 20; // MINORBITS
    const std::uint64_t value = sizeField(row, name);
    if (value >= maxDeviceNumber)
    {
        throwUnexpected(std::string("\"") + name + "\" is out of range: \"" + text + "\"");
    }
    return static_cast<int>(value);
}

} // namespace

std::vector<std::string> pvsArgs()
{
    return reportArgs("pvs", pvFields);
}

std::vector<std::string> vgsArgs()
{
    return reportArgs("vgs", vgFields);
}

std::vector<std::string> lvsArgs()
{
    return reportArgs("lvs", lvFields);
}

std::vector<std::string> movesArgs()
{
    auto args = reportArgs("lvs", moveFields);
    // pvmove's mirror is a hidden LV: only -a lists it.
    args.insert(args.begin() + 1, "-a");
    return args;
}

std::vector<Pv> parsePvs(std::string_view text)
{
    std::vector<Pv> pvs;
    for (const auto& row : reportRows(text, "pv"))
    {
        Pv pv;
        pv.name = stringField(row, "pv_name");
        pv.vgName = stringField(row, "vg_name");
        pv.size = sizeField(row, "pv_size");
        pv.free = sizeField(row, "pv_free");
        pv.devSize = sizeField(row, "dev_size");
        pv.peStart = sizeField(row, "pe_start");
        pv.peCount = sizeField(row, "pv_pe_count");
        pv.peAllocCount = sizeField(row, "pv_pe_alloc_count");
        // pv_attr is "a--" when allocatable, "u--" after pvchange -x n, "---" for an orphan.
        const std::string attr = stringField(row, "pv_attr");
        pv.allocatable = !attr.empty() && attr.front() == 'a';
        pvs.push_back(std::move(pv));
    }
    return pvs;
}

std::vector<Vg> parseVgs(std::string_view text)
{
    std::vector<Vg> vgs;
    for (const auto& row : reportRows(text, "vg"))
    {
        Vg vg;
        vg.name = stringField(row, "vg_name");
        vg.size = sizeField(row, "vg_size");
        vg.free = sizeField(row, "vg_free");
        vg.extentSize = sizeField(row, "vg_extent_size");
        vg.extentCount = sizeField(row, "vg_extent_count");
        vg.freeCount = sizeField(row, "vg_free_count");
        const std::uint64_t pvCount = sizeField(row, "pv_count");
        if (pvCount > std::numeric_limits<unsigned>::max())
        {
            throwUnexpected("\"pv_count\" is out of range");
        }
        vg.pvCount = static_cast<unsigned>(pvCount);
        vgs.push_back(std::move(vg));
    }
    return vgs;
}

std::vector<Lv> parseLvs(std::string_view text)
{
    std::vector<Lv> lvs;
    for (const auto& row : reportRows(text, "lv"))
    {
        Lv lv;
        lv.name = stringField(row, "lv_name");
        lv.vgName = stringField(row, "vg_name");
        lv.path = stringField(row, "lv_path");
        lv.dmPath = stringField(row, "lv_dm_path");
        lv.size = sizeField(row, "lv_size");
        lv.kernelMajor = deviceNumberField(row, "lv_kernel_major");
        lv.kernelMinor = deviceNumberField(row, "lv_kernel_minor");
        lv.vgFree = sizeField(row, "vg_free");
        lv.vgExtentSize = sizeField(row, "vg_extent_size");
        lvs.push_back(std::move(lv));
    }
    return lvs;
}

std::vector<Move> parseMoves(std::string_view text)
{
    std::vector<Move> moves;
    for (const auto& row : reportRows(text, "lv"))
    {
        std::string source = stringField(row, "move_pv");
        if (source.empty())
        {
            continue;
        }
        Move move;
        move.lvName = stringField(row, "lv_name");
        // Hidden LVs are listed as "[pvmove0]".
        if (move.lvName.size() > 2 && move.lvName.front() == '[' && move.lvName.back() == ']')
        {
            move.lvName = move.lvName.substr(1, move.lvName.size() - 2);
        }
        move.vgName = stringField(row, "vg_name");
        move.sourcePv = source;
        std::string percent = stringField(row, "copy_percent");
        char* end = nullptr;
        double value = std::strtod(percent.c_str(), &end);
        move.percent = end != percent.c_str() && value >= 0 && value <= 100 ? value : 0;
        moves.push_back(std::move(move));
    }
    return moves;
}

std::vector<std::string> lvextendArgs(const std::string& vg, const std::string& lv, std::uint64_t bytes)
{
    // No --resizefs: the daemon grows the filesystem itself, as a separate, watched step.
    return {"lvextend", "--size", std::to_string(bytes) + "b", vg + "/" + lv};
}

std::vector<std::string> pvcreateArgs(const std::string& device)
{
    return {"pvcreate", device};
}

std::vector<std::string> vgextendArgs(const std::string& vg, const std::string& device)
{
    return {"vgextend", vg, device};
}

std::vector<std::string> vgreduceArgs(const std::string& vg, const std::string& device)
{
    return {"vgreduce", vg, device};
}

std::vector<std::string> pvremoveArgs(const std::string& device)
{
    return {"pvremove", device};
}

std::vector<std::string> pvchangeAllocatableArgs(const std::string& device)
{
    return {"pvchange", "--allocatable", "y", device};
}

std::vector<std::string> pvresizeArgs(const std::string& device)
{
    return {"pvresize", device};
}

std::vector<std::string> pvmoveStartArgs(const std::string& device)
{
    // --interval: LVM's own background poller finishes the move a second after the copy ends, not 15 s.
    return {"pvmove", "--background", "--interval", "1", device};
}

std::vector<std::string> pvmoveResumeArgs()
{
    return {"pvmove", "--background", "--interval", "1"};
}

std::vector<std::string> pvmoveAbortArgs()
{
    return {"pvmove", "--abort"};
}

} // namespace lvkeeper::lvm

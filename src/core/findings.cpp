#include "lvkeeper/findings.hpp"

#include "lvkeeper/fs_commands.hpp"
#include "lvkeeper/size.hpp"

#include <algorithm>
#include <cstdio>

namespace lvkeeper
{

namespace
{

/// A PV's first extent normally starts at 1 MiB; far beyond that, the space before it is lost.
constexpr std::uint64_t defaultPeStart = 1 * MiB;
constexpr std::uint64_t farPeStart = 8 * MiB;

const lvm::Vg* vgNamed(const Snapshot& s, const std::string& name)
{
    for (const auto& g : s.vgs)
    {
        if (g.name == name)
        {
            return &g;
        }
    }
    return nullptr;
}

void volumeFindings(const Snapshot& s, std::vector<Finding>& out)
{
    for (const auto& sv : s.volumes)
    {
        const auto& v = sv.state;
        const auto& mp = v.config.mountPoint;
        if (!v.mounted)
        {
            out.push_back({"not-mounted:" + mp, Severity::Critical, mp, mp + " is not mounted",
                           "mount it (lvkeeper does not mount filesystems)", false});
            continue;
        }
        if (v.readOnly)
        {
            if (sv.errorCount > 0 || v.fsErrors)
            {
                out.push_back(
                    {"fs-errors:" + mp, Severity::Critical, mp,
                     mp + " is read-only and its filesystem recorded " + std::to_string(sv.errorCount) + " errors",
                     fsckAdvice(mp, v.mount) + " (Repair refuses: a remount would risk the data)", false});
            }
            else
            {
                out.push_back({"read-only:" + mp, Severity::Critical, mp,
                               mp + " (" + v.mount.source +
                                   ") is mounted read-only although its filesystem is clean: writers fail with EROFS",
                               "Repair remounts it read-write in place (mount(2) MS_REMOUNT), without unmounting",
                               true});
            }
        }
        if (!v.vg.empty() && v.lvSize > sv.filesystemSize &&
            v.lvSize - sv.filesystemSize >= std::max<std::uint64_t>(v.extentSize, 1))
        {
            out.push_back({"lv-bigger-than-fs:" + mp, Severity::Warning, mp,
                           "LV " + v.lvName() + " is " + formatSize(v.lvSize) + " but the filesystem on it is " +
                               formatSize(sv.filesystemSize) + ": " + formatSize(v.lvSize - sv.filesystemSize) +
                               " unused",
                           "Repair grows the filesystem online to fill its LV", true});
        }
    }
}

void pvFindings(const Snapshot& s, std::vector<Finding>& out)
{
    for (const auto& pv : s.pvs)
    {
        if (!s.watchedVgs.count(pv.vgName))
        {
            continue;
        }
        const lvm::Vg* vg = vgNamed(s, pv.vgName);
        std::uint64_t extent = vg && vg->extentSize ? vg->extentSize : 4 * MiB;
        if (!pv.allocatable)
        {
            out.push_back({"pv-not-allocatable:" + pv.name, Severity::Warning, pv.name,
                           "PV " + pv.name + " of " + pv.vgName + " is not allocatable: its " + formatSize(pv.free) +
                               " free cannot be used and lvextend skips it",
                           "Repair runs pvchange --allocatable y " + pv.name, true});
        }
        std::uint64_t used = pv.peStart + pv.size;
        if (pv.devSize > used && pv.devSize - used >= extent)
        {
            out.push_back({"pv-smaller-than-device:" + pv.name, Severity::Warning, pv.name,
                           "PV " + pv.name + " uses " + formatSize(pv.size) + " of its " + formatSize(pv.devSize) +
                               " device: " + formatSize(pv.devSize - used) + " unused",
                           "Repair runs pvresize " + pv.name, true});
        }
        bool moving = std::any_of(s.moves.begin(), s.moves.end(),
                                  [&](const lvm::Move& m)
                                  {
                                      return m.sourcePv == pv.name;
                                  });
        if (pv.peStart > farPeStart && pv.peStart > extent && !moving)
        {
            std::uint64_t lost = (pv.peStart - defaultPeStart) / extent;
            std::uint64_t otherFree = 0;
            for (const auto& other : s.pvs)
            {
                if (other.vgName == pv.vgName && other.name != pv.name && other.allocatable)
                {
                    otherFree += other.free / extent;
                }
            }
            bool room = otherFree >= pv.peAllocCount;
            std::string fix = room ? "Repair moves its " + std::to_string(pv.peAllocCount) +
                                         " allocated extents to other PVs (pvmove), removes it from " + pv.vgName +
                                         ", recreates it with the default layout and adds it back"
                                   : "needs " + std::to_string(pv.peAllocCount) +
                                         " free extents on the other allocatable PVs of " + pv.vgName +
                                         ", which have " + std::to_string(otherFree) +
                                         "; fix the other PVs or add a disk first, then Repair";
            out.push_back({"pv-data-offset:" + pv.name, Severity::Warning, pv.name,
                           "the first extent of PV " + pv.name + " starts at " + formatSize(pv.peStart) +
                               " instead of " + formatSize(defaultPeStart) + ": " + std::to_string(lost) +
                               " extents (" + formatSize(lost * extent) + ") are not usable",
                           fix, room});
        }
    }
}

void moveFindings(const Snapshot& s, std::vector<Finding>& out)
{
    for (const auto& m : s.moves)
    {
        if (!s.watchedVgs.count(m.vgName))
        {
            continue;
        }
        char percent[16];
        std::snprintf(percent, sizeof percent, "%.1f%%", m.percent);
        if (s.stalledMoves.count(m.sourcePv) && !s.movesOfOurs.count(m.sourcePv))
        {
            out.push_back({"pvmove-interrupted:" + m.sourcePv, Severity::Warning, m.sourcePv,
                           "a pvmove of the extents of " + m.sourcePv + " in " + m.vgName + " stopped at " + percent +
                               " (interrupted by a crash or a reboot): the LV keeps a temporary mirror (" + m.lvName +
                               ") and cannot be resized until it ends",
                           "Repair resumes it (pvmove --background); to undo it instead: lvm pvmove --abort", true});
            continue;
        }
        out.push_back({"pvmove-running:" + m.sourcePv, Severity::Info, m.sourcePv,
                       "a pvmove of the extents of " + m.sourcePv + " in " + m.vgName + " is at " + percent +
                           (s.movesOfOurs.count(m.sourcePv) ? " (Repair recreating the PV)" : ""),
                       "nothing: wait for it (Manager.Progress shows lvkeeper's own)", false});
    }
}

void imageFindings(const Snapshot& s, std::vector<Finding>& out)
{
    std::map<std::string, std::string> byFile; // backing file -> loop device
    std::map<std::string, std::string> byDevice;
    for (const auto& loop : s.loops)
    {
        byFile[loop.backingFile] = loop.device;
        byDevice[loop.device] = loop.backingFile;
    }
    // The kernel names a backing file deleted while attached "<path> (deleted)": one image either way.
    const std::string deleted = " (deleted)";
    auto stripDeleted = [&deleted](std::string path)
    {
        bool gone =
            path.size() > deleted.size() && path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0;
        if (gone)
        {
            path.resize(path.size() - deleted.size());
        }
        return std::make_pair(path, gone);
    };
    std::map<std::string, bool> images; // path -> deleted while attached
    std::set<std::string> recorded(s.recordedImages.begin(), s.recordedImages.end());
    for (const auto& image : s.recordedImages)
    {
        images.emplace(image, false);
    }
    bool vgMissingPv = false;
    for (const auto& pv : s.pvs)
    {
        if (s.watchedVgs.count(pv.vgName) && pv.name.rfind("[unknown]", 0) == 0)
        {
            vgMissingPv = true;
        }
        auto it = byDevice.find(pv.name);
        if (s.watchedVgs.count(pv.vgName) && it != byDevice.end() && !it->second.empty())
        {
            auto [path, gone] = stripDeleted(it->second);
            images[path] = images[path] || gone;
        }
    }
    for (const auto& [path, gone] : images)
    {
        bool attached = byFile.count(path) || byFile.count(path + deleted);
        std::optional<std::pair<std::uint64_t, std::uint64_t>> alloc;
        if (!gone)
        {
            auto it = s.allocations.find(path);
            alloc = it == s.allocations.end() ? std::nullopt : it->second;
        }
        if (!alloc && !attached && !vgMissingPv)
        {
            // Gone, and nothing uses it any more: only the boot-time record still names it.
            out.push_back({"image-missing:" + path, Severity::Warning, path,
                           "disk image " + path +
                               " is missing but no PV of a watched VG needs it; the boot-time re-attachment still "
                               "lists it and would fail on it",
                           "Repair forgets it (removes it from the recorded images)", true});
            continue;
        }
        if (!alloc)
        {
            out.push_back({"image-missing:" + path, Severity::Critical, path,
                           "disk image " + path + " is missing" +
                               (gone ? " (deleted while attached; its loop device still holds the data)" : ""),
                           "restore the file from backup or remove its PV from the VG (vgreduce --removemissing); "
                           "Repair cannot recreate data",
                           false});
            continue;
        }
        auto [allocated, size] = *alloc;
        if (allocated + MiB < size)
        {
            out.push_back({"image-sparse:" + path, Severity::Warning, path,
                           "disk image " + path + " is sparse: " + formatSize(allocated) + " of " + formatSize(size) +
                               " allocated, so the PV can fail with ENOSPC on the host while LVM believes it has room",
                           "Repair allocates the rest (fallocate; the data is untouched)", true});
        }
        if (recorded.count(path) && !attached)
        {
            out.push_back({"image-detached:" + path, Severity::Critical, path,
                           "disk image " + path + " is not attached to a loop device: its PV is missing",
                           "Repair attaches it to a free loop device", true});
        }
    }
}

void heldFindings(const Snapshot& s, uid_t viewer, std::vector<Finding>& out)
{
    for (const auto& place : s.places)
    {
        std::uint64_t hidden = 0;
        std::size_t hiddenCount = 0;
        for (const auto& h : place.held)
        {
            if (h.bytes < MiB)
            {
                continue; // a log file or a lock: not what hides space
            }
            if (viewer != 0 && h.uid != viewer)
            {
                // Another user's process: how much space, never who or what.
                hidden += h.bytes;
                ++hiddenCount;
                continue;
            }
            std::string pid = std::to_string(h.pid);
            out.push_back(
                {"deleted-open:" + pid + ":" + h.path, Severity::Warning, "pid " + pid,
                 h.command + " (pid " + pid + ") holds the deleted file " + h.path + " open: " + formatSize(h.bytes) +
                     " of " + place.mount.mountPoint + " that df counts as used and no file shows",
                 "restart " + h.command + " (pid " + pid + ") so it closes the file; lvkeeper never kills a process",
                 false});
        }
        if (hiddenCount > 0)
        {
            out.push_back({"deleted-open:" + place.mount.mountPoint, Severity::Warning, place.mount.mountPoint,
                           std::to_string(hiddenCount) + " deleted file(s) held open by other users' processes hold " +
                               formatSize(hidden) + " of " + place.mount.mountPoint +
                               " that df counts as used and no file shows",
                           "ask root to run Diagnose: it names the processes to restart", false});
        }
    }
}

void vgFindings(const Snapshot& s, std::vector<Finding>& out)
{
    std::uint64_t hostFree = 0;
    bool hostKnown = s.imageDirectoryUsage.has_value();
    if (hostKnown)
    {
        auto available = s.imageDirectoryUsage->available;
        hostFree = available > s.disks.reserveHostSpace ? available - s.disks.reserveHostSpace : 0;
    }
    std::set<std::string> seen;
    for (const auto& sv : s.volumes)
    {
        const auto& v = sv.state;
        if (v.vg.empty() || !seen.insert(v.vg).second)
        {
            continue;
        }
        const lvm::Vg* vg = vgNamed(s, v.vg);
        std::uint64_t free = vg ? vg->free : v.vgFree;
        if (free >= v.config.growStep)
        {
            continue;
        }
        std::string disksLeft = hostKnown ? std::to_string(hostFree / std::max<std::uint64_t>(s.disks.imageSize, 1)) +
                                                " more " + formatSize(s.disks.imageSize) + " disks (" +
                                                formatSize(hostFree) + " free beyond the reserve)"
                                          : "an unknown number of disks";
        out.push_back({"vg-low:" + v.vg, free == 0 ? Severity::Warning : Severity::Info, v.vg,
                       "volume group " + v.vg + " has " + formatSize(free) + " free, less than one " +
                           formatSize(v.config.growStep) + " grow step of " + v.config.mountPoint + "; " +
                           s.disks.imageDirectory + " can hold " + disksLeft,
                       "AddDisk " + v.vg + " (Repair does it when this id is named)", false});
    }
}

void stateFindings(const Snapshot& s, std::vector<Finding>& out)
{
    if (s.journalProblem)
    {
        out.push_back(
            {s.journalProblem->first, Severity::Warning, s.stateDirectory, s.journalProblem->second,
             "make " + s.stateDirectory +
                 " readable and writable (it must not be full); lvkeeperd keeps "
                 "the volumes alive meanwhile, but half-done operations are only found from the system itself",
             false});
    }
    if (s.recordProblem)
    {
        out.push_back(
            {"state-unreadable:" + s.stateDirectory + "/images", Severity::Critical, s.stateDirectory + "/images",
             "the record of disk images (which lvkeeper-attach.service brings back at boot) cannot be read: " +
                 *s.recordProblem,
             "repair or restore it (one absolute image path per line); until then no disk can be added and "
             "a reboot may leave the volume group incomplete",
             false});
    }
    for (const auto& intent : s.unsettled)
    {
        std::string what = intent.kind;
        for (const char* key : {"volume", "image", "device", "vg"})
        {
            auto value = intent.field(key);
            if (!value.empty())
            {
                what += " " + value;
                break;
            }
        }
        out.push_back({"operation-interrupted:" + std::to_string(intent.id), Severity::Warning, what,
                       what + " was interrupted at its step " + intent.step +
                           (intent.since.empty() ? "" : " (started " + intent.since + ")") +
                           " and could not be finished or undone by itself",
                       "Repair tries again to finish or undo it, as a start of lvkeeperd does; the log "
                       "(journalctl -u lvkeeperd) says why it failed",
                       true});
    }
}

} // namespace

std::string_view severityName(Severity severity)
{
    switch (severity)
    {
    case Severity::Critical:
        return "critical";
    case Severity::Warning:
        return "warning";
    case Severity::Info:
        return "info";
    }
    return "info";
}

const std::vector<std::string>& findingKinds()
{
    static const std::vector<std::string> order = {
        "not-mounted",           "fs-errors",          "read-only",          "lv-bigger-than-fs",
        "image-missing",         "image-detached",     "image-sparse",       "state-unreadable",
        "operation-interrupted", "pvmove-interrupted", "pv-not-allocatable", "pv-smaller-than-device",
        "pv-data-offset",        "pvmove-running",     "deleted-open",       "vg-low",
        "journal-corrupt",       "journal-unreadable", "journal-unwritable",
    };
    return order;
}

std::string findingKind(const std::string& id)
{
    return id.substr(0, id.find(':'));
}

std::string findingSubject(const std::string& id)
{
    auto colon = id.find(':');
    return colon == std::string::npos ? std::string() : id.substr(colon + 1);
}

int repairRank(const std::string& id)
{
    const auto& order = findingKinds();
    auto it = std::find(order.begin(), order.end(), findingKind(id));
    return static_cast<int>(it - order.begin());
}

std::vector<Finding> findings(const Snapshot& snapshot, uid_t viewer)
{
    std::vector<Finding> out;
    volumeFindings(snapshot, out);
    stateFindings(snapshot, out);
    pvFindings(snapshot, out);
    moveFindings(snapshot, out);
    imageFindings(snapshot, out);
    heldFindings(snapshot, viewer, out);
    vgFindings(snapshot, out);
    std::stable_sort(out.begin(), out.end(),
                     [](const Finding& a, const Finding& b)
                     {
                         // Severity's order is its urgency.
                         return a.severity != b.severity ? a.severity < b.severity
                                                         : repairRank(a.id) < repairRank(b.id);
                     });
    return out;
}

} // namespace lvkeeper

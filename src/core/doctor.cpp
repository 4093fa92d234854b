#include "lvkeeper/doctor.hpp"

#include "lvkeeper/errors.hpp"
#include "lvkeeper/lvm.hpp"
#include "lvkeeper/size.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

namespace lvkeeper
{

namespace
{

/// A PV's first extent normally starts at 1 MiB; far beyond that, the space before it is lost.
constexpr std::uint64_t defaultPeStart = 1 * MiB;
constexpr std::uint64_t farPeStart = 8 * MiB;

std::string kindOf(const std::string& id)
{
    return id.substr(0, id.find(':'));
}

std::string argOf(const std::string& id)
{
    auto colon = id.find(':');
    return colon == std::string::npos ? std::string() : id.substr(colon + 1);
}

/// Repair order: what unblocks others first (a writable mount, room in the VG) and the slow pvmove late.
const std::vector<std::string>& kindOrder()
{
    static const std::vector<std::string> order = {
        "not-mounted",    "fs-errors",    "read-only",          "lv-bigger-than-fs",      "image-missing",
        "image-detached", "image-sparse", "pv-not-allocatable", "pv-smaller-than-device", "pv-data-offset",
        "deleted-open",   "vg-low",
    };
    return order;
}

int rank(const std::string& id)
{
    const auto& order = kindOrder();
    auto it = std::find(order.begin(), order.end(), kindOf(id));
    return static_cast<int>(it - order.begin());
}

bool knownKind(const std::string& id)
{
    return static_cast<std::size_t>(rank(id)) < kindOrder().size() && !argOf(id).empty();
}

std::string kindList()
{
    std::string list;
    for (const auto& kind : kindOrder())
    {
        list += (list.empty() ? "" : ", ") + kind;
    }
    return list;
}

/// "  /dev/loop1: Moved: 30.77%" -> 30.77
std::optional<double> pvmovePercent(const std::string& line)
{
    auto pos = line.find("Moved:");
    if (pos == std::string::npos)
    {
        return std::nullopt;
    }
    return std::strtod(line.c_str() + pos + 6, nullptr);
}

} // namespace

struct Doctor::Impl : std::enable_shared_from_this<Doctor::Impl>
{
    Impl(Keeper& k, CommandRunner& r, Filesystems& f, Disks& d, StateStore& s, std::string lvm) :
        keeper(k), runner(r), fs(f), disks(d), state(s), lvmCommand(std::move(lvm))
    {
    }

    Keeper& keeper;
    CommandRunner& runner;
    Filesystems& fs;
    Disks& disks;
    StateStore& state;
    std::string lvmCommand;
    Progress progress;

    std::vector<lvm::Pv> pvs;
    std::vector<lvm::Vg> vgs;

    using Done = std::function<void(Error)>;
    using Result = std::function<void(const std::string&)>;

    void runLvm(std::vector<std::string> args, CommandRunner::Done done)
    {
        args.insert(args.begin(), lvmCommand);
        runner.run(std::move(args), std::chrono::minutes(10), std::move(done));
    }

    std::set<std::string> watchedVgs() const
    {
        return keeper.watchedVolumeGroups();
    }

    const lvm::Vg* vgNamed(const std::string& name) const
    {
        for (const auto& g : vgs)
        {
            if (g.name == name)
            {
                return &g;
            }
        }
        return nullptr;
    }

    const lvm::Pv* pvNamed(const std::string& name) const
    {
        for (const auto& p : pvs)
        {
            if (p.name == name)
            {
                return &p;
            }
        }
        return nullptr;
    }

    /// Re-reads the keeper's volumes, then pvs and vgs.
    void gather(Done done)
    {
        auto self = shared_from_this();
        keeper.rescan(
            [self, done]
            {
                self->runLvm(
                    lvm::pvsArgs(),
                    [self, done](const CommandResult& r)
                    {
                        if (!r.ok())
                        {
                            done(std::make_exception_ptr(
                                KeeperError(ErrorKind::CommandFailed, "cannot read LVM state: " + r.describe())));
                            return;
                        }
                        try
                        {
                            self->pvs = lvm::parsePvs(r.out);
                        }
                        catch (...)
                        {
                            done(std::current_exception());
                            return;
                        }
                        self->runLvm(lvm::vgsArgs(),
                                     [self, done](const CommandResult& r2)
                                     {
                                         if (!r2.ok())
                                         {
                                             done(std::make_exception_ptr(KeeperError(
                                                 ErrorKind::CommandFailed, "cannot read LVM state: " + r2.describe())));
                                             return;
                                         }
                                         try
                                         {
                                             self->vgs = lvm::parseVgs(r2.out);
                                         }
                                         catch (...)
                                         {
                                             done(std::current_exception());
                                             return;
                                         }
                                         done(nullptr);
                                     });
                    });
            });
    }

    // ---- findings ------------------------------------------------------------

    std::vector<Finding> findings()
    {
        std::vector<Finding> out;
        volumeFindings(out);
        pvFindings(out);
        imageFindings(out);
        heldFindings(out);
        vgFindings(out);
        std::stable_sort(out.begin(), out.end(),
                         [](const Finding& a, const Finding& b)
                         {
                             auto sev = [](const std::string& s)
                             {
                                 return s == "critical" ? 0 : s == "warning" ? 1 : 2;
                             };
                             return sev(a.severity) != sev(b.severity) ? sev(a.severity) < sev(b.severity)
                                                                       : rank(a.id) < rank(b.id);
                         });
        return out;
    }

    void volumeFindings(std::vector<Finding>& out)
    {
        const auto& volumes = keeper.volumes();
        for (std::size_t i = 0; i < volumes.size(); ++i)
        {
            const auto& v = volumes[i];
            const auto& mp = v.config.mountPoint;
            if (!v.mounted)
            {
                out.push_back({"not-mounted:" + mp, "critical", mp, mp + " is not mounted",
                               "mount it (lvkeeper does not mount filesystems)", false});
                continue;
            }
            if (v.readOnly)
            {
                std::uint64_t errors = 0;
                try
                {
                    errors = fs.errorCount(v.mount);
                }
                catch (const std::exception&)
                {
                }
                if (errors > 0 || v.fsErrors)
                {
                    std::string fsck = v.mount.fsType == "xfs" ? "xfs_repair " : "fsck." + v.mount.fsType + " -f ";
                    out.push_back(
                        {"fs-errors:" + mp, "critical", mp,
                         mp + " is read-only and its filesystem recorded " + std::to_string(errors) + " errors",
                         "stop its users, then: umount " + mp + " && " + fsck + v.mount.source + " && mount " + mp +
                             " (Repair refuses: a remount would risk the data)",
                         false});
                }
                else
                {
                    out.push_back({"read-only:" + mp, "critical", mp,
                                   mp + " (" + v.mount.source +
                                       ") is mounted read-only although its filesystem is "
                                       "clean: writers fail with EROFS",
                                   "Repair remounts it read-write in place (mount(2) MS_REMOUNT), without unmounting",
                                   true});
                }
            }
            std::uint64_t fsSize = keeper.filesystemSize(i);
            if (!v.vg.empty() && v.lvSize > fsSize && v.lvSize - fsSize >= std::max<std::uint64_t>(v.extentSize, 1))
            {
                out.push_back({"lv-bigger-than-fs:" + mp, "warning", mp,
                               "LV " + v.lvName() + " is " + formatSize(v.lvSize) + " but the filesystem on it is " +
                                   formatSize(fsSize) + ": " + formatSize(v.lvSize - fsSize) + " unused",
                               "Repair grows the filesystem online to fill its LV", true});
            }
        }
    }

    void pvFindings(std::vector<Finding>& out)
    {
        auto watched = watchedVgs();
        for (const auto& pv : pvs)
        {
            if (!watched.count(pv.vgName))
            {
                continue;
            }
            const lvm::Vg* vg = vgNamed(pv.vgName);
            std::uint64_t extent = vg && vg->extentSize ? vg->extentSize : 4 * MiB;
            if (!pv.allocatable)
            {
                out.push_back({"pv-not-allocatable:" + pv.name, "warning", pv.name,
                               "PV " + pv.name + " of " + pv.vgName + " is not allocatable: its " +
                                   formatSize(pv.free) + " free cannot be used and lvextend skips it",
                               "Repair runs pvchange --allocatable y " + pv.name, true});
            }
            std::uint64_t used = pv.peStart + pv.size;
            if (pv.devSize > used && pv.devSize - used >= extent)
            {
                out.push_back({"pv-smaller-than-device:" + pv.name, "warning", pv.name,
                               "PV " + pv.name + " uses " + formatSize(pv.size) + " of its " + formatSize(pv.devSize) +
                                   " device: " + formatSize(pv.devSize - used) + " unused",
                               "Repair runs pvresize " + pv.name, true});
            }
            if (pv.peStart > farPeStart && pv.peStart > extent)
            {
                std::uint64_t lost = (pv.peStart - defaultPeStart) / extent;
                std::uint64_t otherFree = 0;
                for (const auto& other : pvs)
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
                out.push_back({"pv-data-offset:" + pv.name, "warning", pv.name,
                               "the first extent of PV " + pv.name + " starts at " + formatSize(pv.peStart) +
                                   " instead of " + formatSize(defaultPeStart) + ": " + std::to_string(lost) +
                                   " extents (" + formatSize(lost * extent) + ") are not usable",
                               fix, room});
            }
        }
    }

    void imageFindings(std::vector<Finding>& out)
    {
        auto watched = watchedVgs();
        std::map<std::string, std::string> byFile; // backing file -> loop device
        std::map<std::string, std::string> byDevice;
        try
        {
            for (const auto& loop : disks.loopDevices())
            {
                byFile[loop.backingFile] = loop.device;
                byDevice[loop.device] = loop.backingFile;
            }
        }
        catch (const std::exception& e)
        {
            spdlog::warn("event=loop-list-failed error=\"{}\"", e.what());
        }
        // The kernel names a backing file deleted while attached "<path> (deleted)": one image either way.
        const std::string deleted = " (deleted)";
        auto stripDeleted = [&deleted](std::string path)
        {
            bool gone = path.size() > deleted.size() &&
                        path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0;
            if (gone)
            {
                path.resize(path.size() - deleted.size());
            }
            return std::make_pair(path, gone);
        };
        std::map<std::string, bool> images; // path -> deleted while attached
        std::set<std::string> recorded;
        try
        {
            for (const auto& image : state.images())
            {
                images.emplace(image, false);
                recorded.insert(image);
            }
        }
        catch (const std::exception& e)
        {
            spdlog::warn("event=state-read-failed error=\"{}\"", e.what());
        }
        bool vgMissingPv = false;
        for (const auto& pv : pvs)
        {
            if (watched.count(pv.vgName) && pv.name.rfind("[unknown]", 0) == 0)
            {
                vgMissingPv = true;
            }
            auto it = byDevice.find(pv.name);
            if (watched.count(pv.vgName) && it != byDevice.end() && !it->second.empty())
            {
                auto [path, gone] = stripDeleted(it->second);
                images[path] = images[path] || gone;
            }
        }
        for (const auto& [path, gone] : images)
        {
            bool attached = byFile.count(path) || byFile.count(path + deleted);
            std::optional<std::pair<std::uint64_t, std::uint64_t>> alloc;
            try
            {
                alloc = gone ? std::nullopt : disks.fileAllocation(path);
            }
            catch (const std::exception&)
            {
            }
            if (!alloc && !attached && !vgMissingPv)
            {
                // Gone, and nothing uses it any more: only the boot-time record still names it.
                out.push_back({"image-missing:" + path, "warning", path,
                               "disk image " + path +
                                   " is missing but no PV of a watched VG needs it; the boot-time re-attachment "
                                   "still lists it and would fail on it",
                               "Repair forgets it (removes it from " + std::string("the recorded images") + ")", true});
                continue;
            }
            if (!alloc)
            {
                out.push_back({"image-missing:" + path, "critical", path,
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
                out.push_back({"image-sparse:" + path, "warning", path,
                               "disk image " + path + " is sparse: " + formatSize(allocated) + " of " +
                                   formatSize(size) +
                                   " allocated, so the PV can fail with ENOSPC on the host "
                                   "while LVM believes it has room",
                               "Repair allocates the rest (fallocate; the data is untouched)", true});
            }
            if (recorded.count(path) && !attached)
            {
                out.push_back({"image-detached:" + path, "critical", path,
                               "disk image " + path + " is not attached to a loop device: its PV is missing",
                               "Repair attaches it to a free loop device", true});
            }
        }
    }

    void heldFindings(std::vector<Finding>& out)
    {
        std::set<std::pair<unsigned, unsigned>> devices;
        std::vector<std::pair<std::string, MountInfo>> places;
        auto add = [&](const std::string& name, const std::optional<MountInfo>& m)
        {
            if (m && devices.insert({m->devMajor, m->devMinor}).second)
            {
                places.emplace_back(name, *m);
            }
        };
        try
        {
            add(keeper.config().disks.imageDirectory, fs.mountOf(keeper.config().disks.imageDirectory));
        }
        catch (const std::exception&)
        {
        }
        for (const auto& v : keeper.volumes())
        {
            if (v.mounted)
            {
                add(v.config.mountPoint, v.mount);
            }
        }
        for (const auto& [name, mount] : places)
        {
            std::vector<HeldDeletedFile> held;
            try
            {
                held = fs.heldDeletedFiles(mount.devMajor, mount.devMinor);
            }
            catch (const std::exception& e)
            {
                spdlog::warn("event=held-scan-failed place={} error=\"{}\"", name, e.what());
            }
            for (const auto& h : held)
            {
                if (h.bytes < MiB)
                {
                    continue; // a log file or a lock: not what hides space
                }
                out.push_back(
                    {"deleted-open:" + std::to_string(h.pid) + ":" + h.path, "warning", "pid " + std::to_string(h.pid),
                     h.command + " (pid " + std::to_string(h.pid) + ") holds the deleted file " + h.path + " open: " +
                         formatSize(h.bytes) + " of " + mount.mountPoint + " that df counts as used and no file shows",
                     "restart " + h.command + " (pid " + std::to_string(h.pid) +
                         ") so it closes the file; lvkeeper never kills a process",
                     false});
            }
        }
    }

    void vgFindings(std::vector<Finding>& out)
    {
        const auto& cfg = keeper.config().disks;
        std::uint64_t hostFree = 0;
        bool hostKnown = false;
        try
        {
            auto usage = fs.usage(cfg.imageDirectory);
            hostFree = usage.available > cfg.reserveHostSpace ? usage.available - cfg.reserveHostSpace : 0;
            hostKnown = true;
        }
        catch (const std::exception&)
        {
        }
        std::set<std::string> seen;
        for (const auto& v : keeper.volumes())
        {
            if (v.vg.empty() || !seen.insert(v.vg).second)
            {
                continue;
            }
            const lvm::Vg* vg = vgNamed(v.vg);
            std::uint64_t free = vg ? vg->free : v.vgFree;
            if (free >= v.config.growStep)
            {
                continue;
            }
            std::string disksLeft = hostKnown ? std::to_string(hostFree / std::max<std::uint64_t>(cfg.imageSize, 1)) +
                                                    " more " + formatSize(cfg.imageSize) + " disks (" +
                                                    formatSize(hostFree) + " free beyond the reserve)"
                                              : "an unknown number of disks";
            out.push_back({"vg-low:" + v.vg, free == 0 ? "warning" : "info", v.vg,
                           "volume group " + v.vg + " has " + formatSize(free) + " free, less than one " +
                               formatSize(v.config.growStep) + " grow step of " + v.config.mountPoint + "; " +
                               cfg.imageDirectory + " can hold " + disksLeft,
                           "AddDisk " + v.vg + " (Repair does it when this id is named)", false});
        }
    }

    // ---- repairs -------------------------------------------------------------

    void lvmRepair(const std::string& vg, std::vector<std::string> args, std::string success, Result done)
    {
        auto self = shared_from_this();
        keeper.enqueue(vg, args.front() + " " + args.back(),
                       [self, args, success, done](JobQueue::Finish finish)
                       {
                           self->runLvm(args,
                                        [success, done, finish](const CommandResult& r)
                                        {
                                            done(r.ok() ? "fixed: " + success : "failed: " + r.describe());
                                            finish();
                                        });
                       });
    }

    void recreatePv(const lvm::Pv pv, Result done)
    {
        auto self = shared_from_this();
        keeper.enqueue(
            pv.vgName, "recreate " + pv.name,
            [self, pv, done](JobQueue::Finish finish)
            {
                auto end = [self, done, finish](const std::string& result)
                {
                    if (self->progress)
                    {
                        self->progress("", 0);
                    }
                    done(result);
                    finish();
                };
                std::optional<std::string> signature;
                try
                {
                    signature = self->disks.signature(pv.name);
                }
                catch (const std::exception& e)
                {
                    end(std::string("failed: cannot probe ") + pv.name + ": " + e.what());
                    return;
                }
                if (signature != std::optional<std::string>("LVM2_member"))
                {
                    end("refused: " + pv.name + " does not carry an LVM2_member signature (" +
                        signature.value_or("none") + "); lvkeeper touches only PVs of watched VGs");
                    return;
                }
                auto afterMove = [self, pv, end]()
                {
                    self->rebuild(pv, end);
                };
                if (pv.peAllocCount == 0)
                {
                    afterMove();
                    return;
                }
                std::string job = "pvmove " + pv.name;
                if (self->progress)
                {
                    self->progress(job, 0);
                }
                spdlog::info("event=pvmove-start device={} extents={}", pv.name, pv.peAllocCount);
                std::vector<std::string> argv{self->lvmCommand, "pvmove", "--interval", "1", pv.name};
                self->runner.runStreaming(
                    argv, std::chrono::hours(6),
                    [self, job](const std::string& line)
                    {
                        if (auto pct = pvmovePercent(line); pct && self->progress)
                        {
                            self->progress(job, *pct);
                        }
                    },
                    [pv, afterMove, end](const CommandResult& r)
                    {
                        if (!r.ok())
                        {
                            end("failed: pvmove " + pv.name + ": " + r.describe() +
                                "; nothing else was changed (check `pvmove` and `lvs -a` for a move in progress)");
                            return;
                        }
                        spdlog::info("event=pvmove-done device={} duration_ms={}", pv.name, r.duration.count());
                        afterMove();
                    });
            });
    }

    /// vgreduce, pvremove, pvcreate, vgextend: says exactly where it stopped if a step fails.
    void rebuild(const lvm::Pv& pv, Result end)
    {
        auto self = shared_from_this();
        runLvm(lvm::vgreduceArgs(pv.vgName, pv.name),
               [self, pv, end](const CommandResult& r)
               {
                   if (!r.ok())
                   {
                       end("failed: vgreduce " + pv.vgName + " " + pv.name + ": " + r.describe() +
                           " (its extents were moved; it is still in " + pv.vgName + ")");
                       return;
                   }
                   self->runLvm(
                       lvm::pvremoveArgs(pv.name),
                       [self, pv, end](const CommandResult& r2)
                       {
                           std::string redo =
                               "; to finish by hand: pvcreate " + pv.name + " && vgextend " + pv.vgName + " " + pv.name;
                           if (!r2.ok())
                           {
                               end("failed: pvremove " + pv.name + ": " + r2.describe() + redo);
                               return;
                           }
                           self->runLvm(
                               lvm::pvcreateArgs(pv.name),
                               [self, pv, end, redo](const CommandResult& r3)
                               {
                                   if (!r3.ok())
                                   {
                                       end("failed: pvcreate " + pv.name + ": " + r3.describe() + redo);
                                       return;
                                   }
                                   self->runLvm(
                                       lvm::vgextendArgs(pv.vgName, pv.name),
                                       [pv, end](const CommandResult& r4)
                                       {
                                           if (!r4.ok())
                                           {
                                               end("failed: vgextend " + pv.vgName + " " + pv.name + ": " +
                                                   r4.describe() + "; to finish by hand: vgextend " + pv.vgName + " " +
                                                   pv.name);
                                               return;
                                           }
                                           end("fixed: moved " + std::to_string(pv.peAllocCount) + " extents off " +
                                               pv.name +
                                               ", recreated it with its first extent at 1M and added it back to " +
                                               pv.vgName);
                                       });
                               });
                       });
               });
    }

    void apply(const Finding& f, Result done)
    {
        std::string kind = kindOf(f.id);
        std::string arg = argOf(f.id);
        auto fromError = [done](const std::string& ok)
        {
            return [done, ok](Error e)
            {
                done(e ? "failed: " + describeError(e) : "fixed: " + ok);
            };
        };
        if (kind == "read-only")
        {
            keeper.remount(arg, fromError(arg + " is read-write"));
        }
        else if (kind == "lv-bigger-than-fs")
        {
            keeper.healFilesystem(arg,
                                  [done, arg](std::uint64_t, Error e)
                                  {
                                      done(e ? "failed: " + describeError(e)
                                             : "fixed: the filesystem of " + arg + " fills its LV");
                                  });
        }
        else if (kind == "pv-not-allocatable" || kind == "pv-smaller-than-device" || kind == "pv-data-offset")
        {
            const lvm::Pv* pv = pvNamed(arg);
            if (!pv || !watchedVgs().count(pv->vgName))
            {
                done("refused: " + arg + " is not a PV of a watched volume group");
            }
            else if (kind == "pv-not-allocatable")
            {
                lvmRepair(pv->vgName, {"pvchange", "--allocatable", "y", arg}, arg + " is allocatable", done);
            }
            else if (kind == "pv-smaller-than-device")
            {
                lvmRepair(pv->vgName, {"pvresize", arg}, arg + " fills its device", done);
            }
            else if (!f.safe)
            {
                done("refused: " + f.fix);
            }
            else
            {
                recreatePv(*pv, done);
            }
        }
        else if (kind == "image-detached")
        {
            try
            {
                done("fixed: attached as " + disks.attachLoop(arg));
            }
            catch (const std::exception& e)
            {
                done(std::string("failed: ") + e.what());
            }
        }
        else if (kind == "image-sparse")
        {
            try
            {
                disks.allocateImage(arg);
                done("fixed: " + arg + " is fully allocated");
            }
            catch (const std::exception& e)
            {
                done(std::string("failed: ") + e.what());
            }
        }
        else if (kind == "image-missing" && f.safe)
        {
            try
            {
                auto images = state.images();
                images.erase(std::remove(images.begin(), images.end(), arg), images.end());
                state.setImages(images);
                done("fixed: " + arg + " is no longer recorded for boot");
            }
            catch (const std::exception& e)
            {
                done(std::string("failed: ") + e.what());
            }
        }
        else if (kind == "vg-low")
        {
            keeper.addDisk(arg, "",
                           [done](const std::string& image, const std::string& device, Error e)
                           {
                               done(e ? "failed: " + describeError(e) : "fixed: added " + image + " as " + device);
                           });
        }
        else
        {
            done("refused: needs a person: " + f.fix);
        }
    }

    struct RepairRun
    {
        std::vector<std::string> requested; ///< empty: the safe set
        std::set<std::string> attempted;
        std::vector<std::pair<std::string, std::string>> results;
        RepairReply reply;
    };

    void step(std::shared_ptr<RepairRun> run)
    {
        auto self = shared_from_this();
        gather(
            [self, run](Error error)
            {
                if (error)
                {
                    for (const auto& id : run->requested)
                    {
                        if (!run->attempted.count(id))
                        {
                            run->results.emplace_back(id, "failed: " + describeError(error));
                        }
                    }
                    if (run->requested.empty())
                    {
                        run->results.emplace_back("diagnose", "failed: " + describeError(error));
                    }
                    run->reply(run->results);
                    return;
                }
                auto found = self->findings();
                const Finding* next = nullptr;
                std::string nextId;
                if (run->requested.empty())
                {
                    std::vector<const Finding*> safe;
                    for (const auto& f : found)
                    {
                        if (f.safe && !run->attempted.count(f.id))
                        {
                            safe.push_back(&f);
                        }
                    }
                    std::stable_sort(safe.begin(), safe.end(),
                                     [](const Finding* a, const Finding* b)
                                     {
                                         return rank(a->id) < rank(b->id);
                                     });
                    if (!safe.empty())
                    {
                        next = safe.front();
                        nextId = next->id;
                    }
                }
                else
                {
                    for (const auto& id : run->requested)
                    {
                        if (!run->attempted.count(id))
                        {
                            nextId = id;
                            break;
                        }
                    }
                    for (const auto& f : found)
                    {
                        if (f.id == nextId)
                        {
                            next = &f;
                        }
                    }
                    if (!nextId.empty() && !next && !knownKind(nextId))
                    {
                        run->attempted.insert(nextId);
                        run->results.emplace_back(nextId,
                                                  "failed: unknown finding id; ids are KIND:SUBJECT as Diagnose "
                                                  "lists them, KIND one of " +
                                                      kindList());
                    }
                    else if (!nextId.empty() && !next)
                    {
                        run->attempted.insert(nextId);
                        run->results.emplace_back(nextId, "ok: not found in a fresh diagnosis, nothing to do");
                        self->step(run);
                        return;
                    }
                }
                if (!next)
                {
                    run->reply(run->results);
                    return;
                }
                run->attempted.insert(nextId);
                spdlog::info("event=repair id={} fix=\"{}\"", nextId, next->fix);
                self->apply(*next,
                            [self, run, nextId](const std::string& result)
                            {
                                spdlog::info("event=repaired id={} result=\"{}\"", nextId, result);
                                run->results.emplace_back(nextId, result);
                                self->step(run);
                            });
            });
    }
};

Doctor::Doctor(Keeper& keeper, CommandRunner& runner, Filesystems& filesystems, Disks& disks, StateStore& state,
               std::string lvmCommand) :
    impl_(std::make_shared<Impl>(keeper, runner, filesystems, disks, state, std::move(lvmCommand)))
{
}

Doctor::~Doctor() = default;

void Doctor::setProgress(Progress progress)
{
    impl_->progress = std::move(progress);
}

void Doctor::diagnose(DiagnoseReply reply)
{
    auto self = impl_;
    impl_->gather(
        [self, reply](Error error)
        {
            if (error)
            {
                reply({}, error);
                return;
            }
            auto found = self->findings();
            spdlog::info("event=diagnosed findings={}", found.size());
            reply(found, nullptr);
        });
}

void Doctor::repair(std::vector<std::string> ids, RepairReply reply)
{
    auto run = std::make_shared<Impl::RepairRun>();
    std::stable_sort(ids.begin(), ids.end(),
                     [](const std::string& a, const std::string& b)
                     {
                         return rank(a) < rank(b);
                     });
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    run->requested = std::move(ids);
    run->reply = std::move(reply);
    impl_->step(run);
}

} // namespace lvkeeper

#pragma once

// Test doubles for the seams the Keeper talks through: a manual clock, a scripted command runner with a small
// LVM model behind it, and recording fakes of the filesystem, disk, state and watcher seams.

#include "lvkeeper/command.hpp"
#include "lvkeeper/executor.hpp"
#include "lvkeeper/fault_gate.hpp"
#include "lvkeeper/keeper.hpp"
#include "lvkeeper/lvm.hpp"
#include "lvkeeper/scheduler.hpp"
#include "lvkeeper/system.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace lvkeeper::test
{

// ---- time ----------------------------------------------------------------------------------------------------

/// A clock that only moves when the test says so; advance() fires due timers in due order.
class FakeScheduler : public Scheduler
{
  public:
    Clock::time_point now() const override
    {
        return now_;
    }

    std::chrono::system_clock::time_point wallNow() const override
    {
        // 2026-12-01T00:00:00Z plus the fake clock's movement.
        return std::chrono::system_clock::time_point(std::chrono::seconds(1796083200)) +
               std::chrono::duration_cast<std::chrono::system_clock::duration>(now_ - start_);
    }

    std::unique_ptr<Timer> after(std::chrono::milliseconds delay, std::function<void()> fn) override
    {
        auto entry = std::make_shared<Entry>();
        entry->due = now_ + delay;
        entry->seq = nextSeq_++;
        entry->fn = std::move(fn);
        entries_.push_back(entry);
        return std::make_unique<FakeTimer>(entry);
    }

    /// Moves the clock forward, firing every timer that falls due on the way (ties in creation order).
    void advance(std::chrono::milliseconds delta)
    {
        const auto target = now_ + delta;
        for (;;)
        {
            dropCancelled();
            auto next = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
                return a->due != b->due ? a->due < b->due : a->seq < b->seq;
            });
            if (next == entries_.end() || (*next)->due > target)
            {
                break;
            }
            auto entry = *next;
            entries_.erase(next);
            now_ = entry->due;
            auto fn = std::move(entry->fn);
            fn(); // may create or destroy timers
        }
        now_ = target;
    }

    /// Timers still armed.
    std::size_t pending()
    {
        dropCancelled();
        return entries_.size();
    }

  private:
    struct Entry
    {
        Clock::time_point due;
        std::uint64_t seq = 0;
        std::function<void()> fn;
        bool cancelled = false;
    };

    class FakeTimer : public Timer
    {
      public:
        explicit FakeTimer(std::shared_ptr<Entry> entry) : entry_(std::move(entry))
        {}
        ~FakeTimer() override
        {
            entry_->cancelled = true;
        }

      private:
        std::shared_ptr<Entry> entry_;
    };

    void dropCancelled()
    {
        entries_.erase(std::remove_if(entries_.begin(), entries_.end(), [](const auto& e) { return e->cancelled; }),
                       entries_.end());
    }

    // Far from the epoch, so that "no grow yet" and "a grow at time zero" cannot be confused.
    Clock::time_point now_{std::chrono::hours(1000)};
    Clock::time_point start_{std::chrono::hours(1000)};
    std::uint64_t nextSeq_ = 0;
    std::vector<std::shared_ptr<Entry>> entries_;
};

// ---- commands ------------------------------------------------------------------------------------------------

/// Records every argv; answers from a per-command script, else a per-command handler, else success.
/// Commands are keyed by argv[1] for lvm ("lvs", "lvextend") and by argv[0] otherwise ("resize2fs").
class FakeRunner : public CommandRunner
{
  public:
    struct Response
    {
        int exitCode = 0;
        std::string out;
        std::string err;
    };
    using Handler = std::function<Response(const std::vector<std::string>& argv)>;

    struct Call
    {
        std::string key;
        std::vector<std::string> argv;
        std::chrono::milliseconds timeout{0};
        bool background = false;
    };

    explicit FakeRunner(std::string lvmCommand = "lvm") : lvm_(std::move(lvmCommand))
    {}

    void run(std::vector<std::string> argv, CommandOptions options, Done done) override
    {
        const std::string key = keyOf(argv);
        calls_.push_back(Call{key, argv, options.timeout, options.background});
        Pending pending{key, std::move(argv), std::nullopt, std::move(done)};
        auto& script = scripts_[key];
        if (!script.empty())
        {
            pending.scripted = script.front();
            script.pop_front();
        }
        auto& holds = holds_[key];
        if (holds > 0)
        {
            --holds;
            held_.push_back(std::move(pending));
            return;
        }
        complete(std::move(pending));
    }

    /// The next call of key gets this response (queued, first in first out).
    void script(const std::string& key, Response response)
    {
        scripts_[key].push_back(std::move(response));
    }
    /// The next call of key exits with code and stderr.
    void failNext(const std::string& key, int exitCode, const std::string& err)
    {
        script(key, Response{exitCode, "", err});
    }
    /// Answers every unscripted call of key.
    void setHandler(const std::string& key, Handler handler)
    {
        handlers_[key] = std::move(handler);
    }
    /// The next call of key is held: its done runs only on release(key).
    void holdNext(const std::string& key)
    {
        ++holds_[key];
    }
    /// Completes the oldest held call of key; its response is computed now. False when none is held.
    bool release(const std::string& key)
    {
        auto it = std::find_if(held_.begin(), held_.end(), [&](const Pending& p) { return p.key == key; });
        if (it == held_.end())
        {
            return false;
        }
        Pending pending = std::move(*it);
        held_.erase(it);
        complete(std::move(pending));
        return true;
    }
    std::size_t heldCount(const std::string& key) const
    {
        return static_cast<std::size_t>(
            std::count_if(held_.begin(), held_.end(), [&](const Pending& p) { return p.key == key; }));
    }

    const std::vector<Call>& calls() const
    {
        return calls_;
    }
    /// Keys of all calls so far, in order: {"lvs", "lvextend", "resize2fs"}.
    std::vector<std::string> keys() const
    {
        std::vector<std::string> keys;
        for (const auto& c : calls_)
        {
            keys.push_back(c.key);
        }
        return keys;
    }
    /// Keys of calls made after the first `from` calls.
    std::vector<std::string> keysSince(std::size_t from) const
    {
        auto all = keys();
        return std::vector<std::string>(all.begin() + static_cast<std::ptrdiff_t>(std::min(from, all.size())),
                                        all.end());
    }
    std::size_t count(const std::string& key) const
    {
        return static_cast<std::size_t>(
            std::count_if(calls_.begin(), calls_.end(), [&](const Call& c) { return c.key == key; }));
    }
    /// argv of every call of key.
    std::vector<std::vector<std::string>> argvs(const std::string& key) const
    {
        std::vector<std::vector<std::string>> out;
        for (const auto& c : calls_)
        {
            if (c.key == key)
            {
                out.push_back(c.argv);
            }
        }
        return out;
    }
    std::string keyOf(const std::vector<std::string>& argv) const
    {
        if (argv.empty())
        {
            return "";
        }
        if (argv[0] == lvm_ && argv.size() > 1)
        {
            return argv[1];
        }
        auto slash = argv[0].rfind('/');
        return slash == std::string::npos ? argv[0] : argv[0].substr(slash + 1);
    }

  private:
    struct Pending
    {
        std::string key;
        std::vector<std::string> argv;
        std::optional<Response> scripted;
        Done done;
    };

    void complete(Pending pending)
    {
        Response response;
        if (pending.scripted)
        {
            response = *pending.scripted;
        }
        else if (auto h = handlers_.find(pending.key); h != handlers_.end())
        {
            response = h->second(pending.argv);
        }
        CommandResult result;
        result.argv = pending.argv;
        result.exitCode = response.exitCode;
        result.out = response.out;
        result.err = response.err;
        result.duration = std::chrono::milliseconds{12};
        pending.done(result); // may run more commands
    }

    std::string lvm_;
    std::vector<Call> calls_;
    std::map<std::string, std::deque<Response>> scripts_;
    std::map<std::string, Handler> handlers_;
    std::map<std::string, int> holds_;
    std::deque<Pending> held_;
};

// ---- LVM reports ---------------------------------------------------------------------------------------------

/// `lvm lvs --reportformat json --units b --nosuffix` output: every value a string, as lvm prints it.
inline std::string lvsJson(const std::vector<lvm::Lv>& lvs)
{
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& lv : lvs)
    {
        rows.push_back({{"lv_name", lv.name},
                        {"vg_name", lv.vgName},
                        {"lv_path", lv.path},
                        {"lv_dm_path", lv.dmPath},
                        {"lv_size", std::to_string(lv.size)},
                        {"lv_kernel_major", std::to_string(lv.kernelMajor)},
                        {"lv_kernel_minor", std::to_string(lv.kernelMinor)},
                        {"vg_free", std::to_string(lv.vgFree)},
                        {"vg_extent_size", std::to_string(lv.vgExtentSize)}});
    }
    return nlohmann::json{{"report", {{{"lv", rows}}}}}.dump(2);
}

/// `lvm lvs -a -o lv_name,vg_name,copy_percent,move_pv`: the moves in progress.
inline std::string movesJson(const std::vector<lvm::Move>& moves)
{
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& m : moves)
    {
        rows.push_back({{"lv_name", "[" + m.lvName + "]"},
                        {"vg_name", m.vgName},
                        {"copy_percent", std::to_string(m.percent)},
                        {"move_pv", m.sourcePv}});
    }
    return nlohmann::json{{"report", {{{"lv", rows}}}}}.dump(2);
}

inline std::string vgsJson(const std::vector<lvm::Vg>& vgs)
{
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& vg : vgs)
    {
        rows.push_back({{"vg_name", vg.name},
                        {"vg_size", std::to_string(vg.size)},
                        {"vg_free", std::to_string(vg.free)},
                        {"vg_extent_size", std::to_string(vg.extentSize)},
                        {"vg_extent_count", std::to_string(vg.extentCount)},
                        {"vg_free_count", std::to_string(vg.freeCount)},
                        {"pv_count", std::to_string(vg.pvCount)}});
    }
    return nlohmann::json{{"report", {{{"vg", rows}}}}}.dump(2);
}

inline std::string pvsJson(const std::vector<lvm::Pv>& pvs)
{
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& pv : pvs)
    {
        rows.push_back({{"pv_name", pv.name},
                        {"vg_name", pv.vgName},
                        {"pv_size", std::to_string(pv.size)},
                        {"pv_free", std::to_string(pv.free)},
                        {"dev_size", std::to_string(pv.devSize)},
                        {"pe_start", std::to_string(pv.peStart)},
                        {"pv_pe_count", std::to_string(pv.peCount)},
                        {"pv_pe_alloc_count", std::to_string(pv.peAllocCount)},
                        {"pv_attr", pv.allocatable ? "a--" : "u--"}});
    }
    return nlohmann::json{{"report", {{{"pv", rows}}}}}.dump(2);
}

/// A tiny LVM: reports come from these rows, lvextend/vgextend/pvcreate change them.
class FakeLvm
{
  public:
    std::vector<lvm::Lv> lvs;
    std::vector<lvm::Vg> vgs;
    std::vector<lvm::Pv> pvs;
    std::vector<lvm::Move> moves;
    std::uint64_t newPvSize = 1796 * MiB; ///< usable size pvcreate gives a new device (an 1800M image)

    lvm::Lv& lv(const std::string& vg, const std::string& name)
    {
        auto it = std::find_if(lvs.begin(), lvs.end(),
                               [&](const lvm::Lv& l) { return l.vgName == vg && l.name == name; });
        if (it == lvs.end())
        {
            throw std::logic_error("no LV " + vg + "/" + name + " in the fake");
        }
        return *it;
    }

    lvm::Vg& vg(const std::string& name)
    {
        auto it = std::find_if(vgs.begin(), vgs.end(), [&](const lvm::Vg& g) { return g.name == name; });
        if (it == vgs.end())
        {
            throw std::logic_error("no VG " + name + " in the fake");
        }
        return *it;
    }

    /// Sets a VG's free space everywhere lvm reports it.
    void setVgFree(const std::string& name, std::uint64_t bytes)
    {
        for (auto& l : lvs)
        {
            if (l.vgName == name)
            {
                l.vgFree = bytes;
            }
        }
        for (auto& g : vgs)
        {
            if (g.name == name)
            {
                g.free = bytes;
                g.freeCount = g.extentSize ? bytes / g.extentSize : 0;
            }
        }
    }

    /// Answers lvs/vgs/pvs from the model and applies lvextend, pvcreate and vgextend to it.
    void install(FakeRunner& runner)
    {
        runner.setHandler("lvs", [this](const std::vector<std::string>& argv) {
            bool all = std::find(argv.begin(), argv.end(), "-a") != argv.end();
            return FakeRunner::Response{0, all ? movesJson(moves) : lvsJson(lvs), ""};
        });
        runner.setHandler("vgs", [this](const auto&) { return FakeRunner::Response{0, vgsJson(vgs), ""}; });
        runner.setHandler("pvs", [this](const auto&) { return FakeRunner::Response{0, pvsJson(pvs), ""}; });
        runner.setHandler("lvextend", [this](const std::vector<std::string>& argv) { return lvextend(argv); });
        runner.setHandler("pvcreate", [this](const std::vector<std::string>& argv) {
            lvm::Pv pv;
            pv.name = argv.back();
            pv.size = newPvSize;
            pv.free = newPvSize;
            pv.allocatable = true;
            pvs.push_back(pv);
            return FakeRunner::Response{0, "", ""};
        });
        runner.setHandler("vgextend", [this](const std::vector<std::string>& argv) {
            // lvm vgextend <vg> <device>
            const std::string& name = argv.at(2);
            std::uint64_t added = 0;
            for (auto& pv : pvs)
            {
                if (pv.name == argv.at(3))
                {
                    pv.vgName = name;
                    added = pv.free;
                }
            }
            for (auto& g : vgs)
            {
                if (g.name == name)
                {
                    ++g.pvCount;
                    g.size += added;
                    setVgFree(name, g.free + added);
                }
            }
            return FakeRunner::Response{0, "", ""};
        });
    }

  private:
    FakeRunner::Response lvextend(const std::vector<std::string>& argv)
    {
        // lvm lvextend --size <bytes>b <vg>/<lv>
        std::string size = argv.at(3);
        if (size.empty() || size.back() != 'b')
        {
            return {3, "", "fake lvextend: size without the b suffix: " + size};
        }
        size.pop_back();
        const std::uint64_t target = std::stoull(size);
        const std::string& name = argv.at(4);
        const auto slash = name.find('/');
        auto& l = lv(name.substr(0, slash), name.substr(slash + 1));
        if (target <= l.size)
        {
            return {5, "", "  New size given (" + size + " bytes) not larger than existing size."};
        }
        const std::uint64_t delta = target - l.size;
        if (delta > l.vgFree)
        {
            return {5, "", "  Insufficient free space: needed more than vg_free."};
        }
        l.size = target;
        setVgFree(l.vgName, l.vgFree - delta);
        return {0, "", ""};
    }
};

// ---- filesystems, disks, state, watcher -----------------------------------------------------------------

class FakeFilesystems : public Filesystems
{
  public:
    std::map<std::string, MountInfo> mounts;  ///< by mount point
    std::map<std::string, FsUsage> usages;    ///< statvfs by path
    std::map<std::string, std::uint64_t> errors; ///< errorCount by mount point
    std::vector<HeldDeletedFile> held;
    std::map<std::string, std::uint64_t> fsSizes; ///< superblock size by mount point; absent means unknown
    std::vector<std::string> remounts; ///< mount points remountReadWrite was called for
    bool remountFails = false;
    std::size_t usageCalls = 0;

    std::optional<MountInfo> findMount(const std::string& mountPoint) override
    {
        auto it = mounts.find(mountPoint);
        return it == mounts.end() ? std::nullopt : std::optional<MountInfo>(it->second);
    }

    std::optional<MountInfo> mountOf(const std::string& path) override
    {
        std::optional<MountInfo> best;
        for (const auto& [point, mount] : mounts)
        {
            bool holds = point == "/" || path == point || path.compare(0, point.size() + 1, point + "/") == 0;
            if (holds && (!best || point.size() > best->mountPoint.size()))
            {
                best = mount;
            }
        }
        return best;
    }

    FsUsage usage(const std::string& path) override
    {
        ++usageCalls;
        auto it = usages.find(path);
        if (it == usages.end())
        {
            throw std::system_error(ENOENT, std::generic_category(), "statvfs " + path);
        }
        return it->second;
    }

    std::uint64_t errorCount(const MountInfo& mount) override
    {
        auto it = errors.find(mount.mountPoint);
        return it == errors.end() ? 0 : it->second;
    }

    void remountReadWrite(const MountInfo& mount) override
    {
        remounts.push_back(mount.mountPoint);
        if (remountFails)
        {
            throw std::system_error(EROFS, std::generic_category(), "mount " + mount.mountPoint);
        }
        mounts[mount.mountPoint].readOnly = false;
        usages[mount.mountPoint].readOnly = false;
    }

    std::vector<HeldDeletedFile> heldDeletedFiles(unsigned /*devMajor*/, unsigned /*devMinor*/) override
    {
        return held;
    }

    std::optional<std::uint64_t> filesystemSize(const MountInfo& mount) override
    {
        auto it = fsSizes.find(mount.mountPoint);
        return it == fsSizes.end() ? std::nullopt : std::optional<std::uint64_t>(it->second);
    }

    /// A filesystem of `size` bytes with `percent` of it used (df's view, no root reserve).
    static FsUsage usageOf(std::uint64_t size, double percent)
    {
        FsUsage u;
        u.size = size;
        u.used = static_cast<std::uint64_t>(static_cast<double>(size) * percent / 100.0);
        u.available = size - u.used;
        u.inodes = 1000000;
        u.inodesUsed = 1000;
        return u;
    }
};

/// UsageProbes on the fake clock: a look every `every` through FakeFilesystems::usage (so usageCalls counts
/// them), changed() once when a reading differs.
class FakeUsageProbes : public UsageProbes
{
  public:
    FakeUsageProbes(FakeScheduler& scheduler, FakeFilesystems& fs) : scheduler_(scheduler), fs_(fs) {}

    std::unique_ptr<UsageWatch> watch(const std::string& path, std::chrono::milliseconds every, const FsUsage& seen,
                                      std::function<void()> changed) override
    {
        auto probe = std::make_shared<Probe>(Probe{path, every, seen, std::move(changed), nullptr});
        arm(probe);
        return std::make_unique<Handle>(probe);
    }

  private:
    struct Probe
    {
        std::string path;
        std::chrono::milliseconds every;
        FsUsage seen;
        std::function<void()> changed;
        std::unique_ptr<Timer> timer;
    };
    struct Handle : UsageWatch
    {
        explicit Handle(std::shared_ptr<Probe> p) : probe(std::move(p)) {}
        ~Handle() override
        {
            probe->timer.reset();
            probe->changed = nullptr;
        }
        std::shared_ptr<Probe> probe;
    };

    void arm(const std::shared_ptr<Probe>& probe)
    {
        std::weak_ptr<Probe> weak = probe;
        probe->timer = scheduler_.after(probe->every,
                                        [this, weak]
                                        {
                                            auto p = weak.lock();
                                            if (!p)
                                            {
                                                return;
                                            }
                                            bool changed = true;
                                            try
                                            {
                                                changed = !fs_.usage(p->path).sameAs(p->seen);
                                            }
                                            catch (const std::exception&)
                                            {
                                            }
                                            if (!changed)
                                            {
                                                arm(p);
                                                return;
                                            }
                                            auto call = std::move(p->changed);
                                            p->changed = nullptr;
                                            if (call)
                                            {
                                                call();
                                            }
                                        });
    }

    FakeScheduler& scheduler_;
    FakeFilesystems& fs_;
};

class FakeDisks : public Disks
{
  public:
    std::vector<LoopDevice> loops;
    std::map<std::string, std::uint64_t> files;       ///< existing image files and their sizes
    std::map<std::string, std::string> signatures;    ///< by device
    std::vector<std::pair<std::string, std::uint64_t>> created;
    std::vector<std::string> removed;
    std::vector<std::string> attached; ///< images
    std::vector<std::string> detached; ///< devices
    bool attachFails = false;
    unsigned nextLoop = 0;

    std::vector<LoopDevice> loopDevices() override
    {
        return loops;
    }

    std::string attachLoop(const std::string& image) override
    {
        attached.push_back(image);
        if (attachFails)
        {
            throw std::system_error(EBUSY, std::generic_category(), "LOOP_CONFIGURE");
        }
        std::string device = "/dev/loop" + std::to_string(nextLoop++);
        loops.push_back({device, image});
        return device;
    }

    void detachLoop(const std::string& device) override
    {
        detached.push_back(device);
        loops.erase(std::remove_if(loops.begin(), loops.end(), [&](const LoopDevice& l) { return l.device == device; }),
                    loops.end());
    }

    void createImage(const std::string& path, std::uint64_t size) override
    {
        if (files.count(path))
        {
            throw std::system_error(EEXIST, std::generic_category(), path);
        }
        created.emplace_back(path, size);
        files[path] = size;
    }

    void removeImage(const std::string& path) override
    {
        removed.push_back(path);
        files.erase(path);
    }

    std::optional<std::string> signature(const std::string& device) override
    {
        auto it = signatures.find(device);
        return it == signatures.end() ? std::nullopt : std::optional<std::string>(it->second);
    }

    std::vector<std::string> listDirectory(const std::string& dir) override
    {
        std::string prefix = dir.empty() || dir.back() == '/' ? dir : dir + "/";
        std::vector<std::string> names;
        for (const auto& [path, size] : files)
        {
            if (path.compare(0, prefix.size(), prefix) == 0 && path.find('/', prefix.size()) == std::string::npos)
            {
                names.push_back(path.substr(prefix.size()));
            }
        }
        return names;
    }

    std::optional<std::pair<std::uint64_t, std::uint64_t>> fileAllocation(const std::string& path) override
    {
        auto it = files.find(path);
        if (it == files.end())
        {
            return std::nullopt;
        }
        auto sparse = holes.find(path);
        std::uint64_t hole = sparse == holes.end() ? 0 : sparse->second;
        return std::make_pair(it->second - hole, it->second);
    }

    std::vector<std::string> flushed; ///< devices flush() was called for, in order
    bool flushFails = false;

    void flush(const std::string& device) override
    {
        flushed.push_back(device);
        if (flushFails)
        {
            throw std::system_error(EIO, std::generic_category(), "fsync " + device);
        }
    }

    std::map<std::string, std::uint64_t> holes; ///< bytes not allocated, by image

    std::map<std::string, std::string> refusedImages; ///< image -> the reason imageRefusal gives
    std::optional<std::string> imageRefusal(const std::string& image, const std::string&) override
    {
        auto it = refusedImages.find(image);
        return it == refusedImages.end() ? std::nullopt : std::optional<std::string>(it->second);
    }
    std::vector<std::string> allocations;       ///< images allocateImage was called for
    bool allocateFails = false;

    void allocateImage(const std::string& path) override
    {
        allocations.push_back(path);
        if (allocateFails)
        {
            throw std::system_error(ENOSPC, std::generic_category(), "fallocate " + path);
        }
        holes.erase(path);
    }
};

class FakeStateStore : public StateStore
{
  public:
    std::vector<std::string> stored;
    std::size_t writes = 0;
    bool imagesUnreadable = false;
    bool imagesUnwritable = false;
    std::optional<std::string> journal;      ///< the journal file's text
    std::vector<std::string> journalHistory; ///< every text written, in order
    bool journalUnreadable = false;
    bool journalUnwritable = false;
    std::vector<std::string> setAside;

    std::vector<std::string> images() override
    {
        if (imagesUnreadable)
        {
            throw std::system_error(EIO, std::generic_category(), "read /var/lib/lvkeeper/images");
        }
        return stored;
    }
    void setImages(const std::vector<std::string>& images) override
    {
        if (imagesUnwritable)
        {
            throw std::system_error(ENOSPC, std::generic_category(), "write /var/lib/lvkeeper/images");
        }
        ++writes;
        stored = images;
    }
    std::optional<std::string> readJournal() override
    {
        if (journalUnreadable)
        {
            throw std::system_error(EIO, std::generic_category(), "read /var/lib/lvkeeper/journal");
        }
        return journal;
    }
    void writeJournal(const std::string& text) override
    {
        if (journalUnwritable)
        {
            throw std::system_error(ENOSPC, std::generic_category(), "write /var/lib/lvkeeper/journal.tmp");
        }
        journal = text;
        journalHistory.push_back(text);
    }
    std::string setAsideJournal() override
    {
        setAside.push_back(journal.value_or(""));
        journal.reset();
        return "/var/lib/lvkeeper/journal.corrupt-1";
    }
    std::string location() const override
    {
        return "/var/lib/lvkeeper";
    }
};

/// Text files by path, as the metrics writer left them.
class FakeTextFiles : public TextFiles
{
  public:
    std::map<std::string, std::string> files;
    std::size_t writes = 0;
    void replace(const std::string& path, const std::string& text) override
    {
        ++writes;
        files[path] = text;
    }
};

/// Runs offloaded work inline (as if the worker were instant), or holds it until released.
class FakeExecutor : public Executor
{
  public:
    struct Item
    {
        std::string what;
        Work work;
        Done done;
    };
    std::vector<std::string> names; ///< what was offloaded, in order
    bool hold = false;
    std::deque<Item> held;

    void offload(std::string what, Work work, Done done) override
    {
        names.push_back(what);
        if (hold)
        {
            held.push_back(Item{std::move(what), std::move(work), std::move(done)});
            return;
        }
        complete(Item{std::move(what), std::move(work), std::move(done)});
    }
    /// Runs the oldest held item; false when none is held.
    bool releaseOne()
    {
        if (held.empty())
        {
            return false;
        }
        Item item = std::move(held.front());
        held.pop_front();
        complete(std::move(item));
        return true;
    }

  private:
    static void complete(Item item)
    {
        std::exception_ptr error;
        try
        {
            item.work();
        }
        catch (...)
        {
            error = std::current_exception();
        }
        if (item.done)
        {
            item.done(error);
        }
    }
};

class FakeWatcher : public ActivityWatcher
{
  public:
    std::vector<std::string> watchCalls;
    std::vector<std::string> unwatchCalls;
    std::set<std::string> watched;

    void watch(const std::string& mountPoint) override
    {
        watchCalls.push_back(mountPoint);
        watched.insert(mountPoint);
    }
    void unwatch(const std::string& mountPoint) override
    {
        unwatchCalls.push_back(mountPoint);
        watched.erase(mountPoint);
    }
};

// ---- signals -------------------------------------------------------------------------------------------------

class RecordingListener : public KeeperListener
{
  public:
    struct Threshold
    {
        std::string volume;
        double usedPercent;
        std::uint64_t available;
    };
    struct Grown
    {
        std::string volume;
        std::uint64_t oldSize;
        std::uint64_t newSize;
        std::string reason;
    };
    struct Disk
    {
        std::string vg;
        std::string image;
        std::string device;
        std::uint64_t size;
    };

    std::vector<Threshold> thresholds;
    std::vector<Grown> grows;
    std::vector<std::pair<std::string, std::string>> growFailures; ///< volume, error
    std::vector<Disk> disksAdded;
    std::vector<std::string> remounts;
    std::vector<std::pair<std::string, std::string>> readOnlys;  ///< volume, reason
    std::vector<std::pair<std::string, std::string>> exhausted;  ///< volume, reason
    std::vector<std::size_t> changed;
    std::vector<std::string> statuses;
    std::size_t replaced = 0;

    void thresholdCrossed(const std::string& volume, double usedPercent, std::uint64_t available) override
    {
        thresholds.push_back({volume, usedPercent, available});
    }
    void grown(const std::string& volume, std::uint64_t oldSize, std::uint64_t newSize,
               const std::string& reason) override
    {
        grows.push_back({volume, oldSize, newSize, reason});
    }
    void growFailed(const std::string& volume, const std::string& error) override
    {
        growFailures.emplace_back(volume, error);
    }
    void diskAdded(const std::string& vg, const std::string& image, const std::string& device,
                   std::uint64_t size) override
    {
        disksAdded.push_back({vg, image, device, size});
    }
    void remounted(const std::string& volume) override
    {
        remounts.push_back(volume);
    }
    void readOnly(const std::string& volume, const std::string& reason) override
    {
        readOnlys.emplace_back(volume, reason);
    }
    void spaceExhausted(const std::string& volume, const std::string& reason) override
    {
        exhausted.emplace_back(volume, reason);
    }
    void volumeChanged(std::size_t index) override
    {
        changed.push_back(index);
    }
    void statusChanged(const std::string& status) override
    {
        statuses.push_back(status);
    }
    void volumesReplaced() override
    {
        ++replaced;
    }
    void progress(const std::string& job, double fraction) override
    {
        progresses.emplace_back(job, fraction);
    }
    std::vector<std::pair<std::string, double>> progresses;
};

} // namespace lvkeeper::test

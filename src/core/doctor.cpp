#include "lvkeeper/doctor.hpp"

#include "lvkeeper/errors.hpp"
#include "lvkeeper/lvm.hpp"
#include "lvkeeper/operations.hpp"
#include "lvkeeper/size.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

namespace lvkeeper
{

namespace
{

/// How long a look serves callers who are not root (who cannot have changed anything meanwhile).
constexpr std::chrono::milliseconds reuseFor{2000};

/// A move whose progress has not changed for this long has lost its poller.
constexpr std::chrono::seconds moveStalled{30};

std::string kindList()
{
    std::string list;
    for (const auto& kind : findingKinds())
    {
        list += (list.empty() ? "" : ", ") + kind;
    }
    return list;
}

bool knownKind(const std::string& id)
{
    const auto& kinds = findingKinds();
    return std::find(kinds.begin(), kinds.end(), findingKind(id)) != kinds.end() && !findingSubject(id).empty();
}

} // namespace

std::string_view repairOutcomeName(RepairOutcome outcome)
{
    switch (outcome)
    {
    case RepairOutcome::Fixed:
        return "fixed";
    case RepairOutcome::Failed:
        return "failed";
    case RepairOutcome::Refused:
        return "refused";
    case RepairOutcome::Ok:
        return "ok";
    }
    return "failed";
}

std::string RepairResult::describe() const
{
    return std::string(repairOutcomeName(outcome)) + ": " + text;
}

struct Doctor::Impl : std::enable_shared_from_this<Doctor::Impl>
{
    explicit Impl(Keeper& k) : keeper(k), ctx(k.context()) {}

    Keeper& keeper;
    OperationContext& ctx;

    using Gathered = std::function<void(std::shared_ptr<const Snapshot> snapshot, Error error)>;
    bool gathering = false;
    /// The callers of the look that is running: they all asked before it started.
    std::vector<Gathered> answering;
    /// Callers who asked while it ran: the running look may predate their question, so they share the next.
    std::vector<Gathered> next;
    /// The last look and when it started: reused for a moment by callers who cannot change storage.
    std::shared_ptr<const Snapshot> last;
    Scheduler::Clock::time_point lastStarted{};
    /// Source PV -> the progress last seen and since when: a move that stands still was interrupted.
    std::map<std::string, std::pair<double, Scheduler::Clock::time_point>> moveSeen;

    // ---- looking ---------------------------------------------------------------------------------------

    /// A look that starts after the question: a reply never predates a change the caller made first.
    /// Callers that arrive while a look runs share the one after it, so a burst costs two looks and
    /// never two lvm scans at once. mayReuse (a caller who is not root): a look started less than
    /// reuseFor ago will do, so a flood of them costs no more scans than one.
    void diagnosis(bool mayReuse, Gathered done)
    {
        if (mayReuse && last && ctx.scheduler.now() - lastStarted < reuseFor)
        {
            done(last, nullptr);
            return;
        }
        if (gathering)
        {
            next.push_back(std::move(done));
            return;
        }
        answering.push_back(std::move(done));
        look();
    }

    void look()
    {
        gathering = true;
        const auto started = ctx.scheduler.now();
        auto self = shared_from_this();
        gather(
            [self, started](const std::shared_ptr<const Snapshot>& snapshot, Error error)
            {
                self->gathering = false;
                if (!error)
                {
                    self->last = snapshot;
                    self->lastStarted = started;
                }
                auto callers = std::move(self->answering);
                self->answering = std::move(self->next);
                self->next.clear();
                if (!self->answering.empty())
                {
                    self->look();
                }
                for (auto& caller : callers)
                {
                    caller(snapshot, error);
                }
            });
    }

    void gather(Gathered done)
    {
        auto self = shared_from_this();
        auto snapshot = std::make_shared<Snapshot>();
        keeper.rescan(
            [self, snapshot, done]
            {
                self->ctx.lvm.pvs(
                    [self, snapshot, done](std::vector<lvm::Pv> pvs, Error error)
                    {
                        if (error)
                        {
                            done(nullptr, error);
                            return;
                        }
                        snapshot->pvs = std::move(pvs);
                        self->ctx.lvm.vgs(
                            [self, snapshot, done](std::vector<lvm::Vg> vgs, Error e)
                            {
                                if (e)
                                {
                                    done(nullptr, e);
                                    return;
                                }
                                snapshot->vgs = std::move(vgs);
                                self->ctx.lvm.moves(
                                    [self, snapshot, done](std::vector<lvm::Move> moves, Error e2)
                                    {
                                        if (e2)
                                        {
                                            done(nullptr, e2);
                                            return;
                                        }
                                        snapshot->moves = std::move(moves);
                                        self->readSystem(snapshot, done);
                                    },
                                    true);
                            },
                            true);
                    },
                    true);
            },
            true);
    }

    /// What lives outside LVM, read off the loop: loop devices, the image record, images, deleted files.
    void readSystem(const std::shared_ptr<Snapshot>& snapshot, Gathered done)
    {
        const auto& volumes = keeper.volumes();
        for (const auto& volume : volumes)
        {
            snapshot->volumes.push_back(Snapshot::Volume{volume, 0, 0});
        }
        snapshot->watchedVgs = keeper.watchedVolumeGroups();
        snapshot->disks = keeper.config().disks;
        snapshot->stateDirectory = ctx.images.location().substr(0, ctx.images.location().rfind('/'));
        snapshot->unsettled = ctx.journal.unsettled();
        if (auto problem = ctx.journal.problem())
        {
            snapshot->journalProblem = std::make_pair(problem->id, problem->text);
        }
        for (const auto& intent : ctx.journal.owned())
        {
            if (intent.kind == "recreate-pv")
            {
                snapshot->movesOfOurs.insert(intent.field("device"));
            }
        }
        trackMoves(*snapshot);
        auto self = shared_from_this();
        ctx.executor.offload(
            "diagnose",
            [self, snapshot]
            {
                auto& s = *snapshot;
                auto& disks = self->ctx.disks;
                auto& fs = self->ctx.fs;
                s.loops = disks.loopDevices();
                try
                {
                    s.recordedImages = self->ctx.stateStore.images();
                }
                catch (const std::exception& e)
                {
                    s.recordProblem = e.what();
                }
                std::set<std::string> candidates(s.recordedImages.begin(), s.recordedImages.end());
                for (const auto& loop : s.loops)
                {
                    candidates.insert(loop.backingFile);
                }
                for (const auto& image : candidates)
                {
                    try
                    {
                        s.allocations[image] = disks.fileAllocation(image);
                    }
                    catch (const std::exception&)
                    {
                        s.allocations[image] = std::nullopt;
                    }
                }
                for (auto& v : s.volumes)
                {
                    if (!v.state.mounted)
                    {
                        continue;
                    }
                    try
                    {
                        v.errorCount = v.state.readOnly ? fs.errorCount(v.state.mount) : 0;
                        v.filesystemSize = fs.filesystemSize(v.state.mount).value_or(v.state.usage.size);
                    }
                    catch (const std::exception&)
                    {
                        v.filesystemSize = v.state.usage.size;
                    }
                }
                std::set<std::pair<unsigned, unsigned>> seen;
                auto addPlace = [&](const std::string& name, const std::optional<MountInfo>& m)
                {
                    if (!m || !seen.insert({m->devMajor, m->devMinor}).second)
                    {
                        return;
                    }
                    Snapshot::Place place{name, *m, {}, ""};
                    try
                    {
                        place.held = fs.heldDeletedFiles(m->devMajor, m->devMinor);
                    }
                    catch (const std::exception& e)
                    {
                        place.scanError = e.what();
                    }
                    s.places.push_back(std::move(place));
                };
                try
                {
                    addPlace(s.disks.imageDirectory, fs.mountOf(s.disks.imageDirectory));
                    s.imageDirectoryUsage = fs.usage(s.disks.imageDirectory);
                }
                catch (const std::exception&)
                {
                }
                for (const auto& v : s.volumes)
                {
                    if (v.state.mounted)
                    {
                        addPlace(v.state.config.mountPoint, v.state.mount);
                    }
                }
            },
            [snapshot, done](Error error)
            {
                done(snapshot, error);
            });
    }

    void trackMoves(Snapshot& s)
    {
        auto now = ctx.scheduler.now();
        std::map<std::string, std::pair<double, Scheduler::Clock::time_point>> next;
        for (const auto& m : s.moves)
        {
            auto it = moveSeen.find(m.sourcePv);
            if (it != moveSeen.end() && it->second.first == m.percent)
            {
                next[m.sourcePv] = it->second;
                if (now - it->second.second >= moveStalled)
                {
                    s.stalledMoves.insert(m.sourcePv);
                }
            }
            else
            {
                next[m.sourcePv] = {m.percent, now};
            }
        }
        moveSeen = std::move(next);
    }

    // ---- repairing -------------------------------------------------------------------------------------

    using Result = std::function<void(RepairOutcome outcome, const std::string& text)>;

    /// An operation's end as a repair result.
    static RepairDone asResult(Result done)
    {
        return [done](Error error, const std::string& fixed)
        {
            if (error)
            {
                done(RepairOutcome::Failed, describeError(error));
                return;
            }
            done(RepairOutcome::Fixed, fixed);
        };
    }

    /// Runs an operation in the VG's lane (after what is there); Busy when lvkeeperd stops first.
    template <typename Op>
    void inLane(const std::string& vg, std::shared_ptr<Op> op, Result done)
    {
        keeper.enqueue(
            vg, op->kind(),
            [op, done](JobQueue::Finish finish)
            {
                op->run(
                    [done, finish](Error error, const std::string& fixed)
                    {
                        asResult(done)(error, fixed);
                        finish();
                    });
            },
            [done]
            {
                done(RepairOutcome::Failed, "lvkeeperd is stopping; nothing was changed");
            });
    }

    std::string backingFileOf(const Snapshot& s, const std::string& device)
    {
        for (const auto& loop : s.loops)
        {
            if (loop.device == device)
            {
                return loop.backingFile;
            }
        }
        return "";
    }

    void apply(const Snapshot& s, const Finding& f, Result done)
    {
        std::string kind = findingKind(f.id);
        std::string arg = findingSubject(f.id);
        auto fromError = [done](const std::string& fixed)
        {
            return [done, fixed](Error e)
            {
                if (e)
                {
                    done(RepairOutcome::Failed, describeError(e));
                    return;
                }
                done(RepairOutcome::Fixed, fixed);
            };
        };
        const lvm::Pv* pv = nullptr;
        for (const auto& p : s.pvs)
        {
            if (p.name == arg)
            {
                pv = &p;
            }
        }
        if (kind == "read-only")
        {
            keeper.remount(arg, fromError(arg + " is read-write"));
        }
        else if (kind == "lv-bigger-than-fs")
        {
            keeper.healFilesystem(arg,
                                  [fromError, arg](std::uint64_t, Error e)
                                  {
                                      fromError("the filesystem of " + arg + " fills its LV")(e);
                                  });
        }
        else if ((kind == "pv-not-allocatable" || kind == "pv-smaller-than-device" || kind == "pv-data-offset") &&
                 (!pv || !s.watchedVgs.count(pv->vgName)))
        {
            done(RepairOutcome::Refused, arg + " is not a PV of a watched volume group");
        }
        else if (kind == "pv-not-allocatable")
        {
            inLane(pv->vgName,
                   std::make_shared<PvCommandOperation>(ctx, pv->vgName, lvm::pvchangeAllocatableArgs(arg),
                                                        arg + " is allocatable"),
                   done);
        }
        else if (kind == "pv-smaller-than-device")
        {
            inLane(pv->vgName,
                   std::make_shared<PvCommandOperation>(ctx, pv->vgName, lvm::pvresizeArgs(arg),
                                                        arg + " fills its device"),
                   done);
        }
        else if (kind == "pv-data-offset" && f.safe)
        {
            auto op = std::make_shared<RecreatePvOperation>(ctx, pv->vgName, arg, backingFileOf(s, arg));
            op->run(asResult(done));
        }
        else if (kind == "image-detached" || kind == "image-sparse" || (kind == "image-missing" && f.safe))
        {
            ImageRepair what = kind == "image-detached" ? ImageRepair::Attach
                               : kind == "image-sparse" ? ImageRepair::Allocate
                                                        : ImageRepair::Forget;
            auto op = std::make_shared<ImageOperation>(ctx, what, arg);
            auto vgs = keeper.watchedVolumeGroups();
            std::string lane = vgs.empty() ? std::string("images") : *vgs.begin();
            inLane(lane, op, done);
        }
        else if (kind == "vg-low")
        {
            keeper.addDisk(arg, "",
                           [done](const std::string& image, const std::string& device, Error e)
                           {
                               if (e)
                               {
                                   done(RepairOutcome::Failed, describeError(e));
                                   return;
                               }
                               done(RepairOutcome::Fixed, "added " + image + " as " + device);
                           });
        }
        else if (kind == "operation-interrupted")
        {
            keeper.settle(std::strtoull(arg.c_str(), nullptr, 10), fromError("operation " + arg + " is settled"));
        }
        else if (kind == "pvmove-interrupted")
        {
            ctx.lvm.run(lvm::pvmoveResumeArgs(),
                        [done, arg](const CommandResult& r)
                        {
                            if (!r.ok())
                            {
                                done(RepairOutcome::Failed, r.describe());
                                return;
                            }
                            done(RepairOutcome::Fixed, "the pvmove of " + arg + " goes on in the background");
                        });
        }
        else
        {
            done(RepairOutcome::Refused, "needs a person: " + f.fix);
        }
    }

    struct RepairRun
    {
        std::vector<std::string> given;  ///< as the caller gave them (one result each, in this order)
        std::vector<std::string> todo;   ///< distinct, in repair order
        std::set<std::string> attempted; ///< ids tried (or answered) already
        std::map<std::string, RepairResult> byId;
        std::vector<RepairResult> done; ///< in the order they happened (for the safe set)
        RepairReply reply;
    };

    void answer(const std::shared_ptr<RepairRun>& run)
    {
        if (run->given.empty())
        {
            run->reply(run->done);
            return;
        }
        std::vector<RepairResult> results;
        for (const auto& id : run->given)
        {
            auto it = run->byId.find(id);
            results.push_back(it != run->byId.end() ? it->second
                                                    : RepairResult{id, RepairOutcome::Failed, "not attempted"});
        }
        run->reply(results);
    }

    void record(const std::shared_ptr<RepairRun>& run, RepairResult result)
    {
        run->attempted.insert(result.id);
        run->byId[result.id] = result;
        run->done.push_back(std::move(result));
    }

    void step(std::shared_ptr<RepairRun> run)
    {
        // Ids that name no kind of finding are answered without looking.
        for (const auto& id : run->todo)
        {
            if (!run->attempted.count(id) && !knownKind(id))
            {
                record(run,
                       {id, RepairOutcome::Failed,
                        "unknown finding id; ids are KIND:SUBJECT as Diagnose lists them, KIND one of " + kindList()});
            }
        }
        bool pending = run->given.empty() || std::any_of(run->todo.begin(), run->todo.end(),
                                                         [&](const std::string& id)
                                                         {
                                                             return !run->attempted.count(id);
                                                         });
        if (!pending)
        {
            answer(run);
            return;
        }
        auto self = shared_from_this();
        diagnosis(
            false,
            [self, run](const std::shared_ptr<const Snapshot>& snapshot, Error error)
            {
                if (error)
                {
                    for (const auto& id : run->todo)
                    {
                        if (!run->attempted.count(id))
                        {
                            self->record(run, {id, RepairOutcome::Failed, describeError(error)});
                        }
                    }
                    if (run->given.empty())
                    {
                        self->record(run, {"diagnose", RepairOutcome::Failed, describeError(error)});
                    }
                    self->answer(run);
                    return;
                }
                auto found = findings(*snapshot, 0);
                const Finding* next = nullptr;
                if (run->given.empty())
                {
                    for (const auto& f : found)
                    {
                        if (f.safe && !run->attempted.count(f.id) && (!next || repairRank(f.id) < repairRank(next->id)))
                        {
                            next = &f;
                        }
                    }
                }
                else
                {
                    for (const auto& id : run->todo)
                    {
                        if (run->attempted.count(id))
                        {
                            continue;
                        }
                        auto it = std::find_if(found.begin(), found.end(),
                                               [&](const Finding& f)
                                               {
                                                   return f.id == id;
                                               });
                        if (it == found.end())
                        {
                            self->record(run, {id, RepairOutcome::Ok, "not found in a fresh diagnosis, nothing to do"});
                            continue;
                        }
                        next = &*it;
                        break;
                    }
                }
                if (!next)
                {
                    self->answer(run);
                    return;
                }
                std::string id = next->id;
                run->attempted.insert(id);
                spdlog::info("event=repair id={} fix=\"{}\"", id, next->fix);
                self->apply(*snapshot, *next,
                            [self, run, id](RepairOutcome outcome, const std::string& text)
                            {
                                RepairResult result{id, outcome, text};
                                spdlog::info("event=repaired id={} result=\"{}\"", id, result.describe());
                                self->record(run, result);
                                self->last.reset(); // what it changed is looked at afresh, by everyone
                                self->step(run);
                            });
            });
    }
};

Doctor::Doctor(Keeper& keeper) : impl_(std::make_shared<Impl>(keeper)) {}

Doctor::~Doctor() = default;

void Doctor::diagnose(uid_t viewer, DiagnoseReply reply)
{
    if (impl_->keeper.stopping())
    {
        reply({}, std::make_exception_ptr(KeeperError(ErrorKind::Busy, "lvkeeperd is stopping")));
        return;
    }
    impl_->diagnosis(viewer != 0, [viewer, reply](const std::shared_ptr<const Snapshot>& snapshot, Error error)
                     {
                         if (error)
                         {
                             reply({}, error);
                             return;
                         }
                         auto found = findings(*snapshot, viewer);
                         spdlog::info("event=diagnosed findings={}", found.size());
                         reply(found, nullptr);
                     });
}

void Doctor::repair(std::vector<std::string> ids, RepairReply reply)
{
    auto run = std::make_shared<Impl::RepairRun>();
    run->given = ids;
    std::stable_sort(ids.begin(), ids.end(),
                     [](const std::string& a, const std::string& b)
                     {
                         return repairRank(a) < repairRank(b);
                     });
    for (auto& id : ids)
    {
        if (std::find(run->todo.begin(), run->todo.end(), id) == run->todo.end())
        {
            run->todo.push_back(std::move(id));
        }
    }
    run->reply = std::move(reply);
    if (impl_->keeper.stopping())
    {
        for (const auto& id : run->todo)
        {
            impl_->record(run, {id, RepairOutcome::Failed, "lvkeeperd is stopping; nothing was changed"});
        }
        impl_->answer(run);
        return;
    }
    impl_->step(run);
}

} // namespace lvkeeper

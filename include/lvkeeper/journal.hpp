#pragma once

#include "lvkeeper/executor.hpp"
#include "lvkeeper/system.hpp"

#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lvkeeper
{

/// One operation that has started changing the system and not finished: what it is, the step it is about to
/// run (or runs), and what a later start needs to finish or undo it.
struct Intent
{
    std::uint64_t id = 0;
    std::string kind;  ///< "grow", "add-disk", "recreate-pv"
    std::string step;  ///< "lvextend", "pvcreate", ...
    std::string since; ///< when it started (wall clock, for people)
    std::map<std::string, std::string> fields;

    std::string field(const std::string& name) const
    {
        auto it = fields.find(name);
        return it == fields.end() ? std::string() : it->second;
    }
};

/// The journal's file format (JSON). parseJournal throws std::invalid_argument naming what is wrong.
std::string serializeJournal(const std::vector<Intent>& intents);
std::vector<Intent> parseJournal(std::string_view text);

/// The intent journal under /var/lib/lvkeeper: before each step that changes the system an operation records
/// what it is about to do, durably; at start the open intents are finished or undone. Writes run off the loop,
/// one at a time; a write carries every change made before it started. A journal that cannot be read, parsed or
/// written is reported (problem()) and never stops the daemon.
class Journal
{
  public:
    using Error = std::exception_ptr;
    using Done = std::function<void(Error error)>;

    Journal(StateStore& store, Executor& executor);

    /// Reads the journal (once, at start). A corrupt one is set aside and reported; done() gets what was open.
    void load(std::function<void(std::vector<Intent> open)> done);
    /// Records intent (a new one gets an id): done(nullptr) once that is on stable storage.
    void record(Intent& intent, Done done);
    /// The operation is over: its intent is removed; done() once that is durable (or could not be made so).
    void close(std::uint64_t id, Done done = {});
    /// The intents still open.
    std::vector<Intent> open() const;
    /// A running operation owns intent id (while owner lives): it is being settled, not left over.
    void own(std::uint64_t id, std::weak_ptr<void> owner);
    /// Open intents no living operation owns: left half-done, for Diagnose.
    std::vector<Intent> unsettled() const;
    /// Open intents a living operation owns.
    std::vector<Intent> owned() const;
    /// What is wrong with the journal file, if anything ("journal-corrupt:...", "journal-unwritable:...").
    struct Problem
    {
        std::string id;
        std::string text;
    };
    std::optional<Problem> problem() const
    {
        return problem_;
    }

  private:
    void write();

    StateStore& store_;
    Executor& executor_;
    std::map<std::uint64_t, Intent> open_;
    std::map<std::uint64_t, std::weak_ptr<void>> owners_;
    std::uint64_t nextId_ = 1;
    bool writing_ = false;
    bool dirty_ = false;
    std::vector<Done> waiting_;  ///< done once the write in flight (or the next one) lands
    std::vector<Done> inFlight_; ///< the waiters the write in flight answers
    std::optional<Problem> problem_;
    bool unwritableLogged_ = false;
};

} // namespace lvkeeper

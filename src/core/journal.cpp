#include "lvkeeper/journal.hpp"

#include "lvkeeper/errors.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <memory>
#include <stdexcept>

namespace lvkeeper
{

namespace
{

using nlohmann::json;

constexpr int formatVersion = 1;

} // namespace

std::string serializeJournal(const std::vector<Intent>& intents)
{
    json list = json::array();
    for (const auto& intent : intents)
    {
        list.push_back({{"id", intent.id},
                        {"kind", intent.kind},
                        {"step", intent.step},
                        {"since", intent.since},
                        {"fields", intent.fields}});
    }
    return json{{"version", formatVersion}, {"intents", list}}.dump(1) + "\n";
}

std::vector<Intent> parseJournal(std::string_view text)
{
    const json root = json::parse(text.begin(), text.end(), nullptr, false);
    if (root.is_discarded() || !root.is_object())
    {
        throw std::invalid_argument("not a JSON object");
    }
    if (!root.contains("version") || root["version"] != formatVersion)
    {
        throw std::invalid_argument("unknown format version");
    }
    if (!root.contains("intents") || !root["intents"].is_array())
    {
        throw std::invalid_argument("no \"intents\" list");
    }
    std::vector<Intent> intents;
    for (const auto& row : root["intents"])
    {
        if (!row.is_object() || !row.contains("id") || !row["id"].is_number_unsigned() || !row.contains("kind") ||
            !row["kind"].is_string() || !row.contains("step") || !row["step"].is_string())
        {
            throw std::invalid_argument("an intent lacks its id, kind or step");
        }
        Intent intent;
        intent.id = row["id"].get<std::uint64_t>();
        intent.kind = row["kind"].get<std::string>();
        intent.step = row["step"].get<std::string>();
        if (row.contains("since") && row["since"].is_string())
        {
            intent.since = row["since"].get<std::string>();
        }
        if (row.contains("fields"))
        {
            if (!row["fields"].is_object())
            {
                throw std::invalid_argument("the fields of intent " + std::to_string(intent.id) + " are not an object");
            }
            for (const auto& [key, value] : row["fields"].items())
            {
                if (!value.is_string())
                {
                    throw std::invalid_argument("field " + key + " of intent " + std::to_string(intent.id) +
                                                " is not a string");
                }
                intent.fields[key] = value.get<std::string>();
            }
        }
        intents.push_back(std::move(intent));
    }
    return intents;
}

Journal::Journal(StateStore& store, Executor& executor) : store_(store), executor_(executor) {}

void Journal::load(std::function<void(std::vector<Intent> open)> done)
{
    auto text = std::make_shared<std::optional<std::string>>();
    executor_.offload(
        "read the journal",
        [this, text]
        {
            *text = store_.readJournal();
        },
        [this, text, done = std::move(done)](Error error)
        {
            std::vector<Intent> intents;
            std::string where = store_.location() + "/journal";
            std::string broken;
            if (error)
            {
                broken = "cannot be read: " + describeError(error);
                problem_ = Problem{"journal-unreadable:" + where, where + " " + broken};
            }
            else if (*text)
            {
                try
                {
                    intents = parseJournal(**text);
                }
                catch (const std::exception& e)
                {
                    broken = std::string("is corrupt: ") + e.what();
                    problem_ = Problem{"journal-corrupt:" + where, where + " " + broken};
                }
            }
            if (!broken.empty())
            {
                // Keep it for the admin, out of the way of new intents: half-done work it names is found again
                // by Diagnose from the system itself.
                try
                {
                    std::string aside = store_.setAsideJournal();
                    problem_->text += "; it was moved to " + aside +
                                      " (read it for operations that may be half-done, "
                                      "run Diagnose, then remove it)";
                    spdlog::error("event=journal-set-aside path={} moved_to={} reason=\"{}\"", where, aside, broken);
                }
                catch (const std::exception& e)
                {
                    spdlog::error("event=journal-broken path={} reason=\"{}\" set_aside_error=\"{}\"", where, broken,
                                  e.what());
                }
            }
            for (const auto& intent : intents)
            {
                open_[intent.id] = intent;
                nextId_ = std::max(nextId_, intent.id + 1);
            }
            done(std::move(intents));
        });
}

void Journal::record(Intent& intent, Done done)
{
    if (intent.id == 0)
    {
        intent.id = nextId_++;
    }
    open_[intent.id] = intent;
    dirty_ = true;
    waiting_.push_back(std::move(done));
    write();
}

void Journal::close(std::uint64_t id, Done done)
{
    owners_.erase(id);
    if (open_.erase(id) == 0)
    {
        if (done)
        {
            done(nullptr);
        }
        return;
    }
    dirty_ = true;
    waiting_.push_back(std::move(done));
    write();
}

void Journal::own(std::uint64_t id, std::weak_ptr<void> owner)
{
    owners_[id] = std::move(owner);
}

std::vector<Intent> Journal::unsettled() const
{
    std::vector<Intent> intents;
    for (const auto& [id, intent] : open_)
    {
        auto it = owners_.find(id);
        if (it == owners_.end() || it->second.expired())
        {
            intents.push_back(intent);
        }
    }
    return intents;
}

std::vector<Intent> Journal::owned() const
{
    std::vector<Intent> intents;
    for (const auto& [id, intent] : open_)
    {
        auto it = owners_.find(id);
        if (it != owners_.end() && !it->second.expired())
        {
            intents.push_back(intent);
        }
    }
    return intents;
}

std::vector<Intent> Journal::open() const
{
    std::vector<Intent> intents;
    for (const auto& [id, intent] : open_)
    {
        intents.push_back(intent);
    }
    return intents;
}

void Journal::write()
{
    if (writing_ || !dirty_)
    {
        return;
    }
    writing_ = true;
    dirty_ = false;
    inFlight_ = std::move(waiting_);
    waiting_.clear();
    std::string text = serializeJournal(open());
    executor_.offload(
        "write the journal",
        [this, text = std::move(text)]
        {
            store_.writeJournal(text);
        },
        [this](Error error)
        {
            writing_ = false;
            auto answered = std::move(inFlight_);
            inFlight_.clear();
            std::string where = store_.location() + "/journal";
            if (error)
            {
                if (!unwritableLogged_)
                {
                    spdlog::error("event=journal-write-failed path={} error=\"{}\"", where, describeError(error));
                    unwritableLogged_ = true;
                }
                if (!problem_ || problem_->id.rfind("journal-unwritable:", 0) == 0)
                {
                    problem_ = Problem{"journal-unwritable:" + where,
                                       where + " cannot be written: " + describeError(error) +
                                           "; half-done operations are not recorded until it can"};
                }
            }
            else if (problem_ && problem_->id.rfind("journal-unwritable:", 0) == 0)
            {
                spdlog::info("event=journal-writable path={}", where);
                problem_.reset();
                unwritableLogged_ = false;
            }
            auto failure =
                error ? std::make_exception_ptr(KeeperError(ErrorKind::Failed, "cannot record the operation in " +
                                                                                   where + ": " + describeError(error)))
                      : nullptr;
            for (auto& done : answered)
            {
                if (done)
                {
                    done(failure);
                }
            }
            write();
        });
}

} // namespace lvkeeper

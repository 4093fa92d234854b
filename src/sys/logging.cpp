#include "lvkeeper/sys/logging.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-journal.h>
#include <sys/uio.h>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace lvkeeper::sys
{

namespace
{

/// The events that have an entry in catalog/lvkeeper.catalog (journalctl -x explains them).
constexpr std::array<std::pair<std::string_view, std::string_view>, 16> messageIds{{
    {"grown", "cb79658df724409c954e93dbb77891d2"},
    {"grow-failed", "db1967faf7ff4176bb0298df31ff22bd"},
    {"space-exhausted", "3f5847ee62b4406cabbaede9742f5175"},
    {"disk-added", "78cdd2209aa7400e9640f733ddfe6655"},
    {"read-only", "1cffd1078b804c269cacfba9c56b3fcf"},
    {"remounted", "a6f0b94bc5e041afa61b3de88c8a83e0"},
    {"threshold-crossed", "915ecf09f4824147aaa7240cf53ba9aa"},
    {"fs-error", "3ed1e73a2c8744878831c255c9e8c076"},
    {"replay", "5db4c527db2c4fb2a8a5678f605470e0"},
    {"replay-failed", "f1442ae9c48d488eae265779c85da9dc"},
    {"journal-set-aside", "041edd83f58f4dec9f79f4debaf9812c"},
    {"healed", "9c2fbfdbd7d7454681fcef2708df6c61"},
    {"command-timeout", "da85314f574e4cfdbc7474f1f06ea8f7"},
    {"stopping", "5553a63368544d69bb61b3f074069f84"},
    {"ready", "8efb41636d294db688be66a48ae79b19"},
    {"grow-recovered", "4375498ab6d54becac9ba5b802eecf5f"},
}};

int syslogPriority(spdlog::level::level_enum level)
{
    switch (level)
    {
    case spdlog::level::trace:
    case spdlog::level::debug:
        return 7;
    case spdlog::level::info:
        return 6;
    case spdlog::level::warn:
        return 4;
    case spdlog::level::err:
        return 3;
    case spdlog::level::critical:
        return 2;
    default:
        return 6;
    }
}

/// One journal entry per line, with the line's key=value pairs as fields.
class JournalSink : public spdlog::sinks::base_sink<std::mutex>
{
  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override
    {
        std::string_view text(msg.payload.data(), msg.payload.size());
        std::vector<std::string> fields;
        fields.push_back("MESSAGE=" + std::string(text));
        fields.push_back("PRIORITY=" + std::to_string(syslogPriority(msg.level)));
        fields.emplace_back("SYSLOG_IDENTIFIER=lvkeeperd");
        for (const auto& [key, value] : journalFields(text))
        {
            fields.push_back(key + "=" + value);
            if (key == "LVKEEPER_EVENT")
            {
                if (auto id = messageIdOf(value); !id.empty())
                {
                    fields.push_back("MESSAGE_ID=" + std::string(id));
                }
            }
        }
        std::vector<iovec> vectors;
        vectors.reserve(fields.size());
        for (auto& f : fields)
        {
            vectors.push_back(iovec{f.data(), f.size()});
        }
        sd_journal_sendv(vectors.data(), static_cast<int>(vectors.size()));
    }
    void flush_() override {}
};

bool toJournal = false;

spdlog::level::level_enum parseLevel(const std::string& level)
{
    // Not spdlog's from_str: it maps anything unknown to "off", and a typo must not silence the daemon. The syslog
    // names are LogControl1's (systemctl service-log-level).
    static const std::pair<const char*, spdlog::level::level_enum> levels[] = {
        {"trace", spdlog::level::trace},    {"debug", spdlog::level::debug},       {"info", spdlog::level::info},
        {"warn", spdlog::level::warn},      {"warning", spdlog::level::warn},      {"err", spdlog::level::err},
        {"error", spdlog::level::err},      {"critical", spdlog::level::critical}, {"off", spdlog::level::off},
        {"notice", spdlog::level::info},    {"crit", spdlog::level::critical},     {"alert", spdlog::level::critical},
        {"emerg", spdlog::level::critical},
    };
    for (const auto& [name, value] : levels)
    {
        if (level == name)
        {
            return value;
        }
    }
    throw std::invalid_argument("unknown log level \"" + level +
                                "\" (trace, debug, info, notice, warning, error, crit, alert, emerg, off)");
}

bool keyChar(char c)
{
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_';
}

// JOURNAL_STREAM is inherited by whatever the service starts; it only means "stderr is the
// journal" while stderr is still the very stream systemd connected.
bool stderrIsJournal()
{
    const char* env = std::getenv("JOURNAL_STREAM");
    if (env == nullptr)
    {
        return false;
    }
    unsigned long long dev = 0;
    unsigned long long ino = 0;
    if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2)
    {
        return false;
    }
    struct stat st
    {
    };
    if (::fstat(STDERR_FILENO, &st) < 0)
    {
        return false;
    }
    return st.st_dev == dev && st.st_ino == ino;
}

} // namespace

void setupLogging(const std::string& level, bool forceStderr)
{
    const auto parsed = parseLevel(level);
    std::shared_ptr<spdlog::logger> logger;
    toJournal = !forceStderr && stderrIsJournal();
    if (toJournal)
    {
        // The journal stamps time and priority itself; the message is the whole line, its fields beside it.
        auto sink = std::make_shared<JournalSink>();
        logger = std::make_shared<spdlog::logger>("lvkeeper", sink);
        logger->set_pattern("%v");
    }
    else
    {
        auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic);
        logger = std::make_shared<spdlog::logger>("lvkeeper", sink);
        logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    }
    logger->set_level(parsed);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
}

void setLogLevel(const std::string& level)
{
    spdlog::default_logger()->set_level(parseLevel(level));
}

std::string logLevel()
{
    switch (spdlog::default_logger()->level())
    {
    case spdlog::level::trace:
    case spdlog::level::debug:
        return "debug";
    case spdlog::level::info:
        return "info";
    case spdlog::level::warn:
        return "warning";
    case spdlog::level::err:
        return "err";
    case spdlog::level::critical:
    case spdlog::level::off:
        return "crit";
    default:
        return "info";
    }
}

std::string logTarget()
{
    return toJournal ? "journal" : "console";
}

std::vector<std::pair<std::string, std::string>> journalFields(std::string_view line)
{
    static constexpr std::string_view reserved[] = {"MESSAGE",         "MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER",
                                                    "SYSLOG_FACILITY", "SYSLOG_PID", "ERRNO",    "UNIT",
                                                    "USER_UNIT"};
    std::vector<std::pair<std::string, std::string>> fields;
    std::size_t i = 0;
    while (i < line.size())
    {
        while (i < line.size() && line[i] == ' ')
        {
            ++i;
        }
        std::size_t keyStart = i;
        while (i < line.size() && keyChar(line[i]))
        {
            ++i;
        }
        if (i == keyStart || i >= line.size() || line[i] != '=')
        {
            // Not key=value (free text): skip the word.
            while (i < line.size() && line[i] != ' ')
            {
                ++i;
            }
            continue;
        }
        std::string key(line.substr(keyStart, i - keyStart));
        ++i; // '='
        std::string value;
        if (i < line.size() && line[i] == '"')
        {
            ++i;
            while (i < line.size() && line[i] != '"')
            {
                if (line[i] == '\\' && i + 1 < line.size())
                {
                    ++i;
                    value += line[i] == 'n' ? '\n' : line[i];
                }
                else
                {
                    value += line[i];
                }
                ++i;
            }
            ++i; // closing quote
        }
        else
        {
            while (i < line.size() && line[i] != ' ')
            {
                value += line[i++];
            }
        }
        std::string name;
        for (char c : key)
        {
            name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        if (name == "EVENT")
        {
            name = "LVKEEPER_EVENT";
        }
        for (auto r : reserved)
        {
            if (name == r || name.compare(0, 5, "CODE_") == 0)
            {
                name = "LVKEEPER_" + name;
                break;
            }
        }
        if (name.size() <= 64)
        {
            fields.emplace_back(std::move(name), std::move(value));
        }
    }
    return fields;
}

std::string_view messageIdOf(std::string_view event)
{
    for (const auto& [name, id] : messageIds)
    {
        if (name == event)
        {
            return id;
        }
    }
    return {};
}

} // namespace lvkeeper::sys

#include "lvkeeper/sys/logging.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <utility>

namespace lvkeeper::sys
{

namespace
{

spdlog::level::level_enum parseLevel(const std::string& level)
{
    // Not spdlog's from_str: it maps anything unknown to "off", and a typo must not silence the daemon.
    static const std::pair<const char*, spdlog::level::level_enum> levels[] = {
        {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},       {"info", spdlog::level::info},
        {"warn", spdlog::level::warn},   {"warning", spdlog::level::warn},      {"err", spdlog::level::err},
        {"error", spdlog::level::err},   {"critical", spdlog::level::critical}, {"off", spdlog::level::off},
    };
    for (const auto& [name, value] : levels)
    {
        if (level == name)
        {
            return value;
        }
    }
    throw std::invalid_argument("unknown log level \"" + level +
                                "\" (trace, debug, info, warning, error, critical, off)");
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
    if (!forceStderr && stderrIsJournal())
    {
        // The journal stamps time and priority itself; the message is the whole line.
        auto sink = std::make_shared<spdlog::sinks::systemd_sink_mt>("lvkeeperd");
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

} // namespace lvkeeper::sys

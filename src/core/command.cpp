#include "lvkeeper/command.hpp"

#include <string_view>

namespace lvkeeper
{

namespace
{

std::string programName(const std::vector<std::string>& argv)
{
    if (argv.empty() || argv.front().empty())
    {
        return "command";
    }
    const std::string& path = argv.front();
    auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Tools like lvm print context first and the actual reason last.
std::string_view lastLine(std::string_view text)
{
    while (!text.empty())
    {
        auto end = text.find_last_not_of(" \t\r\n");
        if (end == std::string_view::npos)
        {
            return {};
        }
        text = text.substr(0, end + 1);
        auto start = text.rfind('\n');
        std::string_view line = start == std::string_view::npos ? text : text.substr(start + 1);
        auto first = line.find_first_not_of(" \t");
        if (first != std::string_view::npos)
        {
            return line.substr(first);
        }
        text = start == std::string_view::npos ? std::string_view{} : text.substr(0, start);
    }
    return {};
}

std::string formatDuration(std::chrono::milliseconds duration)
{
    auto ms = duration.count();
    if (ms < 1000)
    {
        return std::to_string(ms) + "ms";
    }
    auto tenths = (ms + 50) / 100;
    std::string text = std::to_string(tenths / 10);
    if (tenths % 10 != 0)
    {
        text += "." + std::to_string(tenths % 10);
    }
    return text + "s";
}

} // namespace

std::string CommandResult::describe() const
{
    std::string text = programName(argv);
    if (spawnFailed)
    {
        auto reason = lastLine(err);
        return text + " could not start: " + (reason.empty() ? "unknown error" : std::string(reason));
    }
    if (timedOut)
    {
        text += " timed out after " + formatDuration(duration);
    }
    else if (termSignal != 0)
    {
        text += " killed by signal " + std::to_string(termSignal);
    }
    else
    {
        text += " exited " + std::to_string(exitCode);
    }
    auto reason = lastLine(err);
    if (!reason.empty())
    {
        text += ": ";
        text += reason;
    }
    return text;
}

} // namespace lvkeeper

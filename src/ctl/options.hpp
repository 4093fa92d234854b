#pragma once

// lvkeeperctl's command line: parsed and checked completely before anything touches the bus.

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace lvkeeper::ctl
{

/// Exit statuses, as the man page documents them.
enum ExitStatus : int
{
    exitOk = 0,
    exitFailure = 1,
    exitUsage = 2,
    exitNotRunning = 3,
    exitAccessDenied = 4,
    exitAttention = 5, ///< status: a volume is read-only, has filesystem errors, is exhausted or not mounted
};

enum class JsonMode
{
    Off,
    Short,
    Pretty,
};

/// How long to wait for the daemon; nullopt waits as long as it takes.
using Timeout = std::optional<std::chrono::microseconds>;

struct Options
{
    std::string command; ///< the verb; empty with --version or a bare --help
    std::vector<std::string> args;
    JsonMode json = JsonMode::Off;
    bool legend = true;
    bool help = false;
    bool version = false;
    bool askPassword = true; ///< --no-ask-password clears it: no polkit prompt, a refusal instead
    std::optional<Timeout> timeout; ///< from --timeout; unset: the command's own default
};

/// A command line that cannot be run: exit status 2, nothing sent.
class UsageError : public std::runtime_error
{
  public:
    using std::runtime_error::runtime_error;
};

/// Parses argv (options may come before or after the verb; "--" ends them) and checks the verb's arguments,
/// sizes included. Throws UsageError.
Options parseCommandLine(int argc, char** argv);

/// The overall help (command empty) or one command's.
void printHelp(std::ostream& out, const std::string& command);

/// The wait a command gets unless --timeout says otherwise.
Timeout defaultTimeout(const std::string& command);

/// "25s", "30min", "infinity": what a timeout looks like in a message.
std::string describeTimeout(const Timeout& timeout);

} // namespace lvkeeper::ctl

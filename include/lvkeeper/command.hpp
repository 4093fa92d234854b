#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace lvkeeper
{

/// What one external command did.
struct CommandResult
{
    std::vector<std::string> argv;
    int exitCode = -1;     ///< -1 when it did not exit normally
    int termSignal = 0;    ///< signal that ended it, 0 if none
    bool timedOut = false; ///< ran past its timeout and got SIGTERM (it may still have finished its work)
    bool spawnFailed = false;
    std::string out;
    std::string err;
    std::chrono::milliseconds duration{0};

    /// Exited with status 0: it did its work, even when that took longer than its timeout.
    bool ok() const
    {
        return exitCode == 0 && !spawnFailed;
    }

    /// "lvextend exited 5: <last stderr line>" for errors and logs.
    std::string describe() const;
};

/// How a command runs besides its argv.
struct CommandOptions
{
    /// After this the command gets SIGTERM once (lvm defers it past its critical sections) and is still
    /// waited for: a command is never SIGKILLed. Zero means no timeout.
    std::chrono::milliseconds timeout{0};
    /// Runs at the normal priority (nice 0, best-effort I/O 4) instead of the daemon's raised one: for scans
    /// that any caller can ask for, which must not compete with the grows that keep a volume alive.
    bool background = false;

    CommandOptions() = default;
    // Implicit on purpose: run(argv, 10s, done) reads as what it is.
    template <typename Rep, typename Period>
    CommandOptions(std::chrono::duration<Rep, Period> t, bool bg = false) :
        timeout(std::chrono::duration_cast<std::chrono::milliseconds>(t)), background(bg)
    {
    }
};

/// Runs argv vectors (never a shell) asynchronously; `done` is called from the event loop, exactly once.
class CommandRunner
{
  public:
    using Done = std::function<void(const CommandResult&)>;

    virtual ~CommandRunner() = default;

    /// Starts argv[0] (looked up in PATH); done() when it has exited, however long that takes.
    virtual void run(std::vector<std::string> argv, CommandOptions options, Done done) = 0;
};

} // namespace lvkeeper

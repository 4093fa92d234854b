#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace lvkeeper
{

/// What one external command did.
struct CommandResult
{
    std::vector<std::string> argv;
    int exitCode = -1;  ///< -1 when it did not exit normally
    int termSignal = 0; ///< signal that ended it, 0 if none
    bool timedOut = false;
    bool spawnFailed = false;
    std::string out;
    std::string err;
    std::chrono::milliseconds duration{0};

    /// Exited with status 0.
    bool ok() const
    {
        return exitCode == 0 && !timedOut && !spawnFailed;
    }

    /// "lvextend exited 5: <last stderr line>" for errors and logs.
    std::string describe() const;
};

/// Runs argv vectors (never a shell) asynchronously; `done` is called from the event loop.
class CommandRunner
{
  public:
    using Done = std::function<void(const CommandResult&)>;

    virtual ~CommandRunner() = default;

    /// Starts argv[0] (looked up in PATH) with a timeout; kills it (SIGKILL) when it expires.
    virtual void run(std::vector<std::string> argv, std::chrono::milliseconds timeout, Done done) = 0;

    /// Receives each complete line of stdout as it arrives (progress of a long command).
    using Line = std::function<void(const std::string& line)>;

    /// Like run(), and also hands over stdout line by line while the command runs.
    virtual void runStreaming(std::vector<std::string> argv, std::chrono::milliseconds timeout, Line line, Done done)
    {
        (void)line;
        run(std::move(argv), timeout, std::move(done));
    }
};

} // namespace lvkeeper

#pragma once

#include "lvkeeper/command.hpp"

#include <systemd/sd-event.h>

#include <memory>
#include <vector>

namespace lvkeeper::sys
{

/// CommandRunner on sd-event: fork+exec (no shell), stdout/stderr captured through pipes, exit watched
/// with sd_event_add_child, a timer that sends SIGTERM once on timeout. It never SIGKILLs a command.
/// Needs SIGCHLD blocked. Destroying it leaves what still runs running, without callbacks; the
/// sd_event must outlive it.
class ProcessRunner : public CommandRunner
{
  public:
    explicit ProcessRunner(sd_event* event);
    ~ProcessRunner() override;

    ProcessRunner(const ProcessRunner&) = delete;
    ProcessRunner& operator=(const ProcessRunner&) = delete;

    void run(std::vector<std::string> argv, CommandOptions options, Done done) override;
    /// Commands still running.
    std::size_t running() const noexcept
    {
        return children_.size();
    }

  private:
    struct Child;
    void finish(Child* child);

    sd_event* event_;
    std::vector<std::unique_ptr<Child>> children_;
};

} // namespace lvkeeper::sys

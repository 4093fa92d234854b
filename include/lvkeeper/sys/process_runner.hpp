#pragma once

#include "lvkeeper/command.hpp"

#include <systemd/sd-event.h>

#include <memory>
#include <vector>

namespace lvkeeper::sys
{

/// CommandRunner on sd-event: fork+exec (no shell), stdout/stderr captured through pipes,
/// exit watched with sd_event_add_child, a timer that SIGKILLs on timeout. Needs SIGCHLD blocked.
/// Destroying it kills what still runs, without callbacks; the sd_event must outlive it.
class ProcessRunner : public CommandRunner
{
  public:
    explicit ProcessRunner(sd_event* event);
    ~ProcessRunner() override;

    ProcessRunner(const ProcessRunner&) = delete;
    ProcessRunner& operator=(const ProcessRunner&) = delete;

    void run(std::vector<std::string> argv, std::chrono::milliseconds timeout, Done done) override;

  private:
    struct Child;
    void finish(Child* child);

    sd_event* event_;
    std::vector<std::unique_ptr<Child>> children_;
};

} // namespace lvkeeper::sys

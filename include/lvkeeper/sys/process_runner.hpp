#pragma once

#include "lvkeeper/command.hpp"

#include <systemd/sd-event.h>

namespace lvkeeper::sys
{

/// CommandRunner on sd-event: fork+exec (no shell), stdout/stderr captured through pipes,
/// exit watched with sd_event_add_child, a timer that SIGKILLs on timeout. Needs SIGCHLD blocked.
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
    sd_event* event_;
};

} // namespace lvkeeper::sys

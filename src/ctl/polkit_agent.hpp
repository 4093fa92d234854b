#pragma once

// A polkit text agent for the time of one lvkeeperctl command, as systemd's tools run one: when a
// non-root user on a terminal asks for a change, polkit can ask for the admin password right there.

#include <sys/types.h>

namespace lvkeeper::ctl
{

class PolkitAgent
{
  public:
    PolkitAgent() = default;
    /// Stops the agent (SIGTERM; it is polkit's pkttyagent, never an lvm command) and reaps it.
    ~PolkitAgent();

    PolkitAgent(const PolkitAgent&) = delete;
    PolkitAgent& operator=(const PolkitAgent&) = delete;

    /// Starts pkttyagent for this process when stdin and stdout are terminals and the caller is not root,
    /// and waits (at most a few seconds) until it has registered. Without pkttyagent it does nothing: the
    /// daemon's refusal then says that an agent is needed.
    void startIfUseful();

  private:
    pid_t pid_ = -1;
};

} // namespace lvkeeper::ctl

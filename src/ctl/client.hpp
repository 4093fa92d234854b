#pragma once

// lvkeeperctl's side of the bus: one connection to the system bus, driven by our own poll loop so that a
// long call can show progress while it waits, and every failure turned into a sentence and an exit status.

#include "options.hpp"

#include <sdbus-c++/sdbus-c++.h>

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

namespace lvkeeper::ctl
{

using Properties = std::map<std::string, sdbus::Variant>;
using ManagedObjects = std::map<sdbus::ObjectPath, std::map<std::string, Properties>>;

/// A command that failed: the sentence for stderr and the exit status.
class Failure : public std::runtime_error
{
  public:
    Failure(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
    int status() const noexcept
    {
        return status_;
    }

  private:
    int status_;
};

/// Called for each PropertiesChanged of the Manager while a call waits.
using ManagerWatcher = std::function<void(const Properties& changed)>;

class Client
{
  public:
    /// Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS). Throws Failure (exit 3) when there is none.
    explicit Client(Timeout timeout);
    ~Client();

    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    /// Whether the calls that change storage let polkit ask the user for a password (the message flag
    /// ALLOW_INTERACTIVE_AUTHORIZATION); off with --no-ask-password.
    void allowInteractiveAuthorization(bool allow)
    {
        interactive_ = allow;
    }

    /// A call of a Manager method, to fill with arguments.
    sdbus::MethodCall managerCall(const std::string& method);

    /// Sends it and waits for the reply, within the timeout. action names it in errors ("grow /data").
    /// watcher, when set, sees the Manager's property changes meanwhile. Throws Failure.
    sdbus::MethodReply call(const sdbus::MethodCall& call, const std::string& action, ManagerWatcher watcher = {});

    /// GetAll of the Manager interface.
    Properties managerProperties();

    /// GetManagedObjects: every volume object and its properties.
    ManagedObjects managedObjects();

    /// Whether lvkeeperd owns its name now (asks the bus; never starts the daemon).
    bool daemonRunning();

    /// The current owner of the daemon's name ("" when none).
    std::string daemonOwner();

    /// Subscribes to a match rule; the slot lives as long as the client.
    void addMatch(const std::string& rule, std::function<void(sdbus::Message&)> handler);

    /// Dispatches bus messages until stop() returns true; returns early when signalFd (if >= 0) is readable.
    void run(const std::function<bool()>& stop, int signalFd = -1);

  private:
    sdbus::MethodReply callOn(sdbus::IProxy& proxy, const sdbus::MethodCall& call, const std::string& action);

    Timeout timeout_;
    bool interactive_ = false;
    std::unique_ptr<sdbus::IConnection> connection_;
    std::unique_ptr<sdbus::IProxy> manager_;
    std::unique_ptr<sdbus::IProxy> bus_;
    std::vector<sdbus::Slot> slots_;
};

/// The exit status and sentence for a D-Bus error of `action`, after waiting `waited` of `timeout`.
Failure describeFailure(const sdbus::Error& error, const std::string& action, std::chrono::microseconds waited,
                        const Timeout& timeout);

} // namespace lvkeeper::ctl

#include "client.hpp"

#include "lvkeeper/bus_names.hpp"
#include "../dbus/raw_message.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <optional>

namespace lvkeeper::ctl
{

namespace
{

constexpr const char* propertiesInterface = "org.freedesktop.DBus.Properties";
constexpr const char* busErrors = "org.freedesktop.DBus.Error.";

std::string systemBusAddress()
{
    const char* address = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
    return address && *address ? address : "unix:path=/run/dbus/system_bus_socket";
}

// poll(2)'s timeout for sd-bus's absolute CLOCK_MONOTONIC deadline, rounded up: woken a fraction of a millisecond
// early, sd-bus would find its timeout not yet due and the loop would sleep on without one.
int pollTimeout(std::uint64_t deadlineUsec)
{
    if (deadlineUsec == std::numeric_limits<std::uint64_t>::max())
    {
        return -1;
    }
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const std::uint64_t nowUsec =
        static_cast<std::uint64_t>(now.tv_sec) * 1000000 + static_cast<std::uint64_t>(now.tv_nsec) / 1000;
    if (deadlineUsec <= nowUsec)
    {
        return 0;
    }
    return static_cast<int>(std::min<std::uint64_t>((deadlineUsec - nowUsec + 999) / 1000, 1u << 30));
}

bool startsWith(const std::string& text, const std::string& prefix)
{
    return text.compare(0, prefix.size(), prefix) == 0;
}

} // namespace

Failure describeFailure(const sdbus::Error& error, const std::string& action, std::chrono::microseconds waited,
                        const Timeout& timeout)
{
    const std::string& name = error.getName();
    const std::string& message = error.getMessage();
    const std::string bus = busErrors;
    const std::string ours = dbus::errorPrefix;
    if (name == bus + "ServiceUnknown" || name == bus + "NameHasNoOwner")
    {
        return Failure(exitNotRunning, "lvkeeperd is not running (nothing owns " + std::string(dbus::busName) +
                                           " on the system bus). Start it with: systemctl start lvkeeperd");
    }
    if (startsWith(name, bus + "Spawn.") || startsWith(name, "org.freedesktop.systemd1."))
    {
        return Failure(exitNotRunning, "lvkeeperd is not running and could not be started: " + message +
                                           ". See: systemctl status lvkeeperd");
    }
    if (name == bus + "Disconnected")
    {
        return Failure(exitNotRunning, "Lost the connection to the system bus while trying to " + action + ".");
    }
    if (name == bus + "NoReply" || name == bus + "Timeout" || name == bus + "TimedOut")
    {
        // The bus says NoReply both when the daemon exits mid-call and when our own timeout expires.
        const bool expired = timeout && waited >= *timeout * 95 / 100;
        if (!expired && message.find("disconnected") != std::string::npos)
        {
            return Failure(exitNotRunning,
                           "lvkeeperd exited before it answered (" + action + "). See: systemctl status lvkeeperd");
        }
        return Failure(exitFailure, "lvkeeperd did not answer within " + describeTimeout(timeout) + " (--timeout) to " +
                                        action + "; it may still be working on it: see lvkeeperctl status");
    }
    if (name == bus + "AccessDenied" || name == bus + "InteractiveAuthorizationRequired" ||
        name == ours + "AccessDenied")
    {
        // The bus's own refusal is a dump of its policy rule; the daemon's says which method and uid.
        const std::string why = name == ours + "AccessDenied" ? " (" + message + ")" : "";
        return Failure(exitAccessDenied,
                       "Access denied: you may not " + action + why + ". Run it as root, e.g. with sudo.");
    }
    if (name == ours + "InvalidArgument")
    {
        return Failure(exitUsage, "Failed to " + action + ": " + message);
    }
    if (name == bus + "UnknownMethod" || name == bus + "UnknownObject" || name == bus + "UnknownInterface" ||
        name == bus + "UnknownProperty")
    {
        return Failure(exitFailure, "Failed to " + action + ": lvkeeperd does not offer this (" + message +
                                        "); lvkeeperctl --version shows both versions");
    }
    return Failure(exitFailure, "Failed to " + action + ": " + message);
}

Client::Client(Timeout timeout) : timeout_(timeout)
{
    try
    {
        connection_ = sdbus::createSystemBusConnection();
    }
    catch (const sdbus::Error& e)
    {
        throw Failure(exitNotRunning, "Cannot connect to the system bus at " + systemBusAddress() + ": " +
                                          e.getMessage() + "; lvkeeperd cannot be reached");
    }
    manager_ = sdbus::createProxy(*connection_, dbus::busName, dbus::managerPath);
    bus_ = sdbus::createProxy(*connection_, "org.freedesktop.DBus", "/org/freedesktop/DBus");
}

Client::~Client()
{
    slots_.clear();
    manager_.reset();
    bus_.reset();
}

sdbus::MethodCall Client::managerCall(const std::string& method)
{
    auto call = manager_->createMethodCall(dbus::managerInterface, method);
    if (interactive_)
    {
        sd_bus_message_set_allow_interactive_authorization(dbus::RawMessage::of(call), 1);
    }
    return call;
}

sdbus::MethodReply Client::call(const sdbus::MethodCall& call, const std::string& action, ManagerWatcher watcher)
{
    std::optional<sdbus::Slot> watch;
    if (watcher)
    {
        const std::string rule = std::string("type='signal',interface='") + propertiesInterface +
                                 "',member='PropertiesChanged',path='" + dbus::managerPath + "',arg0='" +
                                 dbus::managerInterface + "'";
        try
        {
            watch = connection_->addMatch(rule,
                                          [watcher](sdbus::Message& message)
                                          {
                                              std::string interface;
                                              Properties changed;
                                              try
                                              {
                                                  message >> interface >> changed;
                                              }
                                              catch (const sdbus::Error&)
                                              {
                                                  return; // not the PropertiesChanged the rule asked for
                                              }
                                              watcher(changed);
                                          });
        }
        catch (const sdbus::Error& e)
        {
            throw describeFailure(e, action, {}, timeout_);
        }
    }
    return callOn(*manager_, call, action);
}

sdbus::MethodReply Client::callOn(sdbus::IProxy& proxy, const sdbus::MethodCall& call, const std::string& action)
{
    bool done = false;
    std::optional<sdbus::MethodReply> reply;
    std::optional<sdbus::Error> error;
    const auto start = std::chrono::steady_clock::now();
    const std::uint64_t usec =
        timeout_ ? static_cast<std::uint64_t>(timeout_->count()) : std::numeric_limits<std::uint64_t>::max();
    try
    {
        auto pending = proxy.callMethod(
            call,
            [&](sdbus::MethodReply& r, const sdbus::Error* e)
            {
                if (e)
                {
                    error = *e;
                }
                else
                {
                    reply = r;
                }
                done = true;
            },
            usec);
        run(
            [&]
            {
                return done;
            });
    }
    catch (const sdbus::Error& e)
    {
        error = e;
    }
    if (error)
    {
        const auto waited =
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
        throw describeFailure(*error, action, waited, timeout_);
    }
    return *reply;
}

Properties Client::managerProperties()
{
    auto call = manager_->createMethodCall(propertiesInterface, "GetAll");
    call << std::string(dbus::managerInterface);
    auto reply = callOn(*manager_, call, "read lvkeeperd's properties");
    Properties properties;
    reply >> properties;
    return properties;
}

ManagedObjects Client::managedObjects()
{
    auto call = manager_->createMethodCall("org.freedesktop.DBus.ObjectManager", "GetManagedObjects");
    auto reply = callOn(*manager_, call, "list the watched volumes");
    ManagedObjects objects;
    reply >> objects;
    return objects;
}

bool Client::daemonRunning()
{
    auto call = bus_->createMethodCall("org.freedesktop.DBus", "NameHasOwner");
    call << std::string(dbus::busName);
    auto reply = callOn(*bus_, call, "ask the bus whether lvkeeperd runs");
    bool owned = false;
    reply >> owned;
    return owned;
}

std::string Client::daemonOwner()
{
    auto call = bus_->createMethodCall("org.freedesktop.DBus", "GetNameOwner");
    call << std::string(dbus::busName);
    try
    {
        auto reply = callOn(*bus_, call, "ask the bus for lvkeeperd");
        std::string owner;
        reply >> owner;
        return owner;
    }
    catch (const Failure& f)
    {
        if (f.status() == exitNotRunning)
        {
            return "";
        }
        throw;
    }
}

void Client::addMatch(const std::string& rule, std::function<void(sdbus::Message&)> handler)
{
    try
    {
        slots_.push_back(connection_->addMatch(rule, std::move(handler)));
    }
    catch (const sdbus::Error& e)
    {
        throw describeFailure(e, "subscribe to lvkeeperd's signals", {}, timeout_);
    }
}

void Client::run(const std::function<bool()>& stop, int signalFd)
{
    while (!stop())
    {
        // A callback may have run even when this says nothing was processed (sd-bus's reply timeout does).
        if (connection_->processPendingRequest() || stop())
        {
            continue;
        }
        const auto data = connection_->getEventLoopPollData();
        pollfd fds[2] = {{data.fd, data.events, 0}, {signalFd, POLLIN, 0}};
        const int r = ::poll(fds, signalFd >= 0 ? 2 : 1, pollTimeout(data.timeout_usec));
        if (r < 0 && errno != EINTR)
        {
            throw sdbus::Error(std::string(busErrors) + "Disconnected", "poll on the bus connection failed");
        }
        if (signalFd >= 0 && r > 0 && (fds[1].revents & POLLIN))
        {
            return;
        }
    }
}

} // namespace lvkeeper::ctl

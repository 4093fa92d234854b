#include "dbus/authorizer.hpp"

#include "dbus/log_text.hpp"
#include "dbus/raw_message.hpp"
#include "lvkeeper/errors.hpp"

#include <systemd/sd-bus.h>

#include <spdlog/spdlog.h>

#include <map>
#include <utility>

namespace lvkeeper::dbus
{

namespace
{

constexpr const char* polkitName = "org.freedesktop.PolicyKit1";
constexpr const char* polkitPath = "/org/freedesktop/PolicyKit1/Authority";
constexpr const char* polkitInterface = "org.freedesktop.PolicyKit1.Authority";
// CheckAuthorization's flags: AllowUserInteraction lets polkit ask an agent for a password.
constexpr std::uint32_t polkitAllowUserInteraction = 1;

std::exception_ptr denial(const std::string& text)
{
    return std::make_exception_ptr(KeeperError(ErrorKind::AccessDenied, text));
}

// The bus daemon (or polkit's name) is not there at all: nobody can answer, which is not a "no".
bool nobodyThere(const sdbus::Error& error)
{
    return error.getName() == "org.freedesktop.DBus.Error.ServiceUnknown" ||
           error.getName() == "org.freedesktop.DBus.Error.NameHasNoOwner";
}

} // namespace

Authorizer::Authorizer(sdbus::IConnection& connection) :
    busDriver_(sdbus::createProxy(connection, "org.freedesktop.DBus", "/org/freedesktop/DBus")),
    polkit_(sdbus::createProxy(connection, polkitName, polkitPath))
{
}

Caller Authorizer::currentCaller(sdbus::IObject& object)
{
    const sdbus::Message* message = object.getCurrentlyProcessedMessage();
    Caller caller;
    if (message != nullptr)
    {
        caller.sender = message->getSender();
        caller.interactive = sd_bus_message_get_allow_interactive_authorization(RawMessage::of(*message)) > 0;
    }
    if (caller.sender.empty())
    {
        // A peer-to-peer connection has no bus that vouches for the peer: fail closed.
        throw KeeperError(ErrorKind::AccessDenied, "the call has no sender the bus verified");
    }
    return caller;
}

void Authorizer::callerUid(const Caller& caller, UidReply reply)
{
    busDriver_->callMethodAsync("GetConnectionUnixUser")
        .onInterface("org.freedesktop.DBus")
        .withArguments(caller.sender)
        .uponReplyInvoke(
            [reply = std::move(reply)](const sdbus::Error* error, std::uint32_t uid)
            {
                if (error != nullptr)
                {
                    reply(std::nullopt, error->getName() + ": " + error->getMessage());
                }
                else
                {
                    reply(static_cast<uid_t>(uid), "");
                }
            });
}

void Authorizer::authorize(const Caller& caller, const std::string& method, const std::string& action,
                           Decision decision)
{
    callerUid(
        caller,
        [this, caller, method, action, decision = std::move(decision)](std::optional<uid_t> uid, const std::string& why)
        {
            if (!uid)
            {
                spdlog::warn("event=access-denied method={} action={} sender={} reason={}", method, action,
                             logText(caller.sender), logText("caller unknown to the bus: " + why));
                decision(denial(method + ": the bus could not say who the caller is (" + why + ")"));
                return;
            }
            if (*uid == 0)
            {
                decision(nullptr);
                return;
            }
            try
            {
                askPolkit(caller, *uid, method, action, decision);
            }
            catch (const std::exception& e)
            {
                spdlog::warn("event=access-denied method={} action={} uid={} reason={}", method, action, *uid,
                             logText(std::string("cannot ask polkit: ") + e.what()));
                decision(denial(method + ": cannot ask polkit (" + e.what() + "); refused"));
            }
        });
}

void Authorizer::askPolkit(const Caller& caller, uid_t uid, const std::string& method, const std::string& action,
                           Decision decision)
{
    const std::string who = "uid " + std::to_string(static_cast<unsigned long>(uid));
    if (*pendingChecks_ >= maxPendingChecks)
    {
        spdlog::warn("event=access-denied method={} action={} uid={} reason=\"too many pending polkit checks\"", method,
                     action, uid);
        decision(std::make_exception_ptr(
            KeeperError(ErrorKind::Busy, method + ": " + std::to_string(maxPendingChecks) +
                                             " authorization checks are pending already; try again")));
        return;
    }
    ++*pendingChecks_;

    // The subject is the bus name, as systemd's daemons and udisks2 pass it: polkit asks the bus itself
    // who owns it, so nothing the caller says about itself is taken on trust here either.
    sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>> subject{
        "system-bus-name", std::map<std::string, sdbus::Variant>{{"name", sdbus::Variant(caller.sender)}}};
    std::uint32_t flags = caller.interactive ? polkitAllowUserInteraction : 0;

    auto done = [pending = pendingChecks_, who, uid, method, action, decision](
                    const sdbus::Error* error, sdbus::Struct<bool, bool, std::map<std::string, std::string>> result)
    {
        --*pending;
        if (error != nullptr)
        {
            if (nobodyThere(*error))
            {
                spdlog::info("event=access-denied method={} action={} uid={} reason=\"polkit is not running\"", method,
                             action, uid);
                decision(denial(method + " needs root: polkit is not running to authorize " + action + " for " + who));
                return;
            }
            spdlog::warn("event=access-denied method={} action={} uid={} reason={}", method, action, uid,
                         logText("polkit failed: " + error->getName() + ": " + error->getMessage()));
            decision(denial(method + ": polkit could not decide " + action + " for " + who + " (" + error->getName() +
                            ": " + error->getMessage() + "); refused"));
            return;
        }
        const bool authorized = result.get<0>();
        const bool challenge = result.get<1>();
        if (authorized)
        {
            spdlog::info("event=authorized method={} action={} uid={} by=polkit", method, action, uid);
            decision(nullptr);
            return;
        }
        spdlog::info("event=access-denied method={} action={} uid={} reason={}", method, action, uid,
                     challenge ? "authentication-required" : "not-authorized");
        if (challenge)
        {
            decision(denial(method + " needs authentication for " + action + " (" + who +
                            "): call it with interactive authorization allowed and a polkit agent running, "
                            "or as root"));
        }
        else
        {
            decision(denial(method + " needs root or the polkit authorization " + action + ", which " + who +
                            " does not have"));
        }
    };

    try
    {
        polkit_->callMethodAsync("CheckAuthorization")
            .onInterface(polkitInterface)
            .withArguments(subject, action, std::map<std::string, std::string>{}, flags, std::string())
            .uponReplyInvoke(std::move(done));
    }
    catch (...)
    {
        --*pendingChecks_;
        throw;
    }
}

} // namespace lvkeeper::dbus

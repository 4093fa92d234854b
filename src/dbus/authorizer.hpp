#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <sys/types.h>

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace lvkeeper::dbus
{

/// The sender of a method call, taken while sdbus-c++ dispatches it.
struct Caller
{
    std::string sender;       ///< its unique bus name (":1.42"), never reused on a bus
    bool interactive = false; ///< the call carries ALLOW_INTERACTIVE_AUTHORIZATION: polkit may ask for a password
};

/// Who may change storage: root always, anyone else when polkit says so, nobody else. Decided from
/// what the bus daemon verified (the connection's uid, from SO_PEERCRED when it connected), never
/// from /proc, and never blocking the event loop: every question is an asynchronous call.
class Authorizer
{
  public:
    /// denied is null when the caller may go on, else a KeeperError (AccessDenied, or Busy when too
    /// many polkit checks are pending).
    using Decision = std::function<void(std::exception_ptr denied)>;
    /// uid is the caller's uid as the bus verified it, nullopt (with why) when the bus could not say.
    using UidReply = std::function<void(std::optional<uid_t> uid, const std::string& why)>;

    /// Polkit checks in flight at once; more are refused as Busy rather than queued without bound.
    static constexpr std::size_t maxPendingChecks = 64;

    explicit Authorizer(sdbus::IConnection& connection);
    ~Authorizer() = default;

    Authorizer(const Authorizer&) = delete;
    Authorizer& operator=(const Authorizer&) = delete;

    /// The sender of the call object is dispatching now. Throws AccessDenied when there is none.
    static Caller currentCaller(sdbus::IObject& object);

    /// Asks the bus daemon for the caller's uid (org.freedesktop.DBus.GetConnectionUnixUser).
    void callerUid(const Caller& caller, UidReply reply);

    /// Decides whether caller may run method, which needs the polkit action: root is allowed without
    /// asking; others when polkit's CheckAuthorization says so; when polkit is not on the bus, root only.
    void authorize(const Caller& caller, const std::string& method, const std::string& action, Decision decision);

  private:
    void askPolkit(const Caller& caller, uid_t uid, const std::string& method, const std::string& action,
                   Decision decision);

    std::unique_ptr<sdbus::IProxy> busDriver_;
    std::unique_ptr<sdbus::IProxy> polkit_;
    std::shared_ptr<std::size_t> pendingChecks_ = std::make_shared<std::size_t>(0);
};

} // namespace lvkeeper::dbus

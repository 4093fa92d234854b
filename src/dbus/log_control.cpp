#include "lvkeeper/log_control.hpp"

#include "lvkeeper/sys/logging.hpp"

#include "dbus/log_control_adaptor.hpp"
#include "dbus/raw_message.hpp"

#include <spdlog/spdlog.h>

#include <systemd/sd-bus.h>

#include <cstdint>
#include <stdexcept>

namespace lvkeeper::dbus
{

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor): final, so only ever deleted as an Object
class LogControl::Object final : public sdbus::AdaptorInterfaces<org::freedesktop::LogControl1_adaptor>
{
  public:
    explicit Object(sdbus::IConnection& connection) : AdaptorInterfaces(connection, "/org/freedesktop/LogControl1")
    {
        registerAdaptor();
    }
    ~Object()
    {
        unregisterAdaptor();
    }

    Object(const Object&) = delete;
    Object& operator=(const Object&) = delete;

  private:
    /// Root as the bus daemon knows the sender (its connection's uid, as for every method call), never
    /// a value sd-bus would fill in from /proc/PID, which another process may have by then.
    void requireRoot()
    {
        const sdbus::Message* message = getObject().getCurrentlyProcessedMessage();
        bool root = false;
        sd_bus_creds* creds = nullptr;
        if (message && sd_bus_query_sender_creds(RawMessage::of(*message), SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID,
                                                 &creds) >= 0)
        {
            const std::uint64_t fromProc = sd_bus_creds_get_augmented_mask(creds);
            uid_t uid = 1;
            const bool known = ((fromProc & SD_BUS_CREDS_EUID) == 0 && sd_bus_creds_get_euid(creds, &uid) >= 0) ||
                               ((fromProc & SD_BUS_CREDS_UID) == 0 && sd_bus_creds_get_uid(creds, &uid) >= 0);
            root = known && uid == 0;
            sd_bus_creds_unref(creds);
        }
        if (!root)
        {
            throw sdbus::Error("org.freedesktop.DBus.Error.AccessDenied", "only root may change lvkeeperd's logging");
        }
    }

    std::string LogLevel() override
    {
        return sys::logLevel();
    }
    void LogLevel(const std::string& value) override
    {
        requireRoot();
        try
        {
            sys::setLogLevel(value);
        }
        catch (const std::invalid_argument& e)
        {
            throw sdbus::Error("org.freedesktop.DBus.Error.InvalidArgs", e.what());
        }
        spdlog::info("event=log-level level={}", sys::logLevel());
    }
    std::string LogTarget() override
    {
        return sys::logTarget();
    }
    void LogTarget(const std::string& value) override
    {
        requireRoot();
        if (value != sys::logTarget())
        {
            throw sdbus::Error("org.freedesktop.DBus.Error.InvalidArgs",
                               "lvkeeperd logs to " + sys::logTarget() +
                                   " as systemd started it; it cannot switch to " +
                                   (value.size() > 32 ? value.substr(0, 32) + "..." : value));
        }
    }
    std::string SyslogIdentifier() override
    {
        return "lvkeeperd";
    }
};

LogControl::LogControl(sdbus::IConnection& connection) : object_(std::make_unique<Object>(connection)) {}

LogControl::~LogControl() = default;

} // namespace lvkeeper::dbus

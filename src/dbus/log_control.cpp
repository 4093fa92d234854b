#include "lvkeeper/log_control.hpp"

#include "lvkeeper/sys/logging.hpp"

#include "dbus/log_control_adaptor.hpp"

#include <spdlog/spdlog.h>

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
    void requireRoot()
    {
        const sdbus::Message* message = getObject().getCurrentlyProcessedMessage();
        if (!message || message->getCredsEuid() != 0)
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

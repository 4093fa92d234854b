#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <memory>

namespace lvkeeper::dbus
{

/// org.freedesktop.LogControl1 on /org/freedesktop/LogControl1: the log level at run time, as systemd's
/// daemons have it (`systemctl service-log-level lvkeeperd debug`). Only root may change it.
class LogControl
{
  public:
    explicit LogControl(sdbus::IConnection& connection);
    ~LogControl();

    LogControl(const LogControl&) = delete;
    LogControl& operator=(const LogControl&) = delete;

  private:
    class Object;
    std::unique_ptr<Object> object_;
};

} // namespace lvkeeper::dbus

#pragma once

#include "lvkeeper/system.hpp"

#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>
#include <string>

struct udev;
struct udev_monitor;

namespace lvkeeper::sys
{

/// libudev netlink monitor for block devices named loop*: reports bind/unbind of loop devices.
class UdevMonitor
{
  public:
    /// action is "add", "change" or "remove"; device.backingFile is read from sysfs (empty if unbound).
    using Callback = std::function<void(const std::string& action, const LoopDevice& device)>;

    UdevMonitor(sd_event* event, Callback callback, const char* netlinkSource = "udev");
    ~UdevMonitor();

    UdevMonitor(const UdevMonitor&) = delete;
    UdevMonitor& operator=(const UdevMonitor&) = delete;

  private:
    static int onIo(sd_event_source* source, int fd, std::uint32_t revents, void* userdata);

    Callback callback_;
    udev* udev_ = nullptr;
    udev_monitor* monitor_ = nullptr;
    sd_event_source* source_ = nullptr;
};

} // namespace lvkeeper::sys

#include "lvkeeper/sys/udev_monitor.hpp"

#include <libudev.h>

#include <spdlog/spdlog.h>

#include <cstring>
#include <fstream>
#include <system_error>

namespace lvkeeper::sys
{

namespace
{

std::string readBackingFile(const char* syspath)
{
    if (syspath == nullptr)
    {
        return {};
    }
    // Only a bound loop device has this attribute.
    std::ifstream in(std::string(syspath) + "/loop/backing_file");
    std::string line;
    if (!in || !std::getline(in, line))
    {
        return {};
    }
    return line;
}

} // namespace

UdevMonitor::UdevMonitor(sd_event* event, Callback callback, const char* netlinkSource) : callback_(std::move(callback))
{
    auto fail = [this](int error, const std::string& what)
    {
        udev_monitor_unref(monitor_);
        udev_unref(udev_);
        return std::system_error(error, std::generic_category(), what);
    };

    udev_ = udev_new();
    if (udev_ == nullptr)
    {
        throw fail(errno != 0 ? errno : ENOMEM, "udev_new");
    }
    monitor_ = udev_monitor_new_from_netlink(udev_, netlinkSource);
    if (monitor_ == nullptr)
    {
        throw fail(errno != 0 ? errno : EINVAL, std::string("udev monitor source=") + netlinkSource);
    }
    int r = udev_monitor_filter_add_match_subsystem_devtype(monitor_, "block", "disk");
    if (r >= 0)
    {
        r = udev_monitor_enable_receiving(monitor_);
    }
    if (r < 0)
    {
        throw fail(-r, "udev monitor filter");
    }
    r = sd_event_add_io(event, &source_, udev_monitor_get_fd(monitor_), EPOLLIN, onIo, this);
    if (r < 0)
    {
        throw fail(-r, "sd_event_add_io udev monitor");
    }
    sd_event_source_set_description(source_, "udev-monitor");
}

UdevMonitor::~UdevMonitor()
{
    sd_event_source_disable_unref(source_);
    udev_monitor_unref(monitor_);
    udev_unref(udev_);
}

int UdevMonitor::onIo(sd_event_source* /*source*/, int /*fd*/, std::uint32_t /*revents*/, void* userdata)
{
    auto* self = static_cast<UdevMonitor*>(userdata);
    // The socket is non-blocking: take everything queued, one callback per loop device event.
    while (udev_device* device = udev_monitor_receive_device(self->monitor_))
    {
        const char* sysname = udev_device_get_sysname(device);
        const char* action = udev_device_get_action(device);
        const char* devnode = udev_device_get_devnode(device);
        if (sysname != nullptr && std::strncmp(sysname, "loop", 4) == 0 && action != nullptr)
        {
            LoopDevice loop;
            loop.device = devnode != nullptr ? devnode : std::string("/dev/") + sysname;
            loop.backingFile = readBackingFile(udev_device_get_syspath(device));
            spdlog::debug("event=loop-uevent action={} device={} backing={}", action, loop.device, loop.backingFile);
            try
            {
                self->callback_(action, loop);
            }
            catch (const std::exception& e)
            {
                spdlog::error("event=udev-callback-threw device={} error=\"{}\"", loop.device, e.what());
            }
        }
        udev_device_unref(device);
    }
    return 0;
}

} // namespace lvkeeper::sys

#include "lvkeeper/sys/mount_monitor.hpp"

#include <libmount/libmount.h>

#include <spdlog/spdlog.h>

#include <system_error>

namespace lvkeeper::sys
{

MountMonitor::MountMonitor(sd_event* event, std::function<void()> changed) : changed_(std::move(changed))
{
    monitor_ = mnt_new_monitor();
    if (monitor_ == nullptr)
    {
        throw std::system_error(ENOMEM, std::generic_category(), "mnt_new_monitor");
    }
    int r = mnt_monitor_enable_kernel(monitor_, 1);
    int fd = r < 0 ? r : mnt_monitor_get_fd(monitor_);
    if (fd < 0)
    {
        mnt_unref_monitor(monitor_);
        throw std::system_error(-fd, std::generic_category(), "libmount kernel monitor");
    }
    r = sd_event_add_io(event, &source_, fd, EPOLLIN, onIo, this);
    if (r < 0)
    {
        mnt_unref_monitor(monitor_);
        throw std::system_error(-r, std::generic_category(), "sd_event_add_io mount monitor");
    }
    sd_event_source_set_description(source_, "mount-monitor");
}

MountMonitor::~MountMonitor()
{
    sd_event_source_disable_unref(source_);
    mnt_unref_monitor(monitor_);
}

int MountMonitor::onIo(sd_event_source* /*source*/, int /*fd*/, std::uint32_t /*revents*/, void* userdata)
{
    auto* self = static_cast<MountMonitor*>(userdata);
    // Several mounts changing at once (a whole fstab) are one rescan for the caller.
    bool changed = false;
    int r = 0;
    while ((r = mnt_monitor_next_change(self->monitor_, nullptr, nullptr)) == 0)
    {
        changed = true;
    }
    if (r < 0)
    {
        spdlog::warn("event=mount-monitor-failed error={}", r);
    }
    if (!changed)
    {
        return 0;
    }
    try
    {
        self->changed_();
    }
    catch (const std::exception& e)
    {
        spdlog::error("event=mount-callback-threw error=\"{}\"", e.what());
    }
    return 0;
}

} // namespace lvkeeper::sys

#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>

struct libmnt_monitor;

namespace lvkeeper::sys
{

/// libmount's monitor of the kernel mount table on sd-event: calls changed() once per batch.
class MountMonitor
{
  public:
    MountMonitor(sd_event* event, std::function<void()> changed);
    ~MountMonitor();

    MountMonitor(const MountMonitor&) = delete;
    MountMonitor& operator=(const MountMonitor&) = delete;

  private:
    static int onIo(sd_event_source* source, int fd, std::uint32_t revents, void* userdata);

    std::function<void()> changed_;
    libmnt_monitor* monitor_ = nullptr;
    sd_event_source* source_ = nullptr;
};

} // namespace lvkeeper::sys

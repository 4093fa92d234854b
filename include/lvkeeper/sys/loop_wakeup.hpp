#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>

namespace lvkeeper::sys
{

/// An eventfd in sd-event: signal() from any thread, and the loop calls onWake once for however many signals
/// came since it last ran. How a worker thread hands its results back to the loop.
class LoopWakeup
{
  public:
    LoopWakeup(sd_event* event, const char* description, std::function<void()> onWake);
    ~LoopWakeup();

    LoopWakeup(const LoopWakeup&) = delete;
    LoopWakeup& operator=(const LoopWakeup&) = delete;

    /// Safe from any thread; never blocks.
    void signal();

  private:
    static int onIo(sd_event_source* source, int fd, std::uint32_t revents, void* userdata);

    std::function<void()> onWake_;
    int fd_ = -1;
    sd_event_source* source_ = nullptr;
};

} // namespace lvkeeper::sys

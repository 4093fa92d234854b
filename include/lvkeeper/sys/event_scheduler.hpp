#pragma once

#include "lvkeeper/scheduler.hpp"

#include <systemd/sd-event.h>

namespace lvkeeper::sys
{

/// Scheduler on sd-event CLOCK_MONOTONIC timers.
class EventScheduler : public Scheduler
{
  public:
    explicit EventScheduler(sd_event* event);
    ~EventScheduler() override;

    EventScheduler(const EventScheduler&) = delete;
    EventScheduler& operator=(const EventScheduler&) = delete;

    Clock::time_point now() const override;
    std::chrono::system_clock::time_point wallNow() const override;
    std::unique_ptr<Timer> after(std::chrono::milliseconds delay, std::function<void()> fn) override;

  private:
    sd_event* event_;
};

} // namespace lvkeeper::sys

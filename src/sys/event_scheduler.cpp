#include "lvkeeper/sys/event_scheduler.hpp"

#include <spdlog/spdlog.h>

#include <ctime>
#include <system_error>

namespace lvkeeper::sys
{

namespace
{

// Timers drive policy decisions, not power saving: sd-event's default 250 ms slack is too coarse.
constexpr std::uint64_t timerAccuracyUsec = 1000;

class EventTimer : public Timer
{
  public:
    explicit EventTimer(std::function<void()> fn) : fn_(std::move(fn)) {}

    ~EventTimer() override
    {
        // Safe even while the source dispatches: sd-event frees it after the callback returns.
        sd_event_source_disable_unref(source_);
    }

    EventTimer(const EventTimer&) = delete;
    EventTimer& operator=(const EventTimer&) = delete;

    void arm(sd_event* event, std::chrono::milliseconds delay)
    {
        auto usec = delay.count() > 0 ? static_cast<std::uint64_t>(std::chrono::microseconds(delay).count()) : 0;
        int r = sd_event_add_time_relative(event, &source_, CLOCK_MONOTONIC, usec, timerAccuracyUsec, onTime, this);
        if (r < 0)
        {
            throw std::system_error(-r, std::generic_category(), "sd_event_add_time_relative");
        }
        sd_event_source_set_description(source_, "scheduler-timer");
    }

  private:
    static int onTime(sd_event_source* /*source*/, std::uint64_t /*usec*/, void* userdata)
    {
        auto* self = static_cast<EventTimer*>(userdata);
        // Moved out first: fn may destroy this Timer, and with it fn_.
        auto fn = std::move(self->fn_);
        self->fn_ = nullptr;
        if (!fn)
        {
            return 0;
        }
        try
        {
            fn();
        }
        catch (const std::exception& e)
        {
            spdlog::error("event=timer-callback-threw error=\"{}\"", e.what());
        }
        return 0;
    }

    std::function<void()> fn_;
    sd_event_source* source_ = nullptr;
};

} // namespace

EventScheduler::EventScheduler(sd_event* event) : event_(sd_event_ref(event)) {}

EventScheduler::~EventScheduler()
{
    sd_event_unref(event_);
}

std::chrono::system_clock::time_point EventScheduler::wallNow() const
{
    return std::chrono::system_clock::now();
}

Scheduler::Clock::time_point EventScheduler::now() const
{
    // steady_clock is CLOCK_MONOTONIC on Linux, so the loop's timestamp converts directly.
    std::uint64_t usec = 0;
    if (sd_event_now(event_, CLOCK_MONOTONIC, &usec) >= 0)
    {
        return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(usec)));
    }
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(ts.tv_sec) +
                                                                         std::chrono::nanoseconds(ts.tv_nsec)));
}

std::unique_ptr<Timer> EventScheduler::after(std::chrono::milliseconds delay, std::function<void()> fn)
{
    auto timer = std::make_unique<EventTimer>(std::move(fn));
    timer->arm(event_, delay);
    return timer;
}

} // namespace lvkeeper::sys

#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace lvkeeper
{

/// A pending timer; destroying it cancels it.
class Timer
{
  public:
    virtual ~Timer() = default;
};

/// Time and timers (sd-event in the daemon, a fake clock in tests).
class Scheduler
{
  public:
    using Clock = std::chrono::steady_clock;

    virtual ~Scheduler() = default;

    /// Monotonic now.
    virtual Clock::time_point now() const = 0;
    /// Wall-clock now, for what people read (the time of the last grow, when an operation started).
    virtual std::chrono::system_clock::time_point wallNow() const = 0;

    /// Calls fn once after delay, from the event loop, unless the returned Timer is destroyed first.
    virtual std::unique_ptr<Timer> after(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
};

} // namespace lvkeeper

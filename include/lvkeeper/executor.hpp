#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <string>

namespace lvkeeper
{

/// Runs blocking calls (fsync, fallocate, loop ioctls, blkid probes, mount(2), state file writes) off the event
/// loop, in the order they were handed over; `done` is called from the loop with what the work threw, if anything.
/// Work must touch only what it captured, never the keeper's state: that belongs to the loop.
class Executor
{
  public:
    using Work = std::function<void()>;
    using Done = std::function<void(std::exception_ptr error)>;

    virtual ~Executor() = default;

    /// Queues work; what names it in logs ("fallocate /media/disk3.img").
    virtual void offload(std::string what, Work work, Done done) = 0;
};

/// Offloads a call that returns a value; done(value, nullptr) or done({}, error).
template <typename T>
// NOLINTNEXTLINE(performance-unnecessary-value-param): what is moved into offload (14 misreads the template)
void offloadValue(Executor& executor, std::string what, std::function<T()> work,
                  std::function<void(T value, std::exception_ptr error)> done)
{
    auto value = std::make_shared<T>();
    executor.offload(
        std::move(what),
        [value, work = std::move(work)]
        {
            *value = work();
        },
        [value, done = std::move(done)](std::exception_ptr error)
        {
            done(error ? T{} : std::move(*value), error);
        });
}

} // namespace lvkeeper

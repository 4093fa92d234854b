#pragma once

#include "lvkeeper/sys/loop_wakeup.hpp"
#include "lvkeeper/system.hpp"

#include <systemd/sd-event.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace lvkeeper::sys
{

/// UsageProbes on one worker thread that sleeps until the earliest probe is due, reads statvfs through fs (which
/// must be safe to call from another thread) and wakes the event loop through an eventfd only when a reading
/// changed. Idle, the loop sleeps: only this thread's few instructions run at each look.
class ThreadUsageProbes : public UsageProbes
{
  public:
    ThreadUsageProbes(sd_event* event, Filesystems& fs);
    ~ThreadUsageProbes() override;

    ThreadUsageProbes(const ThreadUsageProbes&) = delete;
    ThreadUsageProbes& operator=(const ThreadUsageProbes&) = delete;

    std::unique_ptr<UsageWatch> watch(const std::string& path, std::chrono::milliseconds every, const FsUsage& seen,
                                      std::function<void()> changed) override;

    /// Statvfs calls made so far (tests: idle looks happened without waking the loop).
    std::uint64_t looks() const;

  private:
    using Clock = std::chrono::steady_clock;
    struct Probe
    {
        std::string path;
        std::chrono::milliseconds every{0};
        FsUsage seen;
        Clock::time_point due;
        std::function<void()> changed; ///< only touched on the loop's thread
        bool fired = false;
    };
    class Handle;

    void worker();
    void deliver();
    void cancel(std::uint64_t id);

    Filesystems& fs_;
    LoopWakeup wakeup_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::map<std::uint64_t, Probe> probes_;
    std::uint64_t nextId_ = 1;
    std::uint64_t looks_ = 0;
    Clock::time_point sleepingUntil_ = Clock::time_point::min(); ///< the worker's deadline while it waits
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace lvkeeper::sys

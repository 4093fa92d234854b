#pragma once

#include "lvkeeper/executor.hpp"
#include "lvkeeper/sys/loop_wakeup.hpp"

#include <systemd/sd-event.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

namespace lvkeeper::sys
{

/// Executor with one worker thread; completions come back to sd-event through an eventfd. Work runs one item
/// at a time, in order. Destroying it waits for the item that runs (it cannot be interrupted) and drops the rest
/// without calling their done.
class ThreadExecutor : public Executor
{
  public:
    explicit ThreadExecutor(sd_event* event);
    ~ThreadExecutor() override;

    ThreadExecutor(const ThreadExecutor&) = delete;
    ThreadExecutor& operator=(const ThreadExecutor&) = delete;

    void offload(std::string what, Work work, Done done) override;
    /// Waits for the item that runs, drops the rest (no done is called) and stops the worker.
    void shutdown();
    /// Items queued or running.
    std::size_t pending() const;

  private:
    struct Item
    {
        std::string what;
        Work work;
        Done done;
        std::exception_ptr error;
    };

    void worker();
    void deliver();

    LoopWakeup wakeup_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Item> queue_;
    std::deque<Item> finished_;
    std::size_t running_ = 0;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace lvkeeper::sys

#include "lvkeeper/sys/thread_executor.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>

namespace lvkeeper::sys
{

namespace
{

// Slow storage is exactly when the loop must keep turning; but an admin wants to hear about it.
constexpr std::chrono::seconds slowWork{5};

} // namespace

ThreadExecutor::ThreadExecutor(sd_event* event)
    : wakeup_(event, "executor",
              [this]
              {
                  deliver();
              })
{
    thread_ = std::thread(
        [this]
        {
            worker();
        });
}

ThreadExecutor::~ThreadExecutor()
{
    shutdown();
}

void ThreadExecutor::shutdown()
{
    if (!thread_.joinable())
    {
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        if (!queue_.empty())
        {
            spdlog::warn("event=executor-dropped items={} reason=shutdown", queue_.size());
        }
        queue_.clear();
    }
    wake_.notify_all();
    thread_.join();
    std::lock_guard<std::mutex> lock(mutex_);
    finished_.clear();
}

void ThreadExecutor::offload(std::string what, Work work, Done done)
{
    {
        std::lock_guard<std::mutex> lock(mutex_);
        queue_.push_back(Item{std::move(what), std::move(work), std::move(done), nullptr});
    }
    wake_.notify_one();
}

std::size_t ThreadExecutor::pending() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_.size() + running_ + finished_.size();
}

void ThreadExecutor::worker()
{
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;)
    {
        wake_.wait(lock,
                   [this]
                   {
                       return stopping_ || !queue_.empty();
                   });
        if (stopping_)
        {
            return;
        }
        Item item = std::move(queue_.front());
        queue_.pop_front();
        ++running_;
        lock.unlock();

        auto start = std::chrono::steady_clock::now();
        try
        {
            item.work();
        }
        catch (...)
        {
            item.error = std::current_exception();
        }
        auto took = std::chrono::steady_clock::now() - start;
        if (took >= slowWork)
        {
            spdlog::warn("event=slow-io what=\"{}\" duration_ms={}", item.what,
                         std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
        }
        item.work = nullptr; // what it captured is released here, not in the loop

        lock.lock();
        --running_;
        finished_.push_back(std::move(item));
        wakeup_.signal();
    }
}

void ThreadExecutor::deliver()
{
    std::deque<Item> done;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        done.swap(finished_);
    }
    for (auto& item : done)
    {
        if (!item.done)
        {
            continue;
        }
        try
        {
            item.done(item.error);
        }
        catch (const std::exception& e)
        {
            spdlog::error("event=executor-callback-threw what=\"{}\" error=\"{}\"", item.what, e.what());
        }
    }
}

} // namespace lvkeeper::sys

#include "lvkeeper/sys/usage_probes.hpp"

#include <spdlog/spdlog.h>

namespace lvkeeper::sys
{

class ThreadUsageProbes::Handle : public UsageWatch
{
  public:
    Handle(ThreadUsageProbes& owner, std::uint64_t id) : owner_(owner), id_(id) {}
    ~Handle() override
    {
        owner_.cancel(id_);
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

  private:
    ThreadUsageProbes& owner_;
    std::uint64_t id_;
};

ThreadUsageProbes::ThreadUsageProbes(sd_event* event, Filesystems& fs)
    : fs_(fs), wakeup_(event, "usage-probes",
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

ThreadUsageProbes::~ThreadUsageProbes()
{
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        probes_.clear();
    }
    wake_.notify_all();
    // A statvfs that runs is waited for: it reads counters, it does no I/O on ext4 or XFS.
    thread_.join();
}

std::unique_ptr<UsageWatch> ThreadUsageProbes::watch(const std::string& path, std::chrono::milliseconds every,
                                                     const FsUsage& seen, std::function<void()> changed)
{
    every = std::max(every, std::chrono::milliseconds{1});
    std::uint64_t id = 0;
    bool sooner = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        id = nextId_++;
        auto due = Clock::now() + every;
        probes_.emplace(id, Probe{path, every, seen, due, std::move(changed), false});
        // The worker wakes at its deadline anyway and finds this one then: only an earlier one needs it now
        // (each look of the loop replaces its probe, and a wakeup is most of what a look costs).
        sooner = due < sleepingUntil_;
    }
    if (sooner)
    {
        wake_.notify_one();
    }
    return std::make_unique<Handle>(*this, id);
}

std::uint64_t ThreadUsageProbes::looks() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return looks_;
}

void ThreadUsageProbes::cancel(std::uint64_t id)
{
    std::function<void()> dropped;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = probes_.find(id);
        if (it == probes_.end())
        {
            return;
        }
        dropped = std::move(it->second.changed); // destroyed outside the lock
        probes_.erase(it);
    }
}

void ThreadUsageProbes::worker()
{
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_)
    {
        // The probe due first; fired ones wait for the loop to take their call.
        auto next = probes_.end();
        for (auto it = probes_.begin(); it != probes_.end(); ++it)
        {
            if (!it->second.fired && (next == probes_.end() || it->second.due < next->second.due))
            {
                next = it;
            }
        }
        auto due = next == probes_.end() ? Clock::time_point::max() : next->second.due;
        if (Clock::now() < due)
        {
            sleepingUntil_ = due;
            if (due == Clock::time_point::max())
            {
                wake_.wait(lock);
            }
            else
            {
                wake_.wait_until(lock, due);
            }
            sleepingUntil_ = Clock::time_point::min();
            continue; // woken early (a sooner probe, the end) or due: look again at what is due
        }
        const std::uint64_t id = next->first;
        const std::string path = next->second.path;
        const FsUsage seen = next->second.seen;
        lock.unlock();
        bool changed = true; // a failing statvfs too: the loop's own look reports it
        try
        {
            changed = !fs_.usage(path).sameAs(seen);
        }
        catch (const std::exception&)
        {
        }
        lock.lock();
        ++looks_;
        auto it = probes_.find(id);
        if (it == probes_.end())
        {
            continue; // cancelled while it looked
        }
        if (changed)
        {
            it->second.fired = true;
            wakeup_.signal();
        }
        else
        {
            it->second.due = Clock::now() + it->second.every;
        }
    }
}

void ThreadUsageProbes::deliver()
{
    std::vector<std::function<void()>> calls;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto it = probes_.begin(); it != probes_.end();)
        {
            if (it->second.fired)
            {
                calls.push_back(std::move(it->second.changed));
                it = probes_.erase(it);
            }
            else
            {
                ++it;
            }
        }
    }
    for (auto& call : calls)
    {
        // A call may cancel or start other probes (its look schedules the next one): none is held here.
        try
        {
            if (call)
            {
                call();
            }
        }
        catch (const std::exception& e)
        {
            spdlog::error("event=usage-probe-callback-threw error=\"{}\"", e.what());
        }
    }
}

} // namespace lvkeeper::sys

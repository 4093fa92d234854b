#pragma once

#include <deque>
#include <functional>
#include <map>
#include <string>

namespace lvkeeper
{

/// Serial queues of asynchronous jobs keyed by VG: jobs on one key run one at a time, in order.
class JobQueue
{
  public:
    /// Called by a job exactly once when it is over; starts the next job of its key.
    using Finish = std::function<void()>;
    using Job = std::function<void(Finish)>;
    /// Called instead of the job when it is dropped before it ran (lvkeeperd stops).
    using Cancel = std::function<void()>;

    /// Appends a job; it starts at once when its key is idle.
    void enqueue(const std::string& key, std::string name, Job job, Cancel cancel = {});
    /// Puts a job ahead of the waiting ones (never ahead of the running one): for work that cannot wait.
    void enqueueFirst(const std::string& key, std::string name, Job job, Cancel cancel = {});
    /// Drops every waiting job of every key, calling its cancel; running jobs go on.
    void cancelWaiting();
    /// Whether no job runs on any key.
    bool idle() const;
    /// Called whenever a job finishes (after the next one, if any, started).
    void setOnFinish(std::function<void()> onFinish);
    /// Whether a job of this key is running.
    bool busy(const std::string& key) const;
    /// Jobs waiting (not running) on this key.
    std::size_t waiting(const std::string& key) const;
    /// Name of the running job of this key, empty when idle.
    std::string running(const std::string& key) const;

  private:
    struct Waiting
    {
        std::string name;
        Job job;
        Cancel cancel;
    };
    struct Lane
    {
        std::deque<Waiting> waiting;
        std::string running;
        bool busy = false;
    };
    void pump(const std::string& key);

    std::map<std::string, Lane> lanes_;
    std::function<void()> onFinish_;
};

} // namespace lvkeeper

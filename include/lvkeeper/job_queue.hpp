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

    /// Appends a job; it starts at once when its key is idle.
    void enqueue(const std::string& key, std::string name, Job job);
    /// Puts a job ahead of the waiting ones (never ahead of the running one): for work that cannot wait.
    void enqueueFirst(const std::string& key, std::string name, Job job);
    /// Whether a job of this key is running.
    bool busy(const std::string& key) const;
    /// Jobs waiting (not running) on this key.
    std::size_t waiting(const std::string& key) const;
    /// Name of the running job of this key, empty when idle.
    std::string running(const std::string& key) const;

  private:
    struct Lane
    {
        std::deque<std::pair<std::string, Job>> waiting;
        std::string running;
        bool busy = false;
    };
    void pump(const std::string& key);

    std::map<std::string, Lane> lanes_;
};

} // namespace lvkeeper

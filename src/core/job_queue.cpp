#include "lvkeeper/job_queue.hpp"

#include <memory>
#include <utility>

namespace lvkeeper
{

void JobQueue::enqueue(const std::string& key, std::string name, Job job)
{
    lanes_[key].waiting.emplace_back(std::move(name), std::move(job));
    pump(key);
}

bool JobQueue::busy(const std::string& key) const
{
    auto it = lanes_.find(key);
    return it != lanes_.end() && it->second.busy;
}

std::size_t JobQueue::waiting(const std::string& key) const
{
    auto it = lanes_.find(key);
    return it == lanes_.end() ? 0 : it->second.waiting.size();
}

std::string JobQueue::running(const std::string& key) const
{
    auto it = lanes_.find(key);
    return it == lanes_.end() ? std::string() : it->second.running;
}

void JobQueue::pump(const std::string& key)
{
    Lane& lane = lanes_[key];
    if (lane.busy || lane.waiting.empty())
    {
        return;
    }
    auto [name, job] = std::move(lane.waiting.front());
    lane.waiting.pop_front();
    lane.busy = true;
    lane.running = name;
    // A job may finish synchronously; `finished` guards against a double call.
    auto finished = std::make_shared<bool>(false);
    job(
        [this, key, finished]
        {
            if (*finished)
            {
                return;
            }
            *finished = true;
            Lane& l = lanes_[key];
            l.busy = false;
            l.running.clear();
            pump(key);
        });
}

} // namespace lvkeeper

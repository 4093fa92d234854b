#include "lvkeeper/job_queue.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <memory>
#include <utility>

namespace lvkeeper
{

void JobQueue::enqueue(const std::string& key, std::string name, Job job)
{
    lanes_[key].waiting.emplace_back(std::move(name), std::move(job));
    pump(key);
}

void JobQueue::enqueueFirst(const std::string& key, std::string name, Job job)
{
    lanes_[key].waiting.emplace_front(std::move(name), std::move(job));
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
    Finish finish = [this, key, finished]
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
    };
    try
    {
        job(finish);
    }
    catch (const std::exception& e)
    {
        // A job that throws must not leave its VG's lane busy forever: later jobs still run.
        spdlog::error("event=job-threw job=\"{}\" error=\"{}\"", name, e.what());
        finish();
    }
}

} // namespace lvkeeper

#include "lvkeeper/job_queue.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <memory>
#include <utility>
#include <vector>

namespace lvkeeper
{

void JobQueue::enqueue(const std::string& key, std::string name, Job job, Cancel cancel)
{
    lanes_[key].waiting.push_back(Waiting{std::move(name), std::move(job), std::move(cancel)});
    pump(key);
}

void JobQueue::enqueueFirst(const std::string& key, std::string name, Job job, Cancel cancel)
{
    lanes_[key].waiting.push_front(Waiting{std::move(name), std::move(job), std::move(cancel)});
    pump(key);
}

void JobQueue::cancelWaiting()
{
    std::vector<Cancel> cancels;
    for (auto& [key, lane] : lanes_)
    {
        for (auto& w : lane.waiting)
        {
            spdlog::info("event=job-cancelled job=\"{}\" reason=stopping", w.name);
            if (w.cancel)
            {
                cancels.push_back(std::move(w.cancel));
            }
        }
        lane.waiting.clear();
    }
    // After the lanes are consistent: a cancel may enqueue (and is then refused by its caller's stop check).
    for (auto& cancel : cancels)
    {
        cancel();
    }
}

bool JobQueue::idle() const
{
    for (const auto& [key, lane] : lanes_)
    {
        if (lane.busy)
        {
            return false;
        }
    }
    return true;
}

void JobQueue::setOnFinish(std::function<void()> onFinish)
{
    onFinish_ = std::move(onFinish);
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
    Waiting next = std::move(lane.waiting.front());
    lane.waiting.pop_front();
    std::string name = std::move(next.name);
    Job job = std::move(next.job);
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
        if (onFinish_)
        {
            onFinish_();
        }
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

#include "lvkeeper/publisher.hpp"

#include "lvkeeper/policy.hpp"

namespace lvkeeper
{

Publisher::Publisher(Scheduler& scheduler, std::chrono::milliseconds interval, Volumes volumes) :
    scheduler_(scheduler), interval_(interval), volumes_(std::move(volumes))
{
}

Publisher::~Publisher() = default;

void Publisher::setListener(KeeperListener* listener)
{
    listener_ = listener;
}

void Publisher::changed(const std::string& mountPoint)
{
    dirty_.insert(mountPoint);
    if (timer_)
    {
        return;
    }
    timer_ = scheduler_.after(interval_,
                              [this]
                              {
                                  flush();
                              });
}

void Publisher::changedAll()
{
    for (const auto& v : volumes_())
    {
        changed(v.config.mountPoint);
    }
}

void Publisher::flush()
{
    auto pending = std::move(dirty_);
    dirty_.clear();
    auto keep = std::move(timer_); // destroyed at scope end, after the callback returns
    if (listener_)
    {
        const auto& volumes = volumes_();
        for (std::size_t i = 0; i < volumes.size(); ++i)
        {
            if (pending.count(volumes[i].config.mountPoint))
            {
                listener_->volumeChanged(i);
            }
        }
    }
    status();
    if (onFlush_)
    {
        onFlush_();
    }
}

void Publisher::setOnFlush(std::function<void()> onFlush)
{
    onFlush_ = std::move(onFlush);
}

void Publisher::status()
{
    std::string line = statusLine();
    if (line != lastStatus_)
    {
        lastStatus_ = line;
        if (listener_)
        {
            listener_->statusChanged(line);
        }
    }
}

void Publisher::replaced()
{
    dirty_.clear();
    timer_.reset();
    if (listener_)
    {
        listener_->volumesReplaced();
    }
}

void Publisher::setNote(const std::string& note)
{
    note_ = note;
    status();
}

std::string Publisher::statusLine() const
{
    const auto& volumes = volumes_();
    std::string line;
    if (volumes.empty())
    {
        line = "watching no volumes (add a [Volume] section to lvkeeper.conf)";
    }
    for (const auto& v : volumes)
    {
        std::string part = policy::statusFragment(v.config, v.usage, v.mounted, v.readOnly);
        if (v.exhausted)
        {
            part += ", EXHAUSTED (" + v.exhausted->substr(0, v.exhausted->find(':')) + ")";
        }
        if (v.fsErrors)
        {
            part += ", FILESYSTEM ERRORS";
        }
        if (v.activity != Activity::Idle)
        {
            part += " (" + std::string(activityName(v.activity)) + ")";
        }
        line += (line.empty() ? "" : "; ") + part;
    }
    if (!note_.empty())
    {
        line = note_ + ": " + line;
    }
    return line;
}

void Publisher::thresholdCrossed(const VolumeState& v)
{
    if (listener_)
    {
        listener_->thresholdCrossed(v.config.mountPoint, v.usage.usedPercent(), v.usage.available);
    }
}

void Publisher::grown(const std::string& volume, std::uint64_t oldSize, std::uint64_t newSize,
                      const std::string& reason)
{
    if (listener_)
    {
        listener_->grown(volume, oldSize, newSize, reason);
    }
}

void Publisher::growFailed(const std::string& volume, const std::string& error)
{
    if (listener_)
    {
        listener_->growFailed(volume, error);
    }
}

void Publisher::diskAdded(const std::string& vg, const std::string& image, const std::string& device,
                          std::uint64_t size)
{
    if (listener_)
    {
        listener_->diskAdded(vg, image, device, size);
    }
}

void Publisher::remounted(const std::string& volume)
{
    if (listener_)
    {
        listener_->remounted(volume);
    }
}

void Publisher::readOnly(const std::string& volume, const std::string& reason)
{
    if (listener_)
    {
        listener_->readOnly(volume, reason);
    }
}

void Publisher::spaceExhausted(const std::string& volume, const std::string& reason)
{
    if (listener_)
    {
        listener_->spaceExhausted(volume, reason);
    }
}

void Publisher::progress(const std::string& job, double fraction)
{
    if (listener_)
    {
        listener_->progress(job, fraction);
    }
}

} // namespace lvkeeper

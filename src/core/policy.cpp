#include "lvkeeper/policy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace lvkeeper::policy
{

bool aboveThreshold(const VolumeConfig& config, const FsUsage& usage)
{
    return usage.usedPercent() >= config.growAt || usage.inodesUsedPercent() >= config.growAt;
}

std::uint64_t requestedTarget(const SizeRequest& request, std::uint64_t lvSize, std::uint64_t growStep,
                              std::uint64_t extentSize)
{
    // Saturate: a wrapped sum would look already reached, and roundUp would throw out of a running job.
    constexpr std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    auto plus = [](std::uint64_t a, std::uint64_t b)
    {
        return b > max - a ? max : a + b;
    };
    std::uint64_t target = 0;
    switch (request.kind)
    {
    case SizeRequest::Kind::Default:
        target = plus(lvSize, growStep);
        break;
    case SizeRequest::Kind::Relative:
        target = plus(lvSize, request.bytes);
        break;
    case SizeRequest::Kind::Absolute:
        target = request.bytes;
        break;
    }
    if (extentSize == 0)
    {
        return target;
    }
    const std::uint64_t largest = max / extentSize * extentSize;
    return target > largest ? largest : roundUp(target, extentSize);
}

GrowPlan planGrow(std::uint64_t target, std::uint64_t lvSize, std::optional<std::uint64_t> maxSize,
                  std::uint64_t vgFree, std::uint64_t extentSize, bool partial)
{
    GrowPlan plan;
    plan.target = target;
    if (maxSize)
    {
        // MaxSize is a ceiling: never round it up past what the admin allowed.
        std::uint64_t ceiling = extentSize > 0 ? *maxSize / extentSize * extentSize : *maxSize;
        if (plan.target > ceiling)
        {
            plan.target = std::max(ceiling, lvSize);
            plan.cappedByMaxSize = true;
        }
    }
    if (plan.target > lvSize && plan.target - lvSize > vgFree)
    {
        plan.cappedByVg = true;
        if (partial)
        {
            plan.target = lvSize + vgFree;
        }
    }
    if (plan.target < lvSize)
    {
        plan.target = lvSize;
    }
    return plan;
}

bool filesystemBehind(std::uint64_t fsSize, std::uint64_t lvSize, std::uint64_t extentSize)
{
    std::uint64_t slack = std::max<std::uint64_t>(extentSize, 1);
    return lvSize > fsSize && lvSize - fsSize >= slack;
}

std::chrono::milliseconds cooldownLeft(std::chrono::steady_clock::time_point now,
                                       std::optional<std::chrono::steady_clock::time_point> lastGrowEnd,
                                       std::chrono::milliseconds cooldown)
{
    if (!lastGrowEnd)
    {
        return std::chrono::milliseconds{0};
    }
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - *lastGrowEnd);
    return elapsed >= cooldown ? std::chrono::milliseconds{0} : cooldown - elapsed;
}

void recordSample(std::deque<UsageSample>& history, UsageSample sample, const Headroom& tuning)
{
    // A clock that went backwards (it does not, steady_clock) or a remount with less used: start again.
    if (!history.empty() && sample.at < history.back().at)
    {
        history.clear();
    }
    history.push_back(sample);
    while (history.size() > tuning.maxSamples || (history.size() > 1 && sample.at - history.front().at > tuning.window))
    {
        history.pop_front();
    }
}

double fillRate(const std::deque<UsageSample>& history, const Headroom& tuning)
{
    if (history.size() < std::max<std::size_t>(2, tuning.minimumSamples))
    {
        return 0.0;
    }
    const auto& first = history.front();
    const auto& last = history.back();
    auto span = std::chrono::duration_cast<std::chrono::duration<double>>(last.at - first.at);
    if (last.at - first.at < tuning.minimumSpan || last.used <= first.used)
    {
        return 0.0;
    }
    return static_cast<double>(last.used - first.used) / span.count();
}

std::int64_t timeToFull(std::uint64_t available, double rate)
{
    if (!(rate > 0.0))
    {
        return -1;
    }
    double seconds = static_cast<double>(available) / rate;
    constexpr auto limit = static_cast<double>(std::numeric_limits<std::int64_t>::max()) / 2; // 2^62 exactly
    return seconds >= limit ? static_cast<std::int64_t>(limit) : static_cast<std::int64_t>(std::ceil(seconds));
}

std::chrono::milliseconds plannedGrowDuration(std::chrono::milliseconds lastGrow, const Headroom& tuning)
{
    return lastGrow.count() > 0 ? lastGrow : tuning.assumedGrow;
}

std::uint64_t headroomNeeded(double rate, std::chrono::milliseconds growDuration, const Headroom& tuning)
{
    if (!(rate > 0.0))
    {
        return 0;
    }
    double bytes = rate * (static_cast<double>(growDuration.count()) / 1000.0) * tuning.safety;
    constexpr auto limit = static_cast<double>(std::numeric_limits<std::uint64_t>::max()) / 4; // 2^62 exactly
    return bytes >= limit ? static_cast<std::uint64_t>(limit) : static_cast<std::uint64_t>(bytes);
}

bool needsGrow(const VolumeConfig& config, const FsUsage& usage, double rate, std::chrono::milliseconds growDuration,
               const Headroom& tuning)
{
    if (aboveThreshold(config, usage))
    {
        return true;
    }
    return rate > 0.0 && usage.available < headroomNeeded(rate, growDuration, tuning);
}

bool urgent(const FsUsage& usage, double rate, std::chrono::milliseconds wait, std::chrono::milliseconds growDuration,
            const Headroom& tuning)
{
    return rate > 0.0 && usage.available < headroomNeeded(rate, wait + growDuration, tuning);
}

std::uint64_t autoStep(std::uint64_t growStep, double rate, std::chrono::milliseconds growDuration,
                       const Headroom& tuning, std::uint64_t lvSize)
{
    std::uint64_t need = headroomNeeded(rate, growDuration, tuning);
    std::uint64_t step = need > growStep / 2 ? std::max(growStep, 2 * need) : growStep;
    return std::min(step, std::max(growStep, lvSize));
}

bool vgShort(double rate, std::uint64_t vgFree, std::chrono::milliseconds addDuration,
             std::chrono::milliseconds growDuration, const Headroom& tuning)
{
    return rate > 0.0 && vgFree < headroomNeeded(rate, addDuration + growDuration, tuning);
}

std::chrono::milliseconds nextLook(const VolumeConfig& config, const FsUsage& usage, double fastestRate,
                                   std::chrono::milliseconds growDuration, const Headroom& tuning, const Looks& looks,
                                   std::chrono::milliseconds backstop)
{
    double rate = std::max(fastestRate, looks.assumedRate);
    auto total = static_cast<double>(usage.used + usage.available);
    // Bytes until used space reaches GrowAt, and until what is left is less than the headroom a writer as fast
    // as the fastest one measured needs (needsGrow's two triggers).
    double toGrowAt = total * config.growAt / 100.0 - static_cast<double>(usage.used);
    double toHeadroom =
        static_cast<double>(usage.available) - static_cast<double>(headroomNeeded(fastestRate, growDuration, tuning));
    double distance = std::min(toGrowAt, toHeadroom);
    if (!(distance > 0.0))
    {
        return std::min(looks.floor, backstop);
    }
    auto wait = std::chrono::milliseconds(static_cast<std::int64_t>(distance / rate * looks.margin * 1000.0));
    return std::clamp(wait, std::min(looks.floor, backstop), backstop);
}

std::chrono::milliseconds backoff(unsigned failures)
{
    constexpr std::chrono::milliseconds first{1000};
    constexpr std::chrono::milliseconds cap{60000};
    if (failures == 0)
    {
        return std::chrono::milliseconds{0};
    }
    auto wait = first;
    for (unsigned n = 1; n < failures && wait < cap; ++n)
    {
        wait *= 2;
    }
    return std::min(wait, cap);
}

unsigned disksToAdd(std::uint64_t needed, std::uint64_t vgFree, std::uint64_t imageSize)
{
    if (needed <= vgFree || imageSize == 0)
    {
        return 0;
    }
    std::uint64_t shortfall = needed - vgFree;
    std::uint64_t count = (shortfall + imageSize - 1) / imageSize;
    return count > 64 ? 64u : static_cast<unsigned>(count);
}

std::string statusFragment(const VolumeConfig& config, const FsUsage& usage, bool mounted, bool readOnly)
{
    if (!mounted)
    {
        return config.mountPoint + " not mounted";
    }
    char percent[32];
    std::snprintf(percent, sizeof(percent), "%.0f%%", std::floor(usage.usedPercent()));
    char growAt[32];
    std::snprintf(growAt, sizeof(growAt), "%g%%", config.growAt);
    std::string text = config.mountPoint + " " + percent + " used";
    if (readOnly)
    {
        return text + ", READ-ONLY";
    }
    if (!config.autoGrow)
    {
        return text + ", auto-grow off";
    }
    return text + ", grows at " + growAt + " by " + formatSize(config.growStep);
}

} // namespace lvkeeper::policy

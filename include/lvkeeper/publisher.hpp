#pragma once

#include "lvkeeper/scheduler.hpp"
#include "lvkeeper/volume.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace lvkeeper
{

/// What the world hears from the keeper: D-Bus signals and sd_notify STATUS=.
class KeeperListener
{
  public:
    virtual ~KeeperListener() = default;

    virtual void thresholdCrossed(const std::string& volume, double usedPercent, std::uint64_t available) = 0;
    virtual void grown(const std::string& volume, std::uint64_t oldSize, std::uint64_t newSize,
                       const std::string& reason) = 0;
    virtual void growFailed(const std::string& volume, const std::string& error) = 0;
    virtual void diskAdded(const std::string& vg, const std::string& image, const std::string& device,
                           std::uint64_t size) = 0;
    virtual void remounted(const std::string& volume) = 0;
    virtual void readOnly(const std::string& volume, const std::string& reason) = 0;
    virtual void spaceExhausted(const std::string& volume, const std::string& reason) = 0;
    /// Properties of volumes()[index] changed (already rate-limited).
    virtual void volumeChanged(std::size_t index) = 0;
    /// The one-line status changed.
    virtual void statusChanged(const std::string& status) = 0;
    /// The list of volumes changed (reload): indexes are new.
    virtual void volumesReplaced() = 0;
    /// A long job (a pvmove) started, moved on (fraction 0..1) or ended (job empty).
    virtual void progress(const std::string& job, double fraction) = 0;
};

/// The one place outcomes become signals and property changes: signals go out at once (they report what is
/// already durable), property changes at most once per interval however busy the writers are.
class Publisher
{
  public:
    using Volumes = std::function<const std::vector<VolumeState>&()>;

    Publisher(Scheduler& scheduler, std::chrono::milliseconds interval, Volumes volumes);
    ~Publisher();

    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    void setListener(KeeperListener* listener);

    /// Properties of the volume at mountPoint changed: PropertiesChanged and STATUS= within the interval.
    void changed(const std::string& mountPoint);
    /// Every volume changed (a rescan, a reload).
    void changedAll();
    /// STATUS= now if it differs from the last one.
    void status();
    /// The list of volumes was replaced: pending changes are dropped, the bus objects rebuilt.
    void replaced();
    /// Adds a note to STATUS= ("stopping"), or clears it with "".
    void setNote(const std::string& note);
    /// The STATUS= line for the volumes as they are now.
    std::string statusLine() const;
    /// Called after each batch of property changes (at most once per interval): the metrics file follows it.
    void setOnFlush(std::function<void()> onFlush);

    // Signals.
    void thresholdCrossed(const VolumeState& v);
    void grown(const std::string& volume, std::uint64_t oldSize, std::uint64_t newSize, const std::string& reason);
    void growFailed(const std::string& volume, const std::string& error);
    void diskAdded(const std::string& vg, const std::string& image, const std::string& device, std::uint64_t size);
    void remounted(const std::string& volume);
    void readOnly(const std::string& volume, const std::string& reason);
    void spaceExhausted(const std::string& volume, const std::string& reason);
    void progress(const std::string& job, double fraction);

  private:
    void flush();

    Scheduler& scheduler_;
    std::chrono::milliseconds interval_;
    Volumes volumes_;
    KeeperListener* listener_ = nullptr;
    std::set<std::string> dirty_;
    std::unique_ptr<Timer> timer_;
    std::string lastStatus_;
    std::string note_;
    std::function<void()> onFlush_;
};

} // namespace lvkeeper

#pragma once

#include "lvkeeper/config.hpp"
#include "lvkeeper/size.hpp"
#include "lvkeeper/system.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

namespace lvkeeper::policy
{

/// Whether used space or used inodes are at or above the volume's GrowAt.
bool aboveThreshold(const VolumeConfig& config, const FsUsage& usage);

/// The LV size a grow request asks for, rounded up to whole extents, before any cap.
std::uint64_t requestedTarget(const SizeRequest& request, std::uint64_t lvSize, std::uint64_t growStep,
                              std::uint64_t extentSize);

/// The outcome of fitting a target into MaxSize and the VG's free space.
struct GrowPlan
{
    std::uint64_t target = 0; ///< LV size to extend to; == lvSize when nothing can be done
    bool cappedByMaxSize = false;
    bool cappedByVg = false;

    bool growsAnything(std::uint64_t lvSize) const
    {
        return target > lvSize;
    }
};

/// Caps target by MaxSize (rounded down to extents) and, when partial is allowed, by the VG's free space.
/// Without partial, a target that does not fit the VG is returned uncapped with cappedByVg set.
GrowPlan planGrow(std::uint64_t target, std::uint64_t lvSize, std::optional<std::uint64_t> maxSize,
                  std::uint64_t vgFree, std::uint64_t extentSize, bool partial);

/// Whether the filesystem lags its LV by at least one extent (a resize that did not happen).
bool filesystemBehind(std::uint64_t fsSize, std::uint64_t lvSize, std::uint64_t extentSize);

/// How long auto-grow must still wait after the last grow ended, or zero.
std::chrono::milliseconds cooldownLeft(std::chrono::steady_clock::time_point now,
                                       std::optional<std::chrono::steady_clock::time_point> lastGrowEnd,
                                       std::chrono::milliseconds cooldown);

/// One reading of used space, taken when the volume's own write events made the keeper look.
struct UsageSample
{
    std::chrono::steady_clock::time_point at;
    std::uint64_t used = 0;
};

/// How the fill rate turns into headroom. Not admin configuration: the safety factor covers a grow
/// that takes longer than the last one (a busier VG, a disk being added first).
struct Headroom
{
    std::chrono::milliseconds window{5000};       ///< samples older than this do not count
    std::chrono::milliseconds minimumSpan{500};   ///< a rate needs at least this much history
    std::size_t minimumSamples = 4;               ///< and this many readings: one big fallocate is no writer
    std::chrono::milliseconds assumedGrow{10000}; ///< grow duration before one was measured (a busy, slow host)
    std::chrono::milliseconds assumedAdd{10000};  ///< AddDisk duration before one was measured
    double safety = 2.0;                          ///< headroom = rate x grow duration x safety
    std::size_t maxSamples = 64;
};

/// Adds a sample and forgets those older than the window (keeping at most maxSamples).
void recordSample(std::deque<UsageSample>& history, UsageSample sample, const Headroom& tuning);

/// Bytes per second used space grew over the recent window; 0 when it did not grow (or too little history).
double fillRate(const std::deque<UsageSample>& history, const Headroom& tuning);

/// Seconds until available is gone at rate; -1 when not filling.
std::int64_t timeToFull(std::uint64_t available, double rate);

/// The grow duration to plan with: the last measured one, or the assumption before the first.
std::chrono::milliseconds plannedGrowDuration(std::chrono::milliseconds lastGrow, const Headroom& tuning);

/// Bytes a writer at rate fills while a grow runs, with the safety factor.
std::uint64_t headroomNeeded(double rate, std::chrono::milliseconds growDuration, const Headroom& tuning);

/// Whether to grow now: used space or inodes at GrowAt, or less available than the headroom the fill rate needs.
bool needsGrow(const VolumeConfig& config, const FsUsage& usage, double rate, std::chrono::milliseconds growDuration,
               const Headroom& tuning);

/// Whether waiting out the cooldown would let the writer fill what is left (then grow at once).
bool urgent(const FsUsage& usage, double rate, std::chrono::milliseconds wait, std::chrono::milliseconds growDuration,
            const Headroom& tuning);

/// The automatic step: GrowStep, or for a fast writer twice the headroom it needs, so it gets fewer, larger grows;
/// never more than doubles the LV (lvSize) in one grow, whatever the rate says.
std::uint64_t autoStep(std::uint64_t growStep, double rate, std::chrono::milliseconds growDuration,
                       const Headroom& tuning, std::uint64_t lvSize);

/// Whether the VG, with AutoAddDisk, must get a disk now: it cannot hold what the writer fills while a disk
/// is added and the volume grown into it (so waiting for the VG to run dry would be too late).
bool vgShort(double rate, std::uint64_t vgFree, std::chrono::milliseconds addDuration,
             std::chrono::milliseconds growDuration, const Headroom& tuning);

/// Looking again at a volume for writes fanotify cannot see (a shared mmap, a loop device over a file on it).
struct Looks
{
    double assumedRate = 128.0 * 1024 * 1024; ///< bytes/s a writer is assumed able to sustain before one is measured
    std::chrono::milliseconds floor{250};     ///< never sooner: statvfs is cheap, but idle must stay idle
    /// Look again after this share of the time the writer needs. 1: the writer reaches the grow point at the
    /// latest at the look. Each look is a wakeup of the probe thread (about 50 us of CPU on a 2-core VM, idle
    /// caches): halving this doubles the idle cost near GrowAt (tests/bench/idle).
    double margin = 1.0;
};

/// When to look again: early enough that a writer at the fastest rate (the fastest measured, or the assumed one)
/// cannot cross the distance from the current use to the point where a grow must start (GrowAt, or the headroom
/// the fastest measured rate needs) before the look; never later than backstop, never sooner than the floor.
std::chrono::milliseconds nextLook(const VolumeConfig& config, const FsUsage& usage, double fastestRate,
                                   std::chrono::milliseconds growDuration, const Headroom& tuning, const Looks& looks,
                                   std::chrono::milliseconds backstop);

/// How long to wait before retrying after failures in a row: 1 s, doubling, at most 60 s.
std::chrono::milliseconds backoff(unsigned failures);

/// How many disks of imageSize cover a shortfall of needed bytes beyond vgFree (0 when none is short).
unsigned disksToAdd(std::uint64_t needed, std::uint64_t vgFree, std::uint64_t imageSize);

/// The STATUS= fragment for one volume: "/data 25% used, grows at 90% by 500M".
std::string statusFragment(const VolumeConfig& config, const FsUsage& usage, bool mounted, bool readOnly);

} // namespace lvkeeper::policy

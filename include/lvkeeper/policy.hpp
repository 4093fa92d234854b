#pragma once

#include "lvkeeper/config.hpp"
#include "lvkeeper/size.hpp"
#include "lvkeeper/system.hpp"

#include <chrono>
#include <cstdint>
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

/// The STATUS= fragment for one volume: "/data 25% used, grows at 90% by 500M".
std::string statusFragment(const VolumeConfig& config, const FsUsage& usage, bool mounted, bool readOnly);

} // namespace lvkeeper::policy

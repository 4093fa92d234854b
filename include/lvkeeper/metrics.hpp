#pragma once

#include "lvkeeper/volume.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace lvkeeper
{

/// The volumes as Prometheus' text exposition format, for node_exporter's textfile collector: names, units and
/// types after Prometheus' naming guide (base units, _bytes, _seconds, _total for counters).
std::string renderMetrics(const std::vector<VolumeState>& volumes, std::uint64_t disksAdded,
                          const std::string& version);

/// Where the metrics text goes (a file replaced atomically, world-readable).
class TextFiles
{
  public:
    virtual ~TextFiles() = default;

    /// Replaces path with text atomically (temp file, rename) with mode 0644. Throws std::system_error.
    virtual void replace(const std::string& path, const std::string& text) = 0;
};

} // namespace lvkeeper

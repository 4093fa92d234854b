#pragma once

#include "lvkeeper/executor.hpp"
#include "lvkeeper/volume.hpp"

#include <cstdint>
#include <functional>
#include <optional>
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

/// MetricsFile=: replaced off the loop after each batch of changes, one write at a time; a change during a write
/// is written after it, rendered then (the last state wins). A failure is logged once until a write works again.
class MetricsFileWriter
{
  public:
    MetricsFileWriter(Executor& executor, TextFiles& files, std::function<std::string()> render);

    /// Writes a fresh rendering to path (nothing when path is empty).
    void write(const std::string& path);

  private:
    Executor& executor_;
    TextFiles& files_;
    std::function<std::string()> render_;
    bool writing_ = false;
    bool failed_ = false;
    std::optional<std::string> next_; ///< the path of the write that follows the running one, if any
};

} // namespace lvkeeper

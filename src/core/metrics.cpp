#include "lvkeeper/metrics.hpp"

#include "lvkeeper/errors.hpp"
#include "lvkeeper/policy.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <set>
#include <sstream>
#include <utility>

namespace lvkeeper
{

namespace
{

/// A label value with Prometheus' escapes: backslash, double quote, newline.
std::string labelValue(const std::string& value)
{
    std::string out;
    for (char c : value)
    {
        if (c == '\\' || c == '"')
        {
            out += '\\';
            out += c;
        }
        else if (c == '\n')
        {
            out += "\\n";
        }
        else
        {
            out += c;
        }
    }
    return out;
}

std::string number(double value)
{
    if (value == std::numeric_limits<double>::infinity())
    {
        return "+Inf";
    }
    char text[64];
    std::snprintf(text, sizeof text, "%.17g", value);
    return text;
}

class Exposition
{
  public:
    /// One metric family: HELP, TYPE, then a sample per volume.
    void family(const char* name, const char* type, const char* help, const std::vector<VolumeState>& volumes,
                const std::function<double(const VolumeState&)>& value)
    {
        header(name, type, help);
        for (const auto& v : volumes)
        {
            out_ << name << "{volume=\"" << labelValue(v.config.mountPoint) << "\"} " << number(value(v)) << "\n";
        }
    }

    void header(const char* name, const char* type, const char* help)
    {
        out_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
    }

    std::ostringstream& out()
    {
        return out_;
    }

  private:
    std::ostringstream out_;
};

double flag(bool value)
{
    return value ? 1.0 : 0.0;
}

} // namespace

std::string renderMetrics(const std::vector<VolumeState>& volumes, std::uint64_t disksAdded, const std::string& version)
{
    Exposition e;
    e.header("lvkeeper_build_info", "gauge", "lvkeeperd's version; always 1.");
    e.out() << "lvkeeper_build_info{version=\"" << labelValue(version) << "\"} 1\n";
    e.header("lvkeeper_disks_added_total", "counter", "Disks lvkeeperd added to volume groups since it started.");
    e.out() << "lvkeeper_disks_added_total " << disksAdded << "\n";

    e.header("lvkeeper_volume_info", "gauge",
             "A watched volume, its device, volume group, LV and filesystem; always 1.");
    for (const auto& v : volumes)
    {
        e.out() << "lvkeeper_volume_info{volume=\"" << labelValue(v.config.mountPoint) << "\",device=\""
                << labelValue(v.mount.source) << "\",vg=\"" << labelValue(v.vg) << "\",lv=\"" << labelValue(v.lv)
                << "\",fstype=\"" << labelValue(v.mount.fsType) << "\"} 1\n";
    }
    e.family("lvkeeper_volume_mounted", "gauge", "1 when the volume is mounted.", volumes,
             [](const VolumeState& v)
             {
                 return flag(v.mounted);
             });
    e.family("lvkeeper_volume_read_only", "gauge", "1 when the volume is mounted read-only.", volumes,
             [](const VolumeState& v)
             {
                 return flag(v.readOnly);
             });
    e.family("lvkeeper_volume_filesystem_errors", "gauge", "1 when the filesystem recorded errors.", volumes,
             [](const VolumeState& v)
             {
                 return flag(v.fsErrors);
             });
    e.family("lvkeeper_volume_exhausted", "gauge",
             "1 while the volume can get no more space (SpaceExhausted was sent for this episode).", volumes,
             [](const VolumeState& v)
             {
                 return flag(v.exhausted.has_value());
             });
    e.family("lvkeeper_volume_size_bytes", "gauge", "Size of the filesystem as statvfs reports it.", volumes,
             [](const VolumeState& v)
             {
                 return static_cast<double>(v.usage.size);
             });
    e.family("lvkeeper_volume_used_bytes", "gauge", "Bytes used on the filesystem.", volumes,
             [](const VolumeState& v)
             {
                 return static_cast<double>(v.usage.used);
             });
    e.family("lvkeeper_volume_available_bytes", "gauge", "Bytes ordinary writers can still write.", volumes,
             [](const VolumeState& v)
             {
                 return static_cast<double>(v.usage.available);
             });
    e.family("lvkeeper_volume_logical_volume_size_bytes", "gauge", "Size of the volume's logical volume.", volumes,
             [](const VolumeState& v)
             {
                 return static_cast<double>(v.lvSize);
             });
    e.family("lvkeeper_volume_inodes", "gauge", "Inodes of the filesystem (0 when it has no limit).", volumes,
             [](const VolumeState& v)
             {
                 return static_cast<double>(v.usage.inodes);
             });
    e.family("lvkeeper_volume_inodes_used", "gauge", "Inodes in use.", volumes,
             [](const VolumeState& v)
             {
                 return static_cast<double>(v.usage.inodesUsed);
             });
    e.family("lvkeeper_volume_grow_at_ratio", "gauge", "GrowAt as a ratio of used space (0.9 for GrowAt=90).", volumes,
             [](const VolumeState& v)
             {
                 return v.config.growAt / 100.0;
             });
    e.family("lvkeeper_volume_fill_rate_bytes_per_second", "gauge",
             "How fast used space grew over the last seconds; 0 when it does not.", volumes,
             [](const VolumeState& v)
             {
                 return v.fillRate;
             });
    e.family("lvkeeper_volume_time_to_full_seconds", "gauge",
             "Seconds until the available space is gone at the fill rate; +Inf when not filling.", volumes,
             [](const VolumeState& v)
             {
                 auto seconds = policy::timeToFull(v.usage.available, v.fillRate);
                 return seconds < 0 ? std::numeric_limits<double>::infinity() : static_cast<double>(seconds);
             });
    e.family("lvkeeper_volume_grows_total", "counter", "Grows (automatic and requested) that succeeded.", volumes,
             [](const VolumeState& v)
             {
                 return static_cast<double>(v.growCount);
             });
    e.family("lvkeeper_volume_grow_failures_total", "counter", "Grow attempts that failed.", volumes,
             [](const VolumeState& v)
             {
                 return static_cast<double>(v.growFailureCount);
             });
    e.family("lvkeeper_volume_last_grow_duration_seconds", "gauge",
             "How long the last grow took (lvextend, flush and filesystem grow).", volumes,
             [](const VolumeState& v)
             {
                 return static_cast<double>(v.lastGrowDuration.count()) / 1000.0;
             });
    e.family("lvkeeper_volume_last_grow_timestamp_seconds", "gauge",
             "When the last grow ended, seconds since the epoch; 0 before the first.", volumes,
             [](const VolumeState& v)
             {
                 if (!v.lastGrowTime)
                 {
                     return 0.0;
                 }
                 return std::chrono::duration<double>(v.lastGrowTime->time_since_epoch()).count();
             });

    e.header("lvkeeper_volume_group_free_bytes", "gauge", "Free space of a volume group that holds a watched volume.");
    std::set<std::string> seen;
    for (const auto& v : volumes)
    {
        if (!v.vg.empty() && seen.insert(v.vg).second)
        {
            e.out() << "lvkeeper_volume_group_free_bytes{vg=\"" << labelValue(v.vg) << "\"} "
                    << number(static_cast<double>(v.vgFree)) << "\n";
        }
    }
    return e.out().str();
}

MetricsFileWriter::MetricsFileWriter(Executor& executor, TextFiles& files, std::function<std::string()> render)
    : executor_(executor), files_(files), render_(std::move(render))
{
}

void MetricsFileWriter::write(const std::string& path)
{
    if (path.empty())
    {
        return;
    }
    if (writing_)
    {
        next_ = path;
        return;
    }
    writing_ = true;
    executor_.offload(
        "write " + path,
        [this, path, text = render_()]
        {
            files_.replace(path, text);
        },
        [this, path](std::exception_ptr error)
        {
            writing_ = false;
            if (error && !failed_)
            {
                spdlog::error("event=metrics-write-failed path={} error=\"{}\"", path, describeError(error));
            }
            failed_ = error != nullptr;
            if (auto next = std::exchange(next_, std::nullopt))
            {
                write(*next);
            }
        });
}

} // namespace lvkeeper

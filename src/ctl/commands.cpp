#include "commands.hpp"

#include "format.hpp"

#include "lvkeeper/bus_names.hpp"
#include "lvkeeper/size.hpp"

#include "lvkeeper_build_config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>
#include <set>

namespace lvkeeper::ctl
{

namespace
{

template <typename T>
std::optional<T> property(const Properties& properties, const char* name)
{
    const auto it = properties.find(name);
    if (it == properties.end() || !it->second.containsValueOfType<T>())
    {
        return std::nullopt;
    }
    return it->second.get<T>();
}

std::string text(const Properties& p, const char* name)
{
    return property<std::string>(p, name).value_or("");
}

std::uint64_t bytes(const Properties& p, const char* name)
{
    return property<std::uint64_t>(p, name).value_or(0);
}

bool flag(const Properties& p, const char* name)
{
    return property<bool>(p, name).value_or(false);
}

Json toJson(const Properties& properties)
{
    Json out = Json::object();
    for (const auto& [name, value] : properties)
    {
        out[name] = ctl::toJson(value);
    }
    return out;
}

std::string percentOfFraction(double fraction)
{
    char out[16];
    std::snprintf(out, sizeof(out), "%.0f%%", std::clamp(fraction, 0.0, 1.0) * 100);
    return out;
}

std::string seconds(std::uint64_t milliseconds)
{
    char out[32];
    std::snprintf(out, sizeof(out), "%.1fs", static_cast<double>(milliseconds) / 1000.0);
    return out;
}

void field(const char* label, const std::string& value)
{
    std::printf("%12s: %s\n", label, value.c_str());
}

/// A watched volume as GetManagedObjects lists it.
struct Volume
{
    std::string path;
    Properties properties;

    std::string mountPoint() const
    {
        return text(properties, "MountPoint");
    }
    std::string lv() const
    {
        const std::string vg = text(properties, "VolumeGroup");
        return vg.empty() ? "" : vg + "/" + text(properties, "LogicalVolume");
    }
    /// What makes `status` exit 5, in the words of its JSON "Problems".
    std::vector<std::string> problems() const
    {
        std::vector<std::string> out;
        if (!flag(properties, "Mounted"))
        {
            out.emplace_back("not-mounted");
        }
        if (flag(properties, "ReadOnly"))
        {
            out.emplace_back("read-only");
        }
        if (flag(properties, "FilesystemErrors"))
        {
            out.emplace_back("filesystem-errors");
        }
        if (flag(properties, "Exhausted"))
        {
            out.emplace_back("exhausted");
        }
        return out;
    }
};

std::vector<Volume> volumes(Client& client)
{
    std::vector<Volume> out;
    for (const auto& [path, interfaces] : client.managedObjects())
    {
        const auto it = interfaces.find(dbus::volumeInterface);
        if (it != interfaces.end())
        {
            out.push_back({path, it->second});
        }
    }
    std::sort(out.begin(), out.end(),
              [](const Volume& a, const Volume& b)
              {
                  return a.mountPoint() < b.mountPoint();
              });
    return out;
}

std::string withoutTrailingSlash(std::string path)
{
    while (path.size() > 1 && path.back() == '/')
    {
        path.pop_back();
    }
    return path;
}

void printVolume(const Volume& volume)
{
    const Properties& p = volume.properties;
    const bool mounted = flag(p, "Mounted");
    std::printf("%s %s\n", bullet(), volume.mountPoint().c_str());

    const std::string device = text(p, "Device");
    std::string where = volume.lv().empty() ? "no logical volume found" : volume.lv();
    if (!device.empty())
    {
        where += " on " + device;
    }
    field("Volume", where);

    if (!mounted)
    {
        field("Filesystem", "NOT MOUNTED");
    }
    else
    {
        std::string fs = text(p, "Filesystem");
        fs += flag(p, "ReadOnly") ? ", READ-ONLY" : ", read-write";
        if (flag(p, "FilesystemErrors"))
        {
            fs += ", FILESYSTEM ERRORS (run fsck)";
        }
        field("Filesystem", fs);

        const std::uint64_t size = bytes(p, "Size");
        const std::uint64_t lvSize = bytes(p, "LogicalVolumeSize");
        // statvfs leaves out the filesystem's own metadata: the LV is always a little larger.
        field("Size", formatSize(size) + (lvSize ? ", LV " + formatSize(lvSize) : ""));
        field("Used", formatSize(bytes(p, "Used")) + " (" +
                          formatPercent(property<double>(p, "UsedPercent").value_or(0)) + "), " +
                          formatSize(bytes(p, "Available")) + " available");
        field("Inodes", formatPercent(property<double>(p, "InodesUsedPercent").value_or(0)) + " used");
    }
    if (!volume.lv().empty())
    {
        field("VG free", formatSize(bytes(p, "VolumeGroupFree")));
    }

    std::string growth =
        "at " + formatPercent(property<double>(p, "GrowAt").value_or(0)) + " by " + formatSize(bytes(p, "GrowStep"));
    const std::uint64_t maxSize = bytes(p, "MaxSize");
    growth += maxSize ? ", up to " + formatSize(maxSize) : ", no limit but the VG";
    growth += flag(p, "AutoGrow") ? ", automatic" : ", by hand only (AutoGrow=no)";
    field("Growth", growth);
    field("State", text(p, "State"));
    if (flag(p, "Exhausted"))
    {
        const std::string reason = text(p, "ExhaustedReason");
        field("Exhausted", reason.empty() ? "yes: no more space can be had" : reason);
    }

    if (mounted)
    {
        const double rate = property<double>(p, "FillRate").value_or(0);
        const std::int64_t toFull = property<std::int64_t>(p, "TimeToFull").value_or(-1);
        if (rate > 0)
        {
            std::string fill = formatSize(static_cast<std::uint64_t>(rate)) + "/s";
            if (toFull >= 0)
            {
                fill += ", full in " + formatTimespan(std::chrono::seconds(toFull)) + " at this rate";
            }
            field("Filling", fill);
        }
        else
        {
            field("Filling", "no");
        }
    }

    const std::uint64_t duration = bytes(p, "LastGrowDuration");
    const auto stamp = property<std::uint64_t>(p, "LastGrowTimestamp");
    if (stamp && *stamp > 0)
    {
        const auto now =
            std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        const auto ago = std::chrono::microseconds(std::max<std::int64_t>(now - static_cast<std::int64_t>(*stamp), 0));
        field("Last grow", formatTimestamp(*stamp) + ", " + formatTimespan(ago) + " ago, took " + seconds(duration));
    }
    else if (stamp || duration == 0)
    {
        field("Last grow", "none yet");
    }
    else
    {
        field("Last grow", "took " + seconds(duration));
    }
    if (const auto grows = property<std::uint64_t>(p, "GrowCount"))
    {
        field("Grows", std::to_string(*grows) + ", " +
                           std::to_string(property<std::uint64_t>(p, "GrowFailureCount").value_or(0)) + " failed");
    }
    if (const std::string error = text(p, "LastError"); !error.empty())
    {
        field("Last error", error);
    }
}

std::string outcomeOf(const std::string& result)
{
    const auto colon = result.find(':');
    return colon == std::string::npos ? result : result.substr(0, colon);
}

/// Shows the Manager's CurrentJob and Progress on stderr while a call waits: redrawn on a terminal, a line per
/// whole percent elsewhere.
class ProgressLine
{
  public:
    ProgressLine() : terminal_(isTerminal(STDERR_FILENO)) {}
    ~ProgressLine()
    {
        clear();
    }
    ProgressLine(const ProgressLine&) = delete;
    ProgressLine& operator=(const ProgressLine&) = delete;

    void update(const Properties& changed)
    {
        if (auto job = property<std::string>(changed, "CurrentJob"))
        {
            job_ = *job;
        }
        if (auto progress = property<double>(changed, "Progress"))
        {
            progress_ = *progress;
        }
        if (job_.empty())
        {
            clear();
            return;
        }
        const std::string line = job_ + ": " + percentOfFraction(progress_);
        if (line == shown_)
        {
            return;
        }
        shown_ = line;
        if (terminal_)
        {
            std::fprintf(stderr, "\r\033[K%s", line.c_str());
        }
        else
        {
            std::fprintf(stderr, "%s\n", line.c_str());
        }
        std::fflush(stderr);
    }

  private:
    void clear()
    {
        if (terminal_ && !shown_.empty())
        {
            std::fprintf(stderr, "\r\033[K");
            std::fflush(stderr);
        }
        shown_.clear();
    }

    bool terminal_;
    std::string job_;
    double progress_ = 0;
    std::string shown_;
};

} // namespace

std::string describeProperty(const std::string& name, const sdbus::Variant& value)
{
    static const std::set<std::string> sizes = {"Size",     "LogicalVolumeSize", "Used",           "Available",
                                                "GrowStep", "MaxSize",           "VolumeGroupFree"};
    static const std::set<std::string> percents = {"UsedPercent", "InodesUsedPercent", "GrowAt"};
    if (sizes.count(name) && value.containsValueOfType<std::uint64_t>())
    {
        return formatSize(value.get<std::uint64_t>());
    }
    if (percents.count(name) && value.containsValueOfType<double>())
    {
        return formatPercent(value.get<double>());
    }
    if (name == "Progress" && value.containsValueOfType<double>())
    {
        return percentOfFraction(value.get<double>());
    }
    if (name == "FillRate" && value.containsValueOfType<double>())
    {
        return formatSize(static_cast<std::uint64_t>(std::max(value.get<double>(), 0.0))) + "/s";
    }
    if (name == "TimeToFull" && value.containsValueOfType<std::int64_t>())
    {
        const auto s = value.get<std::int64_t>();
        return s < 0 ? "never" : formatTimespan(std::chrono::seconds(s));
    }
    if (name == "LastGrowDuration" && value.containsValueOfType<std::uint64_t>())
    {
        return seconds(value.get<std::uint64_t>());
    }
    if (name == "LastGrowTimestamp" && value.containsValueOfType<std::uint64_t>())
    {
        const auto usec = value.get<std::uint64_t>();
        return usec == 0 ? "never" : formatTimestamp(usec);
    }
    if (value.containsValueOfType<bool>())
    {
        return value.get<bool>() ? "yes" : "no";
    }
    if (value.containsValueOfType<std::string>())
    {
        const auto s = value.get<std::string>();
        return s.empty() || s.find(' ') != std::string::npos ? "\"" + s + "\"" : s;
    }
    return ctl::toJson(value).dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string volumeName(const std::string& path, const Properties& properties)
{
    const std::string mountPoint = text(properties, "MountPoint");
    return mountPoint.empty() ? path : mountPoint;
}

int status(Client& client, const Options& options)
{
    std::vector<Volume> shown = volumes(client);
    const Properties manager = client.managerProperties();
    if (!options.args.empty())
    {
        const std::string wanted = withoutTrailingSlash(options.args[0]);
        std::string watched;
        for (const auto& v : shown)
        {
            watched += (watched.empty() ? "" : ", ") + v.mountPoint();
        }
        shown.erase(std::remove_if(shown.begin(), shown.end(),
                                   [&](const Volume& v)
                                   {
                                       return v.mountPoint() != wanted && v.lv() != wanted;
                                   }),
                    shown.end());
        if (shown.empty())
        {
            throw Failure(exitFailure, options.args[0] + " is not a watched volume (watched: " +
                                           (watched.empty() ? "none" : watched) + ")");
        }
    }
    bool attention = false;
    for (const auto& v : shown)
    {
        attention = attention || !v.problems().empty();
    }

    if (options.json != JsonMode::Off)
    {
        Json out = {{"Manager", toJson(manager)}, {"Volumes", Json::array()}};
        for (const auto& v : shown)
        {
            Json volume = toJson(v.properties);
            volume["ObjectPath"] = v.path;
            volume["Problems"] = v.problems();
            out["Volumes"].push_back(volume);
        }
        printJson(std::cout, out, options.json);
        return attention ? exitAttention : exitOk;
    }

    std::string daemon = "version " + text(manager, "Version");
    if (const auto disks = property<std::uint64_t>(manager, "DisksAdded"))
    {
        daemon += ", " + std::to_string(*disks) + (*disks == 1 ? " disk" : " disks") + " added";
    }
    field("lvkeeperd", daemon);
    if (const std::string job = text(manager, "CurrentJob"); !job.empty())
    {
        field("Job", job + " (" + percentOfFraction(property<double>(manager, "Progress").value_or(0)) + " done)");
    }
    if (shown.empty())
    {
        std::printf("\nNo watched volumes: add a [Volume] section to lvkeeper.conf(5) and run "
                    "systemctl reload lvkeeperd.\n");
    }
    for (const auto& v : shown)
    {
        std::printf("\n");
        printVolume(v);
    }
    std::fflush(stdout);
    return attention ? exitAttention : exitOk;
}

int grow(Client& client, const Options& options)
{
    const std::string& volume = options.args[0];
    const std::string size = options.args.size() > 1 ? options.args[1] : "";
    auto call = client.managerCall("Grow");
    call << volume << size;
    auto reply = client.call(call, "grow " + volume);
    std::uint64_t newSize = 0;
    reply >> newSize;
    if (options.json != JsonMode::Off)
    {
        printJson(std::cout, {{"volume", volume}, {"new_size", newSize}}, options.json);
    }
    else
    {
        std::cout << volume << ": the logical volume is now " << formatSize(newSize) << " (" << newSize
                  << " bytes) and its filesystem fills it.\n";
    }
    return exitOk;
}

int addDisk(Client& client, const Options& options)
{
    const std::string& vg = options.args[0];
    const std::string size = options.args.size() > 1 ? options.args[1] : "";
    auto call = client.managerCall("AddDisk");
    call << vg << size;
    auto reply = client.call(call, "add a disk to " + vg);
    std::string image;
    std::string device;
    reply >> image >> device;
    if (options.json != JsonMode::Off)
    {
        printJson(std::cout, {{"vg", vg}, {"image", image}, {"device", device}}, options.json);
    }
    else
    {
        std::cout << "Added " << image << " as " << device << " to " << vg << ".\n";
    }
    return exitOk;
}

int remount(Client& client, const Options& options)
{
    const std::string& volume = options.args[0];
    auto call = client.managerCall("Remount");
    call << volume;
    client.call(call, "remount " + volume);
    if (options.json != JsonMode::Off)
    {
        printJson(std::cout, {{"volume", volume}, {"read_only", false}}, options.json);
    }
    else
    {
        std::cout << volume << " is read-write.\n";
    }
    return exitOk;
}

int diagnose(Client& client, const Options& options)
{
    auto call = client.managerCall("Diagnose");
    auto reply = client.call(call, "diagnose");
    std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, std::string>> findings;
    reply >> findings;
    if (options.json != JsonMode::Off)
    {
        Json out = Json::array();
        for (const auto& f : findings)
        {
            out.push_back({{"id", std::get<0>(f)},
                           {"severity", std::get<1>(f)},
                           {"subject", std::get<2>(f)},
                           {"problem", std::get<3>(f)},
                           {"fix", std::get<4>(f)}});
        }
        printJson(std::cout, out, options.json);
        return exitOk;
    }
    Table table({"SEVERITY", "ID", "PROBLEM", "FIX"}, {false, false, true, true});
    std::map<std::string, int> counts;
    for (const auto& f : findings)
    {
        table.add({std::get<1>(f), std::get<0>(f), std::get<3>(f), std::get<4>(f)});
        ++counts[std::get<1>(f)];
    }
    if (!table.empty())
    {
        table.print(std::cout, options.legend);
    }
    if (options.legend)
    {
        if (findings.empty())
        {
            std::cout << "No problems found.\n";
        }
        else
        {
            std::cout << "\n"
                      << findings.size() << (findings.size() == 1 ? " finding: " : " findings: ") << counts["critical"]
                      << " critical, " << counts["warning"] << " warning, " << counts["info"]
                      << " info. Run lvkeeperctl repair for the fixes that are safe without a person.\n";
        }
    }
    return exitOk;
}

int repair(Client& client, const Options& options)
{
    auto call = client.managerCall("Repair");
    call << options.args;
    std::vector<sdbus::Struct<std::string, std::string>> results;
    {
        ProgressLine progress;
        auto reply = client.call(call, "repair",
                                 [&](const Properties& changed)
                                 {
                                     progress.update(changed);
                                 });
        reply >> results;
    }
    bool failed = false;
    std::map<std::string, int> counts;
    for (const auto& r : results)
    {
        const std::string outcome = outcomeOf(std::get<1>(r));
        failed = failed || outcome == "failed" || outcome == "refused";
        ++counts[outcome];
    }
    if (options.json != JsonMode::Off)
    {
        Json out = Json::array();
        for (const auto& r : results)
        {
            out.push_back({{"id", std::get<0>(r)}, {"result", std::get<1>(r)}, {"outcome", outcomeOf(std::get<1>(r))}});
        }
        printJson(std::cout, out, options.json);
        return failed ? exitFailure : exitOk;
    }
    Table table({"ID", "RESULT"}, {false, true});
    for (const auto& r : results)
    {
        table.add({std::get<0>(r), std::get<1>(r)});
    }
    if (!table.empty())
    {
        table.print(std::cout, options.legend);
    }
    if (options.legend)
    {
        if (results.empty())
        {
            std::cout << "Nothing to repair.\n";
        }
        else
        {
            std::cout << "\n"
                      << counts["fixed"] << " fixed, " << counts["ok"] << " already fine, " << counts["failed"]
                      << " failed, " << counts["refused"] << " refused.\n";
        }
    }
    return failed ? exitFailure : exitOk;
}

int version(const Options& options)
{
    using namespace std::chrono_literals;
    std::optional<std::string> daemon;
    try
    {
        // Asked of the bus first: --version never starts the daemon through bus activation.
        Client client(options.timeout.value_or(Timeout(std::chrono::microseconds(5s))));
        if (client.daemonRunning())
        {
            daemon = text(client.managerProperties(), "Version");
        }
    }
    catch (const Failure&)
    {
    }
    if (options.json != JsonMode::Off)
    {
        printJson(std::cout, {{"lvkeeperctl", LVKEEPER_VERSION}, {"lvkeeperd", daemon ? Json(*daemon) : Json(nullptr)}},
                  options.json);
    }
    else
    {
        std::cout << "lvkeeperctl " << LVKEEPER_VERSION << "\n"
                  << (daemon ? "lvkeeperd " + *daemon : std::string("lvkeeperd is not running")) << "\n";
    }
    return exitOk;
}

} // namespace lvkeeper::ctl

#pragma once

#include "lvkeeper/size.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace lvkeeper
{

/// One [Volume] section.
struct VolumeConfig
{
    std::string mountPoint;
    double growAt = 90.0; ///< percent of space (and of inodes) used
    std::uint64_t growStep = 500 * MiB;
    std::optional<std::uint64_t> maxSize;
    bool autoGrow = true;
    std::chrono::milliseconds cooldown{2000};
};

/// The [Disks] section.
struct DisksConfig
{
    std::string imageDirectory = "/media";
    std::uint64_t imageSize = 1800 * MiB;
    bool autoAddDisk = false;
    unsigned maxDisks = 8;
    std::uint64_t reserveHostSpace = 256 * MiB;
    bool adoptLoopDevices = false;
};

/// The [Daemon] section.
struct DaemonConfig
{
    std::chrono::seconds backstopInterval{60}; ///< 0 disables the backstop timer
    std::string metricsFile;                   ///< Prometheus textfile-collector file; empty: none
};

/// The whole configuration file.
struct Config
{
    std::vector<VolumeConfig> volumes;
    DisksConfig disks;
    DaemonConfig daemon;
};

/// A bad configuration: names the file, the line and the key.
class ConfigError : public std::runtime_error
{
  public:
    ConfigError(const std::string& file, int line, std::string key, const std::string& what);

    const std::string& file() const noexcept
    {
        return file_;
    }
    int line() const noexcept
    {
        return line_;
    }
    const std::string& key() const noexcept
    {
        return key_;
    }

  private:
    std::string file_;
    int line_;
    std::string key_;
};

/// Parses INI text; fileName is only used in errors. Throws ConfigError.
Config parseConfig(std::string_view text, const std::string& fileName);

/// Parses a drop-in over base: its [Disks] and [Daemon] keys replace base's, a [Volume] whose MountPoint= base
/// has changes only the keys it sets, another [Volume] adds a volume. Throws ConfigError.
Config parseDropIn(std::string_view text, const std::string& fileName, Config base);

/// The drop-ins of a config file: regular, not hidden PATH.d/*.conf files in byte order. Throws ConfigError.
std::vector<std::string> dropInFiles(const std::string& path);

/// Reads path, then each of its drop-ins over it. A missing path is an empty file (every default, as
/// systemd's daemons treat theirs). Throws ConfigError (also for an unreadable file).
Config loadConfig(const std::string& path);

} // namespace lvkeeper

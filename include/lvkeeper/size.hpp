#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lvkeeper
{

inline constexpr std::uint64_t KiB = 1024ULL;
inline constexpr std::uint64_t MiB = 1024ULL * KiB;
inline constexpr std::uint64_t GiB = 1024ULL * MiB;
inline constexpr std::uint64_t TiB = 1024ULL * GiB;

/// Parses "4G", "4096M", "1.5G", "500MiB", "123" (bytes), "123b"; binary units as LVM's -L. Throws
/// KeeperError(InvalidArgument).
std::uint64_t parseSize(std::string_view text);

/// What a Grow size argument asks for.
struct SizeRequest
{
    enum class Kind
    {
        Default,  ///< empty: the configured step
        Absolute, ///< "4G": a target size
        Relative, ///< "+500M": a step
    };
    Kind kind = Kind::Default;
    std::uint64_t bytes = 0;
};

/// Parses "", "4G" or "+500M". Throws KeeperError(InvalidArgument).
SizeRequest parseSizeRequest(std::string_view text);

/// Human size with binary units: "4.0G", "500M", "512K", "17B".
std::string formatSize(std::uint64_t bytes);

/// Rounds up to a multiple of unit (unit > 0).
std::uint64_t roundUp(std::uint64_t bytes, std::uint64_t unit);

} // namespace lvkeeper

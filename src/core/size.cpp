#include "lvkeeper/size.hpp"

#include "lvkeeper/errors.hpp"

#include <iterator>
#include <limits>

namespace lvkeeper
{

namespace
{

// 10^18 < 2^60 and the largest unit is 2^40, so numerator * unit stays below 2^100.
__extension__ using Uint128 = unsigned __int128;
constexpr std::size_t maxFractionDigits = 18;

constexpr std::string_view sizeHint = "expected a number with an optional unit B, K, M, G or T, like 4G or 500M";

[[noreturn]] void throwInvalid(std::string_view text, std::string_view why)
{
    throw KeeperError(ErrorKind::InvalidArgument, "invalid size \"" + std::string(text) + "\": " + std::string(why));
}

bool isDigit(char c)
{
    return c >= '0' && c <= '9';
}

// Returns 0 for an unknown unit; "" and "B" are bytes, the rest may carry "iB"/"ib"/"B" as in "500MiB".
std::uint64_t unitMultiplier(std::string_view unit)
{
    if (unit.empty() || unit == "b" || unit == "B")
    {
        return 1;
    }
    std::uint64_t multiplier = 0;
    switch (unit.front())
    {
    case 'k':
    case 'K':
        multiplier = KiB;
        break;
    case 'm':
    case 'M':
        multiplier = MiB;
        break;
    case 'g':
    case 'G':
        multiplier = GiB;
        break;
    case 't':
    case 'T':
        multiplier = TiB;
        break;
    default:
        return 0;
    }
    const std::string_view suffix = unit.substr(1);
    if (suffix.empty() || suffix == "iB" || suffix == "ib" || suffix == "B")
    {
        return multiplier;
    }
    return 0;
}

// text is the caller's whole argument, so that "+4X" is quoted as the user typed it.
std::uint64_t parseSizeIn(std::string_view number, std::string_view text)
{
    std::size_t pos = 0;
    std::uint64_t whole = 0;
    while (pos < number.size() && isDigit(number[pos]))
    {
        const auto digit = static_cast<std::uint64_t>(number[pos] - '0');
        if (whole > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
        {
            throwInvalid(text, "too large");
        }
        whole = whole * 10 + digit;
        ++pos;
    }
    if (pos == 0)
    {
        throwInvalid(text, sizeHint);
    }

    std::string_view fraction;
    if (pos < number.size() && number[pos] == '.')
    {
        const std::size_t start = ++pos;
        while (pos < number.size() && isDigit(number[pos]))
        {
            ++pos;
        }
        fraction = number.substr(start, pos - start);
        if (fraction.empty())
        {
            throwInvalid(text, sizeHint);
        }
    }

    const std::uint64_t multiplier = unitMultiplier(number.substr(pos));
    if (multiplier == 0)
    {
        throwInvalid(text, sizeHint);
    }
    if (!fraction.empty() && multiplier == 1)
    {
        throwInvalid(text, "a number of bytes must be whole; use a unit for fractions, like 1.5G");
    }

    if (whole > std::numeric_limits<std::uint64_t>::max() / multiplier)
    {
        throwInvalid(text, "too large");
    }
    std::uint64_t bytes = whole * multiplier;

    if (!fraction.empty())
    {
        // Digits past the 18th cannot move the result by a whole byte, short of an exact tie.
        if (fraction.size() > maxFractionDigits)
        {
            fraction = fraction.substr(0, maxFractionDigits);
        }
        Uint128 numerator = 0;
        Uint128 denominator = 1;
        for (const char c : fraction)
        {
            numerator = numerator * 10 + static_cast<unsigned>(c - '0');
            denominator *= 10;
        }
        const auto extra = static_cast<std::uint64_t>((numerator * multiplier + denominator / 2) / denominator);
        if (extra > std::numeric_limits<std::uint64_t>::max() - bytes)
        {
            throwInvalid(text, "too large");
        }
        bytes += extra;
    }
    return bytes;
}

} // namespace

std::uint64_t parseSize(std::string_view text)
{
    return parseSizeIn(text, text);
}

SizeRequest parseSizeRequest(std::string_view text)
{
    SizeRequest request;
    if (text.empty())
    {
        return request;
    }
    if (text.front() == '-')
    {
        throwInvalid(text, "shrinking is not supported; give a larger target size like 8G or a step like +500M");
    }
    if (text.front() == '+')
    {
        request.kind = SizeRequest::Kind::Relative;
        request.bytes = parseSizeIn(text.substr(1), text);
        if (request.bytes == 0)
        {
            throwInvalid(text, "a step must be larger than zero");
        }
        return request;
    }
    request.kind = SizeRequest::Kind::Absolute;
    request.bytes = parseSizeIn(text, text);
    if (request.bytes == 0)
    {
        throwInvalid(text, "a target size must be larger than zero");
    }
    return request;
}

std::string formatSize(std::uint64_t bytes)
{
    static constexpr struct
    {
        std::uint64_t size;
        char suffix;
        bool alwaysDecimal;
    } units[] = {{TiB, 'T', true}, {GiB, 'G', true}, {MiB, 'M', false}, {KiB, 'K', false}};

    for (std::size_t i = 0; i < std::size(units); ++i)
    {
        const auto& unit = units[i];
        if (bytes < unit.size)
        {
            continue;
        }
        std::uint64_t whole = bytes / unit.size;
        const std::uint64_t rest = bytes % unit.size;
        if (rest == 0 && !unit.alwaysDecimal)
        {
            return std::to_string(whole) + unit.suffix;
        }
        std::uint64_t tenths = (rest * 10 + unit.size / 2) / unit.size;
        if (tenths == 10)
        {
            ++whole;
            tenths = 0;
        }
        // 1023.96K rounds to 1024.0K: say 1.0M instead (T has no larger unit).
        if (whole == 1024 && i > 0)
        {
            return "1.0" + std::string(1, units[i - 1].suffix);
        }
        return std::to_string(whole) + "." + std::to_string(tenths) + unit.suffix;
    }
    return std::to_string(bytes) + "B";
}

std::uint64_t roundUp(std::uint64_t bytes, std::uint64_t unit)
{
    if (unit == 0)
    {
        throw KeeperError(ErrorKind::InvalidArgument, "cannot round to a unit of zero bytes");
    }
    const std::uint64_t rest = bytes % unit;
    if (rest == 0)
    {
        return bytes;
    }
    const std::uint64_t step = unit - rest;
    if (bytes > std::numeric_limits<std::uint64_t>::max() - step)
    {
        throw KeeperError(ErrorKind::InvalidArgument, "size " + std::to_string(bytes) + " is too large");
    }
    return bytes + step;
}

} // namespace lvkeeper

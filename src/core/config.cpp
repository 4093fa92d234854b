#include "lvkeeper/config.hpp"

#include "lvkeeper/errors.hpp"

#include <ini.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>

namespace lvkeeper
{

namespace
{

/// A value that does not parse; the reason completes "Key=value: <reason>".
class BadValue : public std::runtime_error
{
  public:
    using std::runtime_error::runtime_error;
};

constexpr std::uint64_t minImageSize = 16 * MiB;
constexpr unsigned maxMaxDisks = 256;

bool isDigit(char c)
{
    return c >= '0' && c <= '9';
}

bool isBlank(char c)
{
    return c == ' ' || c == '\t';
}

std::string lowerCase(std::string_view text)
{
    std::string lower(text);
    for (char& c : lower)
    {
        if (c >= 'A' && c <= 'Z')
        {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return lower;
}

std::string parseAbsolutePath(std::string_view value)
{
    if (value.empty() || value.front() != '/')
    {
        throw BadValue("must be an absolute path");
    }
    std::string normalized;
    std::size_t pos = 0;
    while (pos < value.size())
    {
        const std::size_t slash = value.find('/', pos);
        const std::size_t end = slash == std::string_view::npos ? value.size() : slash;
        const std::string_view component = value.substr(pos, end - pos);
        pos = end + 1;
        if (component.empty() || component == ".")
        {
            continue;
        }
        // Resolving ".." needs the filesystem (symlinks); a config file has no reason to use it.
        if (component == "..")
        {
            throw BadValue("must not contain \"..\"");
        }
        normalized += '/';
        normalized += component;
    }
    return normalized.empty() ? "/" : normalized;
}

bool parseBoolean(std::string_view value)
{
    const std::string lower = lowerCase(value);
    if (lower == "1" || lower == "yes" || lower == "true" || lower == "on")
    {
        return true;
    }
    if (lower == "0" || lower == "no" || lower == "false" || lower == "off")
    {
        return false;
    }
    throw BadValue("must be a boolean: yes, no, true, false, on, off, 1 or 0");
}

double parsePercent(std::string_view value)
{
    constexpr const char* reason = "must be a percentage between 1 and 99";
    if (!value.empty() && value.back() == '%')
    {
        value.remove_suffix(1);
    }
    // Parsed by hand rather than strtod, whose decimal point follows the locale.
    std::size_t pos = 0;
    double percent = 0;
    while (pos < value.size() && isDigit(value[pos]) && pos < 6)
    {
        percent = percent * 10 + (value[pos] - '0');
        ++pos;
    }
    if (pos == 0)
    {
        throw BadValue(reason);
    }
    if (pos < value.size() && value[pos] == '.')
    {
        ++pos;
        double scale = 0.1;
        const std::size_t start = pos;
        while (pos < value.size() && isDigit(value[pos]))
        {
            percent += (value[pos] - '0') * scale;
            scale /= 10;
            ++pos;
        }
        if (pos == start)
        {
            throw BadValue(reason);
        }
    }
    if (pos != value.size() || percent < 1.0 || percent > 99.0)
    {
        throw BadValue(reason);
    }
    return percent;
}

std::uint64_t parseSizeValue(std::string_view value)
{
    try
    {
        return parseSize(value);
    }
    catch (const KeeperError& e)
    {
        const std::string_view message = e.what();
        if (message.size() >= 9 && message.substr(message.size() - 9) == "too large")
        {
            throw BadValue("too large");
        }
        throw BadValue("must be a size: a number with an optional unit B, K, M, G or T, like 500M or 4G");
    }
}

unsigned parseUnsigned(std::string_view value, unsigned max)
{
    const std::string reason = "must be a whole number between 0 and " + std::to_string(max);
    if (value.empty() || value.size() > 9)
    {
        throw BadValue(reason);
    }
    unsigned number = 0;
    for (const char c : value)
    {
        if (!isDigit(c))
        {
            throw BadValue(reason);
        }
        number = number * 10 + static_cast<unsigned>(c - '0');
    }
    if (number > max)
    {
        throw BadValue(reason);
    }
    return number;
}

// Milliseconds per unit, spelled as systemd.time(7) does.
std::uint64_t durationUnit(std::string_view unit)
{
    static constexpr struct
    {
        std::string_view name;
        std::uint64_t milliseconds;
    } units[] = {
        {"ms", 1},         {"msec", 1},        {"s", 1000},       {"sec", 1000},      {"second", 1000},
        {"seconds", 1000}, {"m", 60000},       {"min", 60000},    {"minute", 60000},  {"minutes", 60000},
        {"h", 3600000},    {"hr", 3600000},    {"hour", 3600000}, {"hours", 3600000}, {"d", 86400000},
        {"day", 86400000}, {"days", 86400000},
    };
    for (const auto& entry : units)
    {
        if (entry.name == unit)
        {
            return entry.milliseconds;
        }
    }
    return 0;
}

// "2s", "500ms", "1min 30s", "1.5h" or plain seconds ("10"), as in systemd.time(7).
std::chrono::milliseconds parseDuration(std::string_view value)
{
    constexpr const char* reason = "must be a duration like 2s, 500ms or 1min, or a number of seconds";
    constexpr auto limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    std::uint64_t total = 0;
    std::size_t pos = 0;
    bool any = false;
    while (true)
    {
        while (pos < value.size() && isBlank(value[pos]))
        {
            ++pos;
        }
        if (pos == value.size())
        {
            break;
        }
        std::uint64_t whole = 0;
        const std::size_t start = pos;
        while (pos < value.size() && isDigit(value[pos]))
        {
            if (whole > limit / 10)
            {
                throw BadValue("too large");
            }
            whole = whole * 10 + static_cast<std::uint64_t>(value[pos] - '0');
            ++pos;
        }
        if (pos == start)
        {
            throw BadValue(reason);
        }
        // Nine digits are finer than a millisecond for every unit; ignoring the rest keeps the maths in 64 bits.
        std::uint64_t fraction = 0;
        std::uint64_t denominator = 1;
        if (pos < value.size() && value[pos] == '.')
        {
            const std::size_t fractionStart = ++pos;
            while (pos < value.size() && isDigit(value[pos]))
            {
                if (pos - fractionStart < 9)
                {
                    fraction = fraction * 10 + static_cast<std::uint64_t>(value[pos] - '0');
                    denominator *= 10;
                }
                ++pos;
            }
            if (pos == fractionStart)
            {
                throw BadValue(reason);
            }
        }
        const std::size_t unitStart = pos;
        while (pos < value.size() && !isDigit(value[pos]) && !isBlank(value[pos]))
        {
            ++pos;
        }
        const std::string_view unitName = value.substr(unitStart, pos - unitStart);
        const std::uint64_t unit = unitName.empty() ? 1000 : durationUnit(unitName);
        if (unit == 0)
        {
            throw BadValue(reason);
        }
        if (whole > limit / unit)
        {
            throw BadValue("too large");
        }
        const std::uint64_t part = whole * unit + (fraction * unit + denominator / 2) / denominator;
        if (part > limit - total)
        {
            throw BadValue("too large");
        }
        total += part;
        any = true;
    }
    if (!any)
    {
        throw BadValue(reason);
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(total));
}

void applyVolumeKey(VolumeConfig& volume, std::string_view key, std::string_view value)
{
    if (key == "MountPoint")
    {
        volume.mountPoint = parseAbsolutePath(value);
    }
    else if (key == "GrowAt")
    {
        volume.growAt = parsePercent(value);
    }
    else if (key == "GrowStep")
    {
        const std::uint64_t step = parseSizeValue(value);
        if (step == 0)
        {
            throw BadValue("must be larger than zero");
        }
        volume.growStep = step;
    }
    else if (key == "MaxSize")
    {
        if (value.empty() || value == "0" || value == "infinity")
        {
            volume.maxSize.reset();
        }
        else
        {
            volume.maxSize = parseSizeValue(value);
        }
    }
    else if (key == "AutoGrow")
    {
        volume.autoGrow = parseBoolean(value);
    }
    else if (key == "Cooldown")
    {
        volume.cooldown = parseDuration(value);
    }
    else
    {
        throw BadValue("unknown key in [Volume]; expected MountPoint, GrowAt, GrowStep, MaxSize, AutoGrow or Cooldown");
    }
}

void applyDisksKey(DisksConfig& disks, std::string_view key, std::string_view value)
{
    if (key == "ImageDirectory")
    {
        disks.imageDirectory = parseAbsolutePath(value);
    }
    else if (key == "ImageSize")
    {
        const std::uint64_t size = parseSizeValue(value);
        // Below this the PV metadata and first extent leave next to nothing for data.
        if (size < minImageSize)
        {
            throw BadValue("must be at least 16M");
        }
        disks.imageSize = size;
    }
    else if (key == "AutoAddDisk")
    {
        disks.autoAddDisk = parseBoolean(value);
    }
    else if (key == "MaxDisks")
    {
        disks.maxDisks = parseUnsigned(value, maxMaxDisks);
    }
    else if (key == "ReserveHostSpace")
    {
        disks.reserveHostSpace = parseSizeValue(value);
    }
    else if (key == "AdoptLoopDevices")
    {
        disks.adoptLoopDevices = parseBoolean(value);
    }
    else
    {
        throw BadValue("unknown key in [Disks]; expected ImageDirectory, ImageSize, AutoAddDisk, MaxDisks, "
                       "ReserveHostSpace or AdoptLoopDevices");
    }
}

void applyDaemonKey(DaemonConfig& daemon, std::string_view key, std::string_view value)
{
    if (key == "BackstopInterval")
    {
        const std::chrono::milliseconds interval = parseDuration(value);
        if (interval.count() % 1000 != 0)
        {
            throw BadValue("must be a whole number of seconds (0 disables the backstop)");
        }
        daemon.backstopInterval = std::chrono::duration_cast<std::chrono::seconds>(interval);
    }
    else if (key == "MetricsFile")
    {
        // node_exporter's textfile collector reads *.prom in its directory; empty turns it off.
        if (value.empty())
        {
            daemon.metricsFile.clear();
            return;
        }
        std::string path = parseAbsolutePath(value);
        if (path.size() < 6 || path.compare(path.size() - 5, 5, ".prom") != 0)
        {
            throw BadValue("must be an absolute path ending in .prom (node_exporter's textfile collector reads "
                           "only those), e.g. /var/lib/prometheus/node-exporter/lvkeeper.prom");
        }
        daemon.metricsFile = path;
    }
    else
    {
        throw BadValue("unknown key in [Daemon]; expected BackstopInterval or MetricsFile");
    }
}

/// What the inih callbacks share: the text being fed line by line and the config being built.
struct ParseState
{
    std::string_view text;
    std::size_t offset = 0;
    int line = 0;
    const std::string& fileName;
    Config config;
    std::vector<int> volumeLines;     ///< the [Volume] header line of each volume
    std::vector<int> mountPointLines; ///< the line that last set each volume's MountPoint, 0 if none
    /// The settings of each [Volume] in order, so a drop-in can apply them over a volume configured before.
    std::vector<std::vector<std::pair<std::string, std::string>>> volumeSettings;
    std::unique_ptr<ConfigError> error;

    void fail(int atLine, const std::string& key, const std::string& what)
    {
        if (!error)
        {
            error = std::make_unique<ConfigError>(fileName, atLine, key, what);
        }
    }
};

// Returns false (and records the error) for an unknown or malformed header; inih reports a missing ']'.
bool noteSectionHeader(ParseState& state, std::string_view line)
{
    const std::size_t close = line.find(']');
    if (close == std::string_view::npos)
    {
        return true;
    }
    const std::string_view name = line.substr(1, close - 1);
    std::string_view rest = line.substr(close + 1);
    while (!rest.empty() && (isBlank(rest.front()) || rest.front() == '\r' || rest.front() == '\n'))
    {
        rest.remove_prefix(1);
    }
    const std::string header = "[" + std::string(name) + "]";
    if (!rest.empty() && rest.front() != '#' && rest.front() != ';')
    {
        state.fail(state.line, "", header + ": unexpected text after the section header");
        return false;
    }
    if (name == "Volume")
    {
        state.config.volumes.emplace_back();
        state.volumeLines.push_back(state.line);
        state.mountPointLines.push_back(0);
        state.volumeSettings.emplace_back();
    }
    else if (name != "Disks" && name != "Daemon")
    {
        state.fail(state.line, "", header + ": unknown section; expected [Volume], [Disks] or [Daemon]");
        return false;
    }
    return true;
}

// inih's fgets-style reader. Feeding one line per call is what makes state.line the line inih is on,
// and lets us see every [Volume] header, even one with no keys under it.
char* readLine(char* buffer, int size, void* stream)
{
    auto& state = *static_cast<ParseState*>(stream);
    if (state.error || state.offset >= state.text.size())
    {
        return nullptr;
    }
    const std::size_t newline = state.text.find('\n', state.offset);
    const std::size_t end = newline == std::string_view::npos ? state.text.size() : newline;
    std::string_view line = state.text.substr(state.offset, end - state.offset);
    state.offset = end + 1;
    ++state.line;

    if (state.line == 1 && line.substr(0, 3) == "\xEF\xBB\xBF")
    {
        line.remove_prefix(3);
    }
    // Leading blanks would make inih read the line as a continuation of the previous value;
    // systemd-style files have no such continuations, and an indented key is still a key.
    while (!line.empty() && isBlank(line.front()))
    {
        line.remove_prefix(1);
    }
    if (line.find('\0') != std::string_view::npos)
    {
        state.fail(state.line, "", "the line contains a NUL byte");
        return nullptr;
    }
    // Room for the '\n' and the terminating NUL.
    if (size < 2 || line.size() > static_cast<std::size_t>(size) - 2)
    {
        state.fail(state.line, "", "the line is too long (at most " + std::to_string(size - 2) + " characters)");
        return nullptr;
    }
    if (!line.empty() && line.front() == '[' && !noteSectionHeader(state, line))
    {
        return nullptr;
    }
    std::memcpy(buffer, line.data(), line.size());
    buffer[line.size()] = '\n';
    buffer[line.size() + 1] = '\0';
    return buffer;
}

// Called from C: nothing may escape, so every failure becomes state.error and a 0 return.
int onKeyValue(void* user, const char* sectionName, const char* keyName, const char* valueText)
{
    auto& state = *static_cast<ParseState*>(user);
    const std::string_view section = sectionName;
    const std::string key = keyName;
    const std::string value = valueText ? valueText : "";
    try
    {
        if (section == "Volume")
        {
            if (state.config.volumes.empty())
            {
                throw BadValue("internal error: no [Volume] header was seen");
            }
            applyVolumeKey(state.config.volumes.back(), key, value);
            state.volumeSettings.back().emplace_back(key, value);
            if (key == "MountPoint")
            {
                state.mountPointLines.back() = state.line;
            }
        }
        else if (section == "Disks")
        {
            applyDisksKey(state.config.disks, key, value);
        }
        else if (section == "Daemon")
        {
            applyDaemonKey(state.config.daemon, key, value);
        }
        else if (section.empty())
        {
            throw BadValue("a setting outside of any section; put it under [Volume], [Disks] or [Daemon]");
        }
        else
        {
            throw BadValue("unknown section [" + std::string(section) + "]");
        }
        return 1;
    }
    catch (const std::exception& e)
    {
        state.fail(state.line, key, key + "=" + value + ": " + e.what());
    }
    catch (...)
    {
        state.fail(state.line, key, key + "=" + value + ": unexpected error");
    }
    return 0;
}

std::string_view lineAt(std::string_view text, int number)
{
    std::size_t offset = 0;
    for (int i = 1; i < number && offset < text.size(); ++i)
    {
        const std::size_t newline = text.find('\n', offset);
        offset = newline == std::string_view::npos ? text.size() : newline + 1;
    }
    std::string_view line = text.substr(std::min(offset, text.size()));
    line = line.substr(0, line.find('\n'));
    while (!line.empty() && (isBlank(line.front())))
    {
        line.remove_prefix(1);
    }
    while (!line.empty() && (isBlank(line.back()) || line.back() == '\r'))
    {
        line.remove_suffix(1);
    }
    return line;
}

std::string formatConfigError(const std::string& file, int line, const std::string& what)
{
    if (line > 0)
    {
        return file + ":" + std::to_string(line) + ": " + what;
    }
    return file + ": " + what;
}

} // namespace

ConfigError::ConfigError(const std::string& file, int line, std::string key, const std::string& what) :
    std::runtime_error(formatConfigError(file, line, what)), file_(file), line_(line), key_(std::move(key))
{
}

Config parseConfig(std::string_view text, const std::string& fileName)
{
    return parseDropIn(text, fileName, Config{});
}

Config parseDropIn(std::string_view text, const std::string& fileName, Config base)
{
    ParseState state{text, 0, 0, fileName, {}, {}, {}, {}, nullptr};
    // [Disks] and [Daemon] exist once: the file's keys replace what was there.
    state.config.disks = base.disks;
    state.config.daemon = base.daemon;
    const int result = ini_parse_stream(readLine, &state, onKeyValue, &state);

    // inih returns the first bad line, which may be a syntax error before the first error we recorded.
    if (result > 0 && (!state.error || result < state.error->line()))
    {
        throw ConfigError(fileName, result, "",
                          "\"" + std::string(lineAt(text, result)) +
                              "\": expected a [Section] header, a Key=value setting or a # comment");
    }
    if (state.error)
    {
        throw *state.error;
    }
    if (result < 0)
    {
        throw ConfigError(fileName, 0, "", "cannot parse: out of memory");
    }

    auto& volumes = state.config.volumes;
    for (std::size_t i = 0; i < volumes.size(); ++i)
    {
        if (volumes[i].mountPoint.empty())
        {
            throw ConfigError(fileName, state.volumeLines[i], "MountPoint",
                              "[Volume]: MountPoint= is missing; every [Volume] section needs one");
        }
        for (std::size_t j = 0; j < i; ++j)
        {
            if (volumes[j].mountPoint == volumes[i].mountPoint)
            {
                throw ConfigError(fileName, state.mountPointLines[i], "MountPoint",
                                  "MountPoint=" + volumes[i].mountPoint +
                                      ": already configured by the [Volume] at line " +
                                      std::to_string(state.volumeLines[j]));
            }
        }
    }
    // A [Volume] for a mount point configured before changes only the keys it sets; a new one is added.
    Config merged = std::move(base);
    merged.disks = state.config.disks;
    merged.daemon = state.config.daemon;
    for (std::size_t i = 0; i < volumes.size(); ++i)
    {
        auto earlier = std::find_if(merged.volumes.begin(), merged.volumes.end(),
                                    [&](const VolumeConfig& v)
                                    {
                                        return v.mountPoint == volumes[i].mountPoint;
                                    });
        if (earlier == merged.volumes.end())
        {
            merged.volumes.push_back(volumes[i]);
            continue;
        }
        for (const auto& [key, value] : state.volumeSettings[i])
        {
            applyVolumeKey(*earlier, key, value); // parsed once already: cannot fail
        }
    }
    return merged;
}

namespace
{

// The text of a file; nullopt when it does not exist.
std::optional<std::string> readConfigFile(const std::string& path)
{
    struct Closer
    {
        void operator()(std::FILE* file) const
        {
            std::fclose(file);
        }
    };
    const std::unique_ptr<std::FILE, Closer> file(std::fopen(path.c_str(), "re"));
    if (!file)
    {
        if (errno == ENOENT)
        {
            return std::nullopt;
        }
        throw ConfigError(path, 0, "", std::string("cannot read: ") + std::strerror(errno));
    }
    std::string text;
    char chunk[4096];
    std::size_t count = 0;
    while ((count = std::fread(chunk, 1, sizeof(chunk), file.get())) > 0)
    {
        text.append(chunk, count);
    }
    if (std::ferror(file.get()))
    {
        // A directory opens fine and fails here with EISDIR.
        throw ConfigError(path, 0, "", std::string("cannot read: ") + std::strerror(errno));
    }
    return text;
}

} // namespace

std::vector<std::string> dropInFiles(const std::string& path)
{
    const std::string directory = path + ".d";
    std::vector<std::string> files;
    std::error_code error;
    for (std::filesystem::directory_iterator it(directory, error), end; !error && it != end; it.increment(error))
    {
        const std::string name = it->path().filename().string();
        std::error_code typeError;
        // As systemd: regular *.conf files only (a link to /dev/null masks one), hidden ones (editor and
        // package manager leftovers) skipped.
        if (name.size() > 5 && name.front() != '.' && name.compare(name.size() - 5, 5, ".conf") == 0 &&
            it->is_regular_file(typeError))
        {
            files.push_back(directory + "/" + name);
        }
    }
    if (error && error != std::errc::no_such_file_or_directory && error != std::errc::not_a_directory)
    {
        throw ConfigError(directory, 0, "", "cannot read the directory: " + error.message());
    }
    std::sort(files.begin(), files.end()); // byte order, as systemd sorts drop-ins
    return files;
}

Config loadConfig(const std::string& path)
{
    // As systemd's daemons: no main file is an empty one (every default); drop-ins still apply.
    Config config;
    if (const auto text = readConfigFile(path))
    {
        config = parseConfig(*text, path);
    }
    for (const auto& file : dropInFiles(path))
    {
        // A drop-in that vanished between listing and reading is no longer there to apply.
        if (const auto text = readConfigFile(file))
        {
            config = parseDropIn(*text, file, std::move(config));
        }
    }
    return config;
}

} // namespace lvkeeper

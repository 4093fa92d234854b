#include "options.hpp"

#include "lvkeeper/errors.hpp"
#include "lvkeeper/size.hpp"

#include <getopt.h>

#include <cmath>
#include <cstdlib>
#include <limits>

namespace lvkeeper::ctl
{

namespace
{

constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

struct Verb
{
    const char* name;
    std::size_t minArgs;
    std::size_t maxArgs;
    const char* synopsis;
    const char* help;
};

// The help texts are the man page's, shortened; keep the two in step.
constexpr Verb verbs[] = {
    {"status", 0, 1, "status [VOLUME]",
     "Show the watched volumes (or one: a mount point or VG/LV): size, use, inodes, free space in the volume\n"
     "group, growth settings, fill rate and time to full, the last grow and the job running now.\n"
     "Exits 5 when a shown volume is read-only, has filesystem errors, is exhausted or is not mounted.\n"},
    {"grow", 1, 2, "grow VOLUME [SIZE]",
     "Grow VOLUME (a mount point like /data, or VG/LV) online: the logical volume, then its filesystem.\n"
     "SIZE is a target (4G, 4096M), a step (+500M), or nothing for the configured GrowStep=.\n"},
    {"add-disk", 1, 2, "add-disk VG [SIZE]",
     "Create a fully allocated disk image of SIZE (default: ImageSize=) in the image directory, attach it to\n"
     "a loop device and add it to volume group VG as a new physical volume.\n"},
    {"remount", 1, 1, "remount VOLUME",
     "Turn a read-only mount of VOLUME back to read-write in place. Refused when the filesystem recorded\n"
     "errors: then run fsck first.\n"},
    {"diagnose", 0, 0, "diagnose",
     "List everything wrong with the watched volumes, their volume groups, physical volumes, disk images and\n"
     "the image directory, most urgent first: severity, id, what is wrong and the fix.\n"},
    {"repair", 0, unlimited, "repair [ID...]",
     "Apply the fixes of the findings named by ID (from diagnose), or with no ID every fix that is safe without\n"
     "a person. Shows the running job and its progress while a long step (pvmove) runs. Exits 1 when a fix\n"
     "failed or was refused.\n"},
    {"monitor", 0, 0, "monitor",
     "Print lvkeeperd's signals and property changes as they happen, one line each, until interrupted.\n"},
    {"help", 0, 1, "help [COMMAND]", "Show the help of lvkeeperctl or of one COMMAND.\n"},
};

const Verb* findVerb(const std::string& name)
{
    for (const auto& verb : verbs)
    {
        if (name == verb.name)
        {
            return &verb;
        }
    }
    return nullptr;
}

constexpr const char* optionsHelp = "Options:\n"
                                    "  -h --help            Show this help (or a command's: COMMAND --help)\n"
                                    "     --version         Show the version of lvkeeperctl and of lvkeeperd\n"
                                    "     --json=MODE       Print JSON (pretty, short or off); sizes in bytes\n"
                                    "     --no-legend       Print no column headers, header or summary lines\n"
                                    "     --timeout=TIME    How long to wait for lvkeeperd (30s, 5min, infinity)\n"
                                    "     --no-ask-password Do not ask for a password when polkit wants one\n";

// One step of a duration: "500ms", "30s", "5min", "2h"; a bare number is seconds.
std::chrono::microseconds parseTimeout(const std::string& text)
{
    const std::string reason = "invalid --timeout=" + text + ": expected a time like 30s, 500ms, 5min or infinity";
    if (text.empty())
    {
        throw UsageError(reason);
    }
    std::size_t end = 0;
    while (end < text.size() && ((text[end] >= '0' && text[end] <= '9') || text[end] == '.'))
    {
        ++end;
    }
    const std::string number = text.substr(0, end);
    const std::string unit = text.substr(end);
    double scale = 0;
    if (unit.empty() || unit == "s" || unit == "sec")
    {
        scale = 1e6;
    }
    else if (unit == "ms" || unit == "msec")
    {
        scale = 1e3;
    }
    else if (unit == "min" || unit == "m")
    {
        scale = 60e6;
    }
    else if (unit == "h" || unit == "hr")
    {
        scale = 3600e6;
    }
    else if (unit == "d")
    {
        scale = 86400e6;
    }
    char* rest = nullptr;
    const double value = number.empty() ? 0 : std::strtod(number.c_str(), &rest);
    if (number.empty() || scale == 0 || *rest != '\0' || !std::isfinite(value))
    {
        throw UsageError(reason);
    }
    const double usec = value * scale;
    if (usec < 1000)
    {
        throw UsageError("invalid --timeout=" + text + ": must be 1ms or more, or infinity");
    }
    if (usec > 1e15)
    {
        return std::chrono::microseconds::max();
    }
    return std::chrono::microseconds(static_cast<std::int64_t>(usec));
}

JsonMode parseJson(const std::string& text)
{
    if (text == "pretty")
    {
        return JsonMode::Pretty;
    }
    if (text == "short")
    {
        return JsonMode::Short;
    }
    if (text == "off")
    {
        return JsonMode::Off;
    }
    throw UsageError("invalid --json=" + text + ": expected pretty, short or off");
}

// Sizes are checked here, with the daemon's own parser, so a typo never reaches the bus.
void checkSize(const std::string& verb, const std::string& size)
{
    try
    {
        if (verb == "grow")
        {
            parseSizeRequest(size);
        }
        else if (!size.empty())
        {
            if (size.front() == '+' || size.front() == '-')
            {
                throw UsageError("invalid size \"" + size + "\": a disk size is absolute, like 1800M or 4G");
            }
            if (parseSize(size) == 0)
            {
                throw UsageError("invalid size \"" + size + "\": a disk must be larger than zero");
            }
        }
    }
    catch (const KeeperError& e)
    {
        throw UsageError(e.what());
    }
}

void checkArguments(const Options& options)
{
    const Verb* verb = findVerb(options.command);
    if (!verb)
    {
        throw UsageError("unknown command \"" + options.command + "\"");
    }
    const std::size_t count = options.args.size();
    if (count < verb->minArgs || count > verb->maxArgs)
    {
        throw UsageError(std::string(count < verb->minArgs ? "too few" : "too many") +
                         " arguments; usage: lvkeeperctl " + verb->synopsis);
    }
    for (const auto& arg : options.args)
    {
        if (arg.empty())
        {
            throw UsageError(std::string("an empty argument; usage: lvkeeperctl ") + verb->synopsis);
        }
    }
    if (options.command == "help" && count == 1 && !findVerb(options.args[0]))
    {
        throw UsageError("unknown command \"" + options.args[0] + "\"");
    }
    if ((options.command == "grow" || options.command == "add-disk") && count == 2)
    {
        checkSize(options.command, options.args[1]);
    }
}

} // namespace

Options parseCommandLine(int argc, char** argv)
{
    enum
    {
        optVersion = 0x100,
        optJson,
        optNoLegend,
        optTimeout,
        optNoAskPassword,
    };
    static const struct option longOptions[] = {
        {"help", no_argument, nullptr, 'h'},
        {"version", no_argument, nullptr, optVersion},
        {"json", required_argument, nullptr, optJson},
        {"no-legend", no_argument, nullptr, optNoLegend},
        {"timeout", required_argument, nullptr, optTimeout},
        {"no-ask-password", no_argument, nullptr, optNoAskPassword},
        {nullptr, 0, nullptr, 0},
    };
    Options options;
    optind = 0; // 0, not 1: resets getopt completely
    opterr = 0; // our own messages
    int c = 0;
    while ((c = getopt_long(argc, argv, ":h", longOptions, nullptr)) != -1)
    {
        switch (c)
        {
        case 'h':
            options.help = true;
            break;
        case optVersion:
            options.version = true;
            break;
        case optJson:
            options.json = parseJson(optarg);
            break;
        case optNoLegend:
            options.legend = false;
            break;
        case optNoAskPassword:
            options.askPassword = false;
            break;
        case optTimeout:
            options.timeout = std::string(optarg) == "infinity" ? Timeout() : Timeout(parseTimeout(optarg));
            break;
        case ':':
            throw UsageError(std::string("option ") + argv[optind - 1] + " needs a value");
        default:
            if (optopt != 0 && optopt < 0x100)
            {
                throw UsageError(std::string("unknown option -") + static_cast<char>(optopt));
            }
            throw UsageError(std::string("unknown option ") + argv[optind - 1]);
        }
    }
    if (optind < argc)
    {
        options.command = argv[optind++];
        options.args.assign(argv + optind, argv + argc);
    }
    if (options.command == "help")
    {
        checkArguments(options);
        options.help = true;
        options.command = options.args.empty() ? "" : options.args[0];
        options.args.clear();
        return options;
    }
    if (options.help || options.version)
    {
        if (!options.command.empty() && !findVerb(options.command))
        {
            throw UsageError("unknown command \"" + options.command + "\"");
        }
        return options;
    }
    if (options.command.empty())
    {
        throw UsageError("no command given");
    }
    checkArguments(options);
    return options;
}

void printHelp(std::ostream& out, const std::string& command)
{
    if (const Verb* verb = findVerb(command))
    {
        out << "lvkeeperctl [OPTIONS...] " << verb->synopsis << "\n\n" << verb->help << "\n" << optionsHelp;
        return;
    }
    out << "lvkeeperctl [OPTIONS...] COMMAND [ARGS...]\n\n"
           "Drive lvkeeperd, which keeps LVM-backed volumes from running out of space.\n\n"
           "Commands:\n";
    for (const auto& verb : verbs)
    {
        out << "  " << verb.synopsis << "\n";
    }
    out << "\n" << optionsHelp << "\nSee lvkeeperctl(1) for the output, the exit statuses and examples.\n";
}

Timeout defaultTimeout(const std::string& command)
{
    using namespace std::chrono_literals;
    if (command == "repair")
    {
        return std::nullopt; // a pvmove takes as long as the data it moves
    }
    if (command == "grow" || command == "add-disk" || command == "remount")
    {
        return std::chrono::microseconds(30min);
    }
    return std::chrono::microseconds(25s);
}

std::string describeTimeout(const Timeout& timeout)
{
    if (!timeout)
    {
        return "infinity";
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*timeout).count();
    if (ms % 60000 == 0)
    {
        return std::to_string(ms / 60000) + "min";
    }
    if (ms % 1000 == 0)
    {
        return std::to_string(ms / 1000) + "s";
    }
    return std::to_string(ms) + "ms";
}

} // namespace lvkeeper::ctl

// lvkeeperctl: the admin CLI of lvkeeperd, in the manner of systemd's *ctl tools. Everything it does goes
// through the D-Bus API (busctl can do the same); the command line is checked before the bus is touched.
#include "client.hpp"
#include "commands.hpp"
#include "options.hpp"
#include "polkit_agent.hpp"

#include <clocale>
#include <iostream>
#include <map>
#include <set>

namespace
{

using namespace lvkeeper::ctl;

int dispatch(const Options& options)
{
    using Command = int (*)(Client&, const Options&);
    static const std::map<std::string, Command> commands = {
        {"status", status},     {"grow", grow},     {"add-disk", addDisk}, {"remount", remount},
        {"diagnose", diagnose}, {"repair", repair}, {"monitor", monitor},
    };
    const auto it = commands.find(options.command);
    if (it == commands.end())
    {
        throw UsageError("unknown command \"" + options.command + "\"");
    }
    // The commands that change storage may need polkit's yes: an agent on this terminal can ask for it.
    static const std::set<std::string> changing = {"grow", "add-disk", "remount", "repair"};
    PolkitAgent agent;
    const bool changes = changing.count(options.command) > 0;
    if (changes && options.askPassword)
    {
        agent.startIfUseful();
    }
    Client client(options.timeout.value_or(defaultTimeout(options.command)));
    client.allowInteractiveAuthorization(changes && options.askPassword);
    return it->second(client, options);
}

} // namespace

int main(int argc, char** argv)
{
    // The charset decides the status bullet; numbers stay in the C locale.
    std::setlocale(LC_CTYPE, "");
    Options options;
    try
    {
        options = parseCommandLine(argc, argv);
    }
    catch (const UsageError& e)
    {
        std::cerr << "lvkeeperctl: " << e.what() << "\nSee 'lvkeeperctl --help' or 'lvkeeperctl COMMAND --help'.\n";
        return exitUsage;
    }
    if (options.help)
    {
        printHelp(std::cout, options.command);
        return exitOk;
    }
    if (options.version)
    {
        return version(options);
    }
    try
    {
        return dispatch(options);
    }
    catch (const Failure& f)
    {
        std::cout.flush();
        std::cerr << "lvkeeperctl: " << f.what() << "\n";
        return f.status();
    }
    catch (const sdbus::Error& e)
    {
        // A reply that does not have the type the XML promises, or the bus failing under us.
        std::cerr << "lvkeeperctl: " << e.getMessage() << " (" << e.getName() << ")\n";
        return exitFailure;
    }
    catch (const std::exception& e)
    {
        std::cerr << "lvkeeperctl: " << e.what() << "\n";
        return exitFailure;
    }
}

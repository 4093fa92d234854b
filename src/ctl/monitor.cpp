// lvkeeperctl monitor: every signal of lvkeeperd and every property that changed, one line each.
#include "commands.hpp"
#include "format.hpp"

#include "lvkeeper/bus_names.hpp"
#include "lvkeeper/size.hpp"

#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>

namespace lvkeeper::ctl
{

namespace
{

std::uint64_t nowUsec()
{
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
}

template <typename T>
void readInto(sdbus::Message& message, Json& out)
{
    T value{};
    message >> value;
    out.push_back(value);
}

// The basic-typed arguments of a signal, in order; a container ends the list with its type.
Json readArguments(sdbus::Message& message)
{
    Json out = Json::array();
    while (true)
    {
        std::string type;
        std::string contents;
        message.peekType(type, contents);
        if (type.empty() || type[0] == '\0')
        {
            return out;
        }
        switch (type[0])
        {
        case 's':
            readInto<std::string>(message, out);
            break;
        case 'o':
        {
            sdbus::ObjectPath path;
            message >> path;
            out.push_back(std::string(path));
            break;
        }
        case 't':
            readInto<std::uint64_t>(message, out);
            break;
        case 'x':
            readInto<std::int64_t>(message, out);
            break;
        case 'u':
            readInto<std::uint32_t>(message, out);
            break;
        case 'i':
            readInto<std::int32_t>(message, out);
            break;
        case 'd':
            readInto<double>(message, out);
            break;
        case 'b':
            readInto<bool>(message, out);
            break;
        default:
            out.push_back({{"type", type + contents}});
            return out;
        }
    }
}

std::string str(const Json& args, std::size_t i)
{
    return i < args.size() && args[i].is_string() ? args[i].get<std::string>() : "?";
}

std::string size(const Json& args, std::size_t i)
{
    return i < args.size() && args[i].is_number_unsigned() ? formatSize(args[i].get<std::uint64_t>()) : "?";
}

// The Manager's signals in words; the XML in dbus/ says what each argument is.
std::string describeSignal(const std::string& member, const Json& a)
{
    if (member == "ThresholdCrossed")
    {
        const double used = a.size() > 1 && a[1].is_number() ? a[1].get<double>() : 0;
        return str(a, 0) + " crossed its threshold: " + formatPercent(used) + " used, " + size(a, 2) + " available";
    }
    if (member == "Grown")
    {
        return str(a, 0) + " grew from " + size(a, 1) + " to " + size(a, 2) + " (" + str(a, 3) + ")";
    }
    if (member == "GrowFailed")
    {
        return str(a, 0) + ": a grow failed: " + str(a, 1);
    }
    if (member == "DiskAdded")
    {
        return str(a, 0) + ": added " + str(a, 1) + " (" + size(a, 3) + ") as " + str(a, 2);
    }
    if (member == "Remounted")
    {
        return str(a, 0) + " is read-write again";
    }
    if (member == "ReadOnly")
    {
        return str(a, 0) + " turned read-only: " + str(a, 1);
    }
    if (member == "SpaceExhausted")
    {
        return str(a, 0) + ": no more space can be had: " + str(a, 1);
    }
    return a.dump(-1, ' ', false, Json::error_handler_t::replace);
}

class Monitor
{
  public:
    Monitor(Client& client, const Options& options) : client_(client), options_(options) {}

    int run()
    {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, nullptr);
        const int signals = ::signalfd(-1, &mask, SFD_CLOEXEC);

        client_.addMatch("type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                         "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" +
                             std::string(dbus::busName) + "'",
                         [this](sdbus::Message& m)
                         {
                             ownerChanged(m);
                         });
        client_.addMatch("type='signal',path_namespace='" + std::string(dbus::managerPath) + "'",
                         [this](sdbus::Message& m)
                         {
                             daemonSignal(m);
                         });
        owner_ = client_.daemonOwner();
        if (owner_.empty())
        {
            line("", {{"member", "NotRunning"}}, "lvkeeperd is not running; waiting for it to start");
        }
        else
        {
            seed();
        }
        // Seeding calls the daemon, which must not happen inside a signal's callback: the loop does it.
        client_.run(
            [this]
            {
                if (reseed_)
                {
                    reseed_ = false;
                    seed();
                }
                return false;
            },
            signals);
        if (signals >= 0)
        {
            ::close(signals);
        }
        return exitOk;
    }

  private:
    // What the properties are now, so that a PropertiesChanged (which carries them all) shows only what changed.
    void seed()
    {
        try
        {
            cache_.clear();
            for (const auto& [path, interfaces] : client_.managedObjects())
            {
                for (const auto& [interface, properties] : interfaces)
                {
                    cache_[path + " " + interface] = properties;
                }
            }
            cache_[std::string(dbus::managerPath) + " " + dbus::managerInterface] = client_.managerProperties();
        }
        catch (const Failure&)
        {
            // It went away again; its NameOwnerChanged says so.
        }
    }

    // One event: "TIME EVENT TEXT" for people, one JSON object per line for programs.
    void line(const std::string& path, Json json, const std::string& human)
    {
        const std::uint64_t now = nowUsec();
        if (options_.json != JsonMode::Off)
        {
            json["time"] = now;
            if (!path.empty())
            {
                json["path"] = path;
            }
            printJson(std::cout, json, options_.json);
        }
        else
        {
            char millis[8];
            std::snprintf(millis, sizeof(millis), ".%03u", static_cast<unsigned>(now / 1000 % 1000));
            std::cout << formatTimestamp(now) << millis << " " << json["member"].get<std::string>() << " " << human
                      << "\n";
        }
        std::cout.flush();
    }

    void ownerChanged(sdbus::Message& message)
    {
        std::string name;
        std::string oldOwner;
        std::string newOwner;
        message >> name >> oldOwner >> newOwner;
        owner_ = newOwner;
        if (newOwner.empty())
        {
            line("", {{"member", "Stopped"}}, "lvkeeperd stopped");
            cache_.clear();
            return;
        }
        line("", {{"member", "Started"}}, "lvkeeperd started");
        reseed_ = true;
    }

    void daemonSignal(sdbus::Message& message)
    {
        if (owner_.empty() || message.getSender() != owner_)
        {
            return;
        }
        const std::string path = message.getPath();
        const std::string interface = message.getInterfaceName();
        const std::string member = message.getMemberName();
        try
        {
            if (interface == "org.freedesktop.DBus.Properties" && member == "PropertiesChanged")
            {
                propertiesChanged(path, message);
            }
            else if (interface == "org.freedesktop.DBus.ObjectManager" && member == "InterfacesAdded")
            {
                sdbus::ObjectPath object;
                std::map<std::string, Properties> interfaces;
                message >> object >> interfaces;
                for (const auto& [name, properties] : interfaces)
                {
                    cache_[std::string(object) + " " + name] = properties;
                }
                const auto& volume = interfaces[dbus::volumeInterface];
                line(object, {{"member", member}}, volumeName(object, volume) + " is watched");
            }
            else if (interface == "org.freedesktop.DBus.ObjectManager" && member == "InterfacesRemoved")
            {
                sdbus::ObjectPath object;
                std::vector<std::string> names;
                message >> object >> names;
                const std::string name = volumeName(object, cache_[std::string(object) + " " + dbus::volumeInterface]);
                for (const auto& n : names)
                {
                    cache_.erase(std::string(object) + " " + n);
                }
                line(object, {{"member", member}}, name + " is no longer watched");
            }
            else
            {
                const Json args = readArguments(message);
                line(path, {{"member", member}, {"interface", interface}, {"args", args}},
                     describeSignal(member, args));
            }
        }
        catch (const sdbus::Error& e)
        {
            line(path, {{"member", member}, {"error", e.getMessage()}}, "(unreadable: " + e.getMessage() + ")");
        }
    }

    void propertiesChanged(const std::string& path, sdbus::Message& message)
    {
        std::string interface;
        Properties changed;
        message >> interface >> changed;
        Properties& known = cache_[path + " " + interface];
        Json values = Json::object();
        std::string human;
        for (const auto& [name, value] : changed)
        {
            const auto it = known.find(name);
            const Json now = toJson(value);
            if (it != known.end() && toJson(it->second) == now)
            {
                continue;
            }
            values[name] = now;
            human += (human.empty() ? "" : " ") + name + "=" + describeProperty(name, value);
            known[name] = value;
        }
        if (values.empty())
        {
            return;
        }
        const std::string subject = interface == dbus::managerInterface
                                        ? std::string("lvkeeperd")
                                        : volumeName(path, cache_[path + " " + dbus::volumeInterface]);
        line(path, {{"member", "PropertiesChanged"}, {"interface", interface}, {"changed", values}},
             subject + ": " + human);
    }

    Client& client_;
    const Options& options_;
    std::string owner_;
    bool reseed_ = false;
    std::map<std::string, Properties> cache_; ///< "path interface" -> properties
};

} // namespace

int monitor(Client& client, const Options& options)
{
    Monitor m(client, options);
    return m.run();
}

} // namespace lvkeeper::ctl

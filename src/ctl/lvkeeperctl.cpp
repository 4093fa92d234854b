// lvkeeperctl: a thin admin CLI over the D-Bus API (everything it does, busctl can do too).
#include "lvkeeper/dbus.hpp"
#include "lvkeeper/size.hpp"

#include <cstdint>
#include <sdbus-c++/sdbus-c++.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace
{

constexpr const char* managerInterface = "org.lvkeeper.Keeper1.Manager";
constexpr const char* volumeInterface = "org.lvkeeper.Keeper1.Volume";
constexpr auto callTimeout = std::chrono::minutes(30); // a pvmove or a big grow takes a while

void usage(std::ostream& out)
{
    out << "usage: lvkeeperctl status\n"
           "       lvkeeperctl grow VOLUME [SIZE]     VOLUME: /data or vg0/data0; SIZE: 4G, +500M, or none\n"
           "       lvkeeperctl add-disk VG [SIZE]\n"
           "       lvkeeperctl remount VOLUME\n";
}

using Properties = std::map<std::string, sdbus::Variant>;

int status(sdbus::IProxy& proxy)
{
    std::map<sdbus::ObjectPath, std::map<std::string, Properties>> objects;
    proxy.callMethod("GetManagedObjects").onInterface("org.freedesktop.DBus.ObjectManager").storeResultsTo(objects);
    if (objects.empty())
    {
        std::cout << "no watched volumes\n";
    }
    for (auto& [path, interfaces] : objects)
    {
        auto it = interfaces.find(volumeInterface);
        if (it == interfaces.end())
        {
            continue;
        }
        auto& p = it->second;
        auto size = [&](const char* name)
        {
            return lvkeeper::formatSize(p[name].get<uint64_t>());
        };
        std::printf("%s  %s/%s  %s on %s\n", p["MountPoint"].get<std::string>().c_str(),
                    p["VolumeGroup"].get<std::string>().c_str(), p["LogicalVolume"].get<std::string>().c_str(),
                    p["Filesystem"].get<std::string>().c_str(), p["Device"].get<std::string>().c_str());
        std::printf("  size %s (LV %s), used %s (%.1f%%), available %s, VG free %s\n", size("Size").c_str(),
                    size("LogicalVolumeSize").c_str(), size("Used").c_str(), p["UsedPercent"].get<double>(),
                    size("Available").c_str(), size("VolumeGroupFree").c_str());
        std::printf("  grows at %.0f%% by %s, max %s, auto-grow %s, %s%s, state %s\n", p["GrowAt"].get<double>(),
                    size("GrowStep").c_str(), p["MaxSize"].get<uint64_t>() ? size("MaxSize").c_str() : "none",
                    p["AutoGrow"].get<bool>() ? "on" : "off", p["ReadOnly"].get<bool>() ? "READ-ONLY" : "read-write",
                    p["FilesystemErrors"].get<bool>() ? ", FILESYSTEM ERRORS" : "",
                    p["State"].get<std::string>().c_str());
        if (double rate = p["FillRate"].get<double>(); rate > 0)
        {
            std::printf("  filling at %s/s, full in %llds at that rate\n",
                        lvkeeper::formatSize(static_cast<std::uint64_t>(rate)).c_str(),
                        static_cast<long long>(p["TimeToFull"].get<int64_t>()));
        }
        if (auto ms = p["LastGrowDuration"].get<uint64_t>(); ms > 0)
        {
            std::printf("  last grow took %.1fs\n", static_cast<double>(ms) / 1000.0);
        }
        if (!p["LastError"].get<std::string>().empty())
        {
            std::printf("  last error: %s\n", p["LastError"].get<std::string>().c_str());
        }
    }
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "-h" || args[0] == "--help")
    {
        usage(args.empty() ? std::cerr : std::cout);
        return args.empty() ? 2 : 0;
    }
    try
    {
        auto proxy = sdbus::createProxy(sdbus::createSystemBusConnection(), lvkeeper::dbus::busName,
                                        lvkeeper::dbus::managerPath);
        const auto& cmd = args[0];
        auto arg = [&](std::size_t i)
        {
            return i < args.size() ? args[i] : std::string();
        };
        if (cmd == "status" && args.size() == 1)
        {
            return status(*proxy);
        }
        if (cmd == "grow" && (args.size() == 2 || args.size() == 3))
        {
            uint64_t newSize = 0;
            proxy->callMethod("Grow")
                .onInterface(managerInterface)
                .withTimeout(callTimeout)
                .withArguments(arg(1), arg(2))
                .storeResultsTo(newSize);
            std::cout << arg(1) << ": logical volume is now " << lvkeeper::formatSize(newSize) << "\n";
            return 0;
        }
        if (cmd == "add-disk" && (args.size() == 2 || args.size() == 3))
        {
            std::string image;
            std::string device;
            proxy->callMethod("AddDisk")
                .onInterface(managerInterface)
                .withTimeout(callTimeout)
                .withArguments(arg(1), arg(2))
                .storeResultsTo(image, device);
            std::cout << "added " << image << " as " << device << " to " << arg(1) << "\n";
            return 0;
        }
        if (cmd == "remount" && args.size() == 2)
        {
            proxy->callMethod("Remount").onInterface(managerInterface).withTimeout(callTimeout).withArguments(arg(1));
            std::cout << arg(1) << " is read-write\n";
            return 0;
        }
        usage(std::cerr);
        return 2;
    }
    catch (const sdbus::Error& e)
    {
        std::cerr << "lvkeeperctl: " << e.getMessage() << " (" << e.getName() << ")\n";
        return 1;
    }
}

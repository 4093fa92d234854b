#include "lvkeeper/dbus.hpp"
#include "lvkeeper/errors.hpp"

#include <systemd/sd-bus.h>

#include <cstdlib>
#include <memory>
#include <system_error>

namespace lvkeeper::dbus
{

sdbus::Error toDbusError(const std::exception_ptr& error)
{
    try
    {
        std::rethrow_exception(error);
    }
    catch (const KeeperError& e)
    {
        return sdbus::Error(std::string(errorPrefix) + std::string(errorKindName(e.kind())), e.what());
    }
    catch (const sdbus::Error& e)
    {
        return e;
    }
    catch (const std::exception& e)
    {
        return sdbus::Error(std::string(errorPrefix) + "Failed", e.what());
    }
    catch (...)
    {
        return sdbus::Error(std::string(errorPrefix) + "Failed", "unknown internal error");
    }
}

std::string volumeObjectPath(const std::string& mountPoint)
{
    // Mount points are absolute: dropping the one leading slash keeps them apart and "/data" reads
    // ".../volumes/data". sd_bus_path_encode escapes the rest ("/" -> "_", "/a-b" -> "a_2db", a leading
    // digit too), so every mount point gets a path of its own.
    std::string label = !mountPoint.empty() && mountPoint.front() == '/' ? mountPoint.substr(1) : mountPoint;
    char* path = nullptr;
    int r = sd_bus_path_encode(volumesPath, label.c_str(), &path);
    if (r < 0)
    {
        throw std::system_error(-r, std::generic_category(), "sd_bus_path_encode " + mountPoint);
    }
    // sd_bus_path_encode(3) mallocs its answer.
    const std::unique_ptr<char, decltype(&std::free)> owned(path, &std::free);
    return std::string(owned.get());
}

} // namespace lvkeeper::dbus

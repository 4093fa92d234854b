#include "lvkeeper/dbus.hpp"
#include "lvkeeper/errors.hpp"

#include <cctype>
#include <cstdio>

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
    // Like systemd's bus_path_escape: [A-Za-z0-9] stay, everything else becomes _xx.
    std::string name;
    std::string trimmed = mountPoint.size() > 1 && mountPoint[0] == '/' ? mountPoint.substr(1) : mountPoint;
    if (trimmed == "/")
    {
        return std::string(volumesPath) + "/root";
    }
    for (unsigned char c : trimmed)
    {
        if (std::isalnum(c))
        {
            name += static_cast<char>(c);
        }
        else
        {
            char hex[4];
            std::snprintf(hex, sizeof(hex), "_%02x", c);
            name += hex;
        }
    }
    return std::string(volumesPath) + "/" + name;
}

} // namespace lvkeeper::dbus

#pragma once

// The names of lvkeeperd's D-Bus API: all a client needs besides the interface XML.

namespace lvkeeper::dbus
{

inline constexpr const char* busName = "org.lvkeeper.Keeper1";
inline constexpr const char* managerPath = "/org/lvkeeper/Keeper1";
inline constexpr const char* volumesPath = "/org/lvkeeper/Keeper1/volumes";
inline constexpr const char* managerInterface = "org.lvkeeper.Keeper1.Manager";
inline constexpr const char* volumeInterface = "org.lvkeeper.Keeper1.Volume";
inline constexpr const char* errorPrefix = "org.lvkeeper.Keeper1.Error.";

} // namespace lvkeeper::dbus

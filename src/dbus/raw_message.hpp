#pragma once

// sdbus-c++ 1.2 keeps a message's sd_bus_message private and has no accessor for the
// ALLOW_INTERACTIVE_AUTHORIZATION header flag. A pointer to the protected member, formed through a
// derived class, reaches it without copying or casting the message. Used by the daemon (to read the
// flag a caller set) and by lvkeeperctl (to set it).

#include <sdbus-c++/Message.h>
#include <systemd/sd-bus.h>

namespace lvkeeper::dbus
{

struct RawMessage : sdbus::Message
{
    static sd_bus_message* of(const sdbus::Message& message)
    {
        return static_cast<sd_bus_message*>(message.*(&RawMessage::msg_));
    }
};

} // namespace lvkeeper::dbus

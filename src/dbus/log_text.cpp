#include "dbus/log_text.hpp"

#include <cstdio>

namespace lvkeeper::dbus
{

std::string logText(std::string_view text, std::size_t bound)
{
    std::size_t keep = text.size();
    if (keep > bound)
    {
        keep = bound;
        // Never split a UTF-8 sequence: back up over continuation bytes (10xxxxxx) to a lead byte.
        while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80)
        {
            --keep;
        }
    }
    std::string out = "\"";
    for (unsigned char c : text.substr(0, keep))
    {
        switch (c)
        {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\r':
            out += "\\r";
            break;
        default:
            if (c < 0x20 || c == 0x7F)
            {
                char hex[5];
                std::snprintf(hex, sizeof(hex), "\\x%02x", c);
                out += hex;
            }
            else
            {
                out += static_cast<char>(c);
            }
        }
    }
    if (keep < text.size())
    {
        out += "[... " + std::to_string(text.size()) + " bytes]";
    }
    out += '"';
    return out;
}

} // namespace lvkeeper::dbus

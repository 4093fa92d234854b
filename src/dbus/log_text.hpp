#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace lvkeeper::dbus
{

/// How many bytes of a caller's string a log line keeps.
inline constexpr std::size_t logTextBound = 200;

/// A caller's string as one log field value: in double quotes, `"` `\` and control bytes escaped (so it
/// cannot end the field or the line), cut at a UTF-8 boundary to `bound` bytes, ending "[... N bytes]" when cut.
std::string logText(std::string_view text, std::size_t bound = logTextBound);

} // namespace lvkeeper::dbus

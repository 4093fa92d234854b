#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lvkeeper::sys
{

/// Sets spdlog's default logger: the journal when started by systemd (JOURNAL_STREAM set), stderr otherwise.
void setupLogging(const std::string& level, bool forceStderr = false);

/// Changes the level at run time (org.freedesktop.LogControl1): syslog names (emerg ... debug) or spdlog's.
/// Throws std::invalid_argument for an unknown one.
void setLogLevel(const std::string& level);
/// The level now, as a syslog name ("info", "debug", ...).
std::string logLevel();
/// "journal" or "console".
std::string logTarget();

/// The journal fields of one log line "event=grown volume=/data from=2.8G from_bytes=3007315968 reason=\"a b\"":
/// LVKEEPER_EVENT=grown, VOLUME=/data, FROM=2.8G, FROM_BYTES=..., REASON=a b; quoted values unescaped; keys that
/// would shadow the journal's own fields get LVKEEPER_ in front.
std::vector<std::pair<std::string, std::string>> journalFields(std::string_view line);

/// The MESSAGE_ID of an event kind that has an entry in lvkeeper's journal catalog; empty when none.
std::string_view messageIdOf(std::string_view event);

} // namespace lvkeeper::sys

#pragma once

#include <string>

namespace lvkeeper::sys
{

/// Sets spdlog's default logger: the journal when started by systemd (JOURNAL_STREAM set), stderr otherwise.
void setupLogging(const std::string& level, bool forceStderr = false);

} // namespace lvkeeper::sys

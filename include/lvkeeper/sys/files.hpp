#pragma once

#include "lvkeeper/metrics.hpp"

#include <sys/types.h>

#include <string>

namespace lvkeeper::sys
{

/// Creates dir and its parents (0755) as needed. Throws std::system_error.
void makeDirectories(const std::string& dir);

/// Writes all of data to fd. Throws std::system_error naming path.
void writeAll(int fd, const std::string& data, const std::string& path);

/// Replaces dir/name with data so that a crash leaves either the old file or the new one, never a truncated one:
/// temp file (mode, whatever the umask), rename. durable: fsync the file before the rename and the directory after,
/// so the new one survives a power cut once this returns. Throws std::system_error.
void replaceFile(const std::string& dir, const std::string& name, const std::string& data, mode_t mode, bool durable);

/// TextFiles on the real filesystem: atomic, world-readable, not fsync'd (metrics are rewritten often).
class TextFileWriter : public TextFiles
{
  public:
    void replace(const std::string& path, const std::string& text) override;
};

} // namespace lvkeeper::sys

#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace lvkeeper::sys
{

/// The size an ext2/3/4 or XFS filesystem records in its superblock (blocks * block size), read
/// from the device without writing; nullopt for other types. Throws std::system_error on I/O errors.
std::optional<std::uint64_t> readFilesystemSize(const std::string& device, const std::string& fsType);

} // namespace lvkeeper::sys

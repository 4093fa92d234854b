#pragma once

#include "lvkeeper/system.hpp"

#include <string>
#include <vector>

namespace lvkeeper
{

/// The online grow of a mounted filesystem: resize2fs on the device (ext2/3/4), xfs_growfs on the mount point;
/// empty for a type lvkeeper cannot grow online. Both make the new size durable before they return (ext4's
/// resize ioctl flushes the journal; XFS commits its growfs transaction synchronously).
std::vector<std::string> growFilesystemArgv(const MountInfo& mount);

/// What an admin runs to check a filesystem after unmounting it: "fsck.ext4 -f /dev/mapper/vg0-data0",
/// "xfs_repair /dev/mapper/vg0-data0".
std::string fsckCommandLine(const MountInfo& mount);

/// The advice for a volume whose filesystem recorded errors: stop its users, unmount, check, mount.
std::string fsckAdvice(const std::string& mountPoint, const MountInfo& mount);

} // namespace lvkeeper

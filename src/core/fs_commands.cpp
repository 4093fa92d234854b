#include "lvkeeper/fs_commands.hpp"

namespace lvkeeper
{

std::vector<std::string> growFilesystemArgv(const MountInfo& mount)
{
    if (mount.fsType == "ext4" || mount.fsType == "ext3" || mount.fsType == "ext2")
    {
        return {"resize2fs", mount.source};
    }
    if (mount.fsType == "xfs")
    {
        return {"xfs_growfs", mount.mountPoint};
    }
    return {};
}

std::string fsckCommandLine(const MountInfo& mount)
{
    if (mount.fsType == "xfs")
    {
        return "xfs_repair " + mount.source;
    }
    return "fsck." + mount.fsType + " -f " + mount.source;
}

std::string fsckAdvice(const std::string& mountPoint, const MountInfo& mount)
{
    return "stop its users, then run: umount " + mountPoint + " && " + fsckCommandLine(mount) + " && mount " +
           mountPoint;
}

} // namespace lvkeeper

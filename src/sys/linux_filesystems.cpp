#include "lvkeeper/sys/linux.hpp"

#include <dirent.h>
#include <libmount/libmount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>

namespace lvkeeper::sys
{

namespace
{

std::system_error sysError(int error, const std::string& what)
{
    return std::system_error(error, std::generic_category(), what);
}

struct TableDeleter
{
    void operator()(libmnt_table* table) const
    {
        mnt_unref_table(table);
    }
};
using Table = std::unique_ptr<libmnt_table, TableDeleter>;

Table readMountTable(const std::string& procRoot)
{
    std::string path = procRoot + "/self/mountinfo";
    errno = 0;
    Table table(mnt_new_table_from_file(path.c_str()));
    if (!table)
    {
        throw sysError(errno != 0 ? errno : EIO, "read " + path);
    }
    return table;
}

bool hasOption(const char* optstr, const char* name)
{
    if (optstr == nullptr)
    {
        return false;
    }
    return mnt_optstr_get_option(optstr, name, nullptr, nullptr) == 0;
}

MountInfo toMountInfo(libmnt_fs* fs)
{
    MountInfo info;
    const char* target = mnt_fs_get_target(fs);
    const char* source = mnt_fs_get_source(fs);
    const char* fsType = mnt_fs_get_fstype(fs);
    const char* options = mnt_fs_get_options(fs);
    info.mountPoint = target != nullptr ? target : "";
    info.source = source != nullptr ? source : "";
    info.fsType = fsType != nullptr ? fsType : "";
    info.options = options != nullptr ? options : "";
    dev_t dev = mnt_fs_get_devno(fs);
    info.devMajor = major(dev);
    info.devMinor = minor(dev);
    // ext4 with errors=remount-ro flips the superblock, not the mount: check both.
    info.readOnly = hasOption(mnt_fs_get_vfs_options(fs), "ro") || hasOption(mnt_fs_get_fs_options(fs), "ro");
    return info;
}

std::string readFirstLine(const std::string& path)
{
    std::ifstream in(path);
    std::string line;
    if (in)
    {
        std::getline(in, line);
    }
    return line;
}

/// The real uid on the "Uid:" line of /proc/<pid>/status; nullopt when the process is gone.
std::optional<uid_t> processUid(const std::string& pidDir)
{
    std::ifstream in(pidDir + "/status");
    std::string line;
    while (std::getline(in, line))
    {
        if (line.compare(0, 4, "Uid:") == 0)
        {
            return static_cast<uid_t>(std::strtoul(line.c_str() + 4, nullptr, 10));
        }
    }
    return std::nullopt;
}

bool allDigits(const char* name)
{
    if (*name == '\0')
    {
        return false;
    }
    for (; *name != '\0'; ++name)
    {
        if (*name < '0' || *name > '9')
        {
            return false;
        }
    }
    return true;
}

struct DirCloser
{
    void operator()(DIR* dir) const
    {
        ::closedir(dir);
    }
};
using Dir = std::unique_ptr<DIR, DirCloser>;

// The per-mount flags a legacy MS_REMOUNT would otherwise reset to their defaults.
unsigned long preservedFlags(unsigned long stFlags)
{
    struct Pair
    {
        unsigned long st;
        unsigned long ms;
    };
    static constexpr Pair pairs[] = {
        {ST_NOSUID, MS_NOSUID},           {ST_NODEV, MS_NODEV},           {ST_NOEXEC, MS_NOEXEC},
        {ST_NOATIME, MS_NOATIME},         {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
        {ST_SYNCHRONOUS, MS_SYNCHRONOUS}, {ST_MANDLOCK, MS_MANDLOCK},
    };
    unsigned long flags = 0;
    for (const auto& pair : pairs)
    {
        if ((stFlags & pair.st) != 0)
        {
            flags |= pair.ms;
        }
    }
    return flags;
}

} // namespace

LinuxFilesystems::LinuxFilesystems(std::string procRoot, std::string sysRoot) :
    procRoot_(std::move(procRoot)), sysRoot_(std::move(sysRoot))
{
}

std::optional<MountInfo> LinuxFilesystems::findMount(const std::string& mountPoint)
{
    Table table = readMountTable(procRoot_);
    // Without a cache libmount compares targets as strings: exactly what "is this path a mount" means.
    libmnt_fs* fs = mnt_table_find_target(table.get(), mountPoint.c_str(), MNT_ITER_BACKWARD);
    if (fs == nullptr)
    {
        return std::nullopt;
    }
    return toMountInfo(fs);
}

std::optional<MountInfo> LinuxFilesystems::mountOf(const std::string& path)
{
    // Symlinks would otherwise lead the prefix walk onto the wrong mount.
    std::string resolved = path;
    // realpath(3) mallocs its answer.
    if (std::unique_ptr<char, decltype(&std::free)> real{::realpath(path.c_str(), nullptr), &std::free})
    {
        resolved = real.get();
    }
    Table table = readMountTable(procRoot_);
    libmnt_fs* fs = mnt_table_find_mountpoint(table.get(), resolved.c_str(), MNT_ITER_BACKWARD);
    if (fs == nullptr)
    {
        return std::nullopt;
    }
    return toMountInfo(fs);
}

FsUsage LinuxFilesystems::usage(const std::string& path)
{
    struct statvfs st
    {
    };
    if (::statvfs(path.c_str(), &st) < 0)
    {
        throw sysError(errno, "statvfs " + path);
    }
    FsUsage usage;
    const std::uint64_t frsize = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
    usage.size = static_cast<std::uint64_t>(st.f_blocks) * frsize;
    usage.used = static_cast<std::uint64_t>(st.f_blocks - st.f_bfree) * frsize;
    usage.available = static_cast<std::uint64_t>(st.f_bavail) * frsize;
    usage.inodes = st.f_files;
    usage.inodesUsed = st.f_files >= st.f_ffree ? st.f_files - st.f_ffree : 0;
    usage.readOnly = (st.f_flag & ST_RDONLY) != 0;
    return usage;
}

std::uint64_t LinuxFilesystems::errorCount(const MountInfo& mount)
{
    // The ext4 driver serves ext2 and ext3 too and registers them under the same sysfs directory.
    if (mount.fsType != "ext4" && mount.fsType != "ext3" && mount.fsType != "ext2")
    {
        return 0;
    }
    std::string link = sysRoot_ + "/dev/block/" + std::to_string(mount.devMajor) + ":" + std::to_string(mount.devMinor);
    std::array<char, PATH_MAX> target{};
    ssize_t n = ::readlink(link.c_str(), target.data(), target.size() - 1);
    if (n <= 0)
    {
        return 0;
    }
    std::string kernelName(target.data(), static_cast<std::size_t>(n));
    kernelName = kernelName.substr(kernelName.rfind('/') + 1);

    std::string text = readFirstLine(sysRoot_ + "/fs/ext4/" + kernelName + "/errors_count");
    if (text.empty())
    {
        return 0;
    }
    errno = 0;
    char* end = nullptr;
    unsigned long long count = std::strtoull(text.c_str(), &end, 10);
    if (errno != 0 || end == text.c_str())
    {
        return 0;
    }
    return count;
}

void LinuxFilesystems::remountReadWrite(const MountInfo& mount)
{
    const std::string& target = mount.mountPoint;
    struct statvfs st
    {
    };
    if (::statvfs(target.c_str(), &st) < 0)
    {
        throw sysError(errno, "remount read-write " + target + ": statvfs");
    }
    unsigned long flags = preservedFlags(st.f_flag);

    if (::mount(mount.source.c_str(), target.c_str(), mount.fsType.c_str(), MS_REMOUNT | flags, nullptr) < 0)
    {
        throw sysError(errno, "remount read-write " + target);
    }
    if (::statvfs(target.c_str(), &st) < 0)
    {
        throw sysError(errno, "remount read-write " + target + ": statvfs");
    }
    if ((st.f_flag & ST_RDONLY) != 0)
    {
        // The superblock is writable now but this mount itself is flagged read-only (a ro bind mount).
        if (::mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | flags, nullptr) < 0)
        {
            throw sysError(errno, "remount read-write " + target + " (mount flags)");
        }
        if (::statvfs(target.c_str(), &st) == 0 && (st.f_flag & ST_RDONLY) != 0)
        {
            throw sysError(EROFS, "remount read-write " + target + ": still read-only");
        }
    }
    spdlog::info("event=remounted-rw mount={} source={}", target, mount.source);
}

std::vector<HeldDeletedFile> LinuxFilesystems::heldDeletedFiles(unsigned devMajor, unsigned devMinor)
{
    static constexpr std::string_view deletedSuffix = " (deleted)";
    const dev_t wanted = makedev(devMajor, devMinor);
    std::vector<HeldDeletedFile> files;
    std::set<std::pair<pid_t, ino_t>> seen;

    Dir proc(::opendir(procRoot_.c_str()));
    if (!proc)
    {
        throw sysError(errno, "opendir " + procRoot_);
    }
    while (dirent* entry = ::readdir(proc.get()))
    {
        if (!allDigits(entry->d_name))
        {
            continue;
        }
        const std::string pidDir = procRoot_ + "/" + entry->d_name;
        const std::string fdDir = pidDir + "/fd";
        // Processes come and go while we walk; one that vanished (or that we may not look into) holds nothing.
        Dir fds(::opendir(fdDir.c_str()));
        if (!fds)
        {
            if (errno != ENOENT && errno != ESRCH)
            {
                spdlog::debug("event=fd-list-failed dir={} error=\"{}\"", fdDir, std::strerror(errno));
            }
            continue;
        }
        const auto pid = static_cast<pid_t>(std::strtol(entry->d_name, nullptr, 10));
        std::string command;
        std::optional<uid_t> uid;
        while (dirent* fdEntry = ::readdir(fds.get()))
        {
            if (!allDigits(fdEntry->d_name))
            {
                continue;
            }
            const std::string fdPath = fdDir + "/" + fdEntry->d_name;
            std::array<char, PATH_MAX + 16> target{};
            ssize_t n = ::readlink(fdPath.c_str(), target.data(), target.size() - 1);
            if (n <= 0)
            {
                continue;
            }
            std::string_view name(target.data(), static_cast<std::size_t>(n));
            if (name.size() <= deletedSuffix.size() || name.substr(name.size() - deletedSuffix.size()) != deletedSuffix)
            {
                continue;
            }
            // stat() follows the magic link to the open file itself, which no longer has a name.
            // nlink 0 also rules out a name merely ending in " (deleted)" and files with a second link.
            struct stat st
            {
            };
            if (::stat(fdPath.c_str(), &st) < 0 || !S_ISREG(st.st_mode) || st.st_dev != wanted || st.st_nlink != 0)
            {
                continue;
            }
            if (!seen.insert({pid, st.st_ino}).second)
            {
                continue;
            }
            if (command.empty())
            {
                command = readFirstLine(pidDir + "/comm");
                uid = processUid(pidDir);
            }
            HeldDeletedFile file;
            file.pid = pid;
            // Unknown (it just exited) counts as root's: nobody else is told about it.
            file.uid = uid.value_or(0);
            file.command = command;
            file.path = std::string(name.substr(0, name.size() - deletedSuffix.size()));
            // Blocks, not st_size: a sparse log holds only what it really allocated.
            file.bytes = static_cast<std::uint64_t>(st.st_blocks) * 512;
            files.push_back(std::move(file));
        }
    }
    return files;
}

} // namespace lvkeeper::sys

#include "lvkeeper/sys/superblock.hpp"

namespace lvkeeper::sys
{

std::optional<std::uint64_t> LinuxFilesystems::filesystemSize(const MountInfo& mount)
{
    return readFilesystemSize(mount.source, mount.fsType);
}

} // namespace lvkeeper::sys

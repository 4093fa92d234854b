#include "lvkeeper/sys/linux.hpp"

#include "lvkeeper/sys/unique_fd.hpp"

#include <blkid/blkid.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <system_error>

namespace lvkeeper::sys
{

namespace
{

// Another attacher (losetup, udisks, a second test) can take the device between GET_FREE and
// CONFIGURE; the kernel then says EBUSY and the next free one is asked for.
constexpr int attachAttempts = 8;

std::system_error sysError(int error, const std::string& what)
{
    return std::system_error(error, std::generic_category(), what);
}

struct DirCloser
{
    void operator()(DIR* dir) const
    {
        ::closedir(dir);
    }
};
using Dir = std::unique_ptr<DIR, DirCloser>;

struct ProbeDeleter
{
    void operator()(blkid_struct_probe* probe) const
    {
        blkid_free_probe(probe);
    }
};
using Probe = std::unique_ptr<blkid_struct_probe, ProbeDeleter>;

template <typename Info>
void setFileName(Info& info, const std::string& image)
{
    // Informational only (sysfs backing_file shows the real path); the kernel keeps 63 bytes.
    std::size_t n = std::min(image.size(), sizeof(info.lo_file_name) - 1);
    std::memcpy(info.lo_file_name, image.data(), n);
    info.lo_file_name[n] = 0;
}

std::string octalMode(mode_t mode)
{
    char text[8];
    std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

const char* fileKind(mode_t mode)
{
    switch (mode & S_IFMT)
    {
    case S_IFLNK:
        return "a symbolic link";
    case S_IFDIR:
        return "a directory";
    case S_IFIFO:
        return "a fifo";
    case S_IFSOCK:
        return "a socket";
    case S_IFBLK:
        return "a block device";
    case S_IFCHR:
        return "a character device";
    default:
        return "not a regular file";
    }
}

void syncDirectoryOf(const std::string& path)
{
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd)
    {
        ::fsync(fd.get());
    }
}

} // namespace

LinuxDisks::LinuxDisks(std::string sysRoot) : sysRoot_(std::move(sysRoot)) {}

std::vector<LoopDevice> LinuxDisks::loopDevices()
{
    std::vector<LoopDevice> devices;
    const std::string blockDir = sysRoot_ + "/block";
    Dir dir(::opendir(blockDir.c_str()));
    if (!dir)
    {
        throw sysError(errno, "opendir " + blockDir);
    }
    while (dirent* entry = ::readdir(dir.get()))
    {
        std::string name = entry->d_name;
        if (name.compare(0, 4, "loop") != 0)
        {
            continue;
        }
        std::ifstream in(blockDir + "/" + name + "/loop/backing_file");
        std::string backing;
        if (!in || !std::getline(in, backing) || backing.empty())
        {
            continue;
        }
        devices.push_back({"/dev/" + name, backing});
    }
    std::sort(devices.begin(), devices.end(),
              [](const LoopDevice& a, const LoopDevice& b)
              {
                  return a.device < b.device;
              });
    return devices;
}

std::string LinuxDisks::attachLoop(const std::string& image)
{
    // O_NOFOLLOW: a symlink put where an image was is not followed to whatever it names.
    UniqueFd file(::open(image.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
    if (!file)
    {
        throw sysError(errno, "open " + image);
    }
    struct stat st
    {
    };
    if (::fstat(file.get(), &st) < 0)
    {
        throw sysError(errno, "fstat " + image);
    }
    if (!S_ISREG(st.st_mode))
    {
        throw sysError(EINVAL, "attach " + image + ": " + fileKind(st.st_mode) + ", not a regular file");
    }
    UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
    if (!control)
    {
        throw sysError(errno, "open /dev/loop-control");
    }

    for (int attempt = 0; attempt < attachAttempts; ++attempt)
    {
        int number = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
        if (number < 0)
        {
            throw sysError(errno, "LOOP_CTL_GET_FREE");
        }
        std::string device = "/dev/loop" + std::to_string(number);
        UniqueFd loop(::open(device.c_str(), O_RDWR | O_CLOEXEC));
        if (!loop)
        {
            throw sysError(errno, "open " + device);
        }

        loop_config config{};
        config.fd = static_cast<std::uint32_t>(file.get());
        setFileName(config.info, image);
        if (::ioctl(loop.get(), LOOP_CONFIGURE, &config) == 0)
        {
            spdlog::info("event=loop-attached device={} image={}", device, image);
            return device;
        }
        if (errno == EBUSY)
        {
            continue;
        }
        if (errno != EINVAL && errno != ENOTTY)
        {
            throw sysError(errno, "LOOP_CONFIGURE " + device + " " + image);
        }

        // Kernels before 5.8 have no LOOP_CONFIGURE: bind first, then describe.
        if (::ioctl(loop.get(), LOOP_SET_FD, file.get()) < 0)
        {
            if (errno == EBUSY)
            {
                continue;
            }
            throw sysError(errno, "LOOP_SET_FD " + device + " " + image);
        }
        loop_info64 info{};
        setFileName(info, image);
        if (::ioctl(loop.get(), LOOP_SET_STATUS64, &info) < 0)
        {
            int error = errno;
            ::ioctl(loop.get(), LOOP_CLR_FD, 0);
            throw sysError(error, "LOOP_SET_STATUS64 " + device);
        }
        spdlog::info("event=loop-attached device={} image={}", device, image);
        return device;
    }
    throw sysError(EBUSY, "no free loop device for " + image);
}

void LinuxDisks::detachLoop(const std::string& device)
{
    UniqueFd loop(::open(device.c_str(), O_RDONLY | O_CLOEXEC));
    if (!loop)
    {
        throw sysError(errno, "open " + device);
    }
    // While still open elsewhere the kernel only sets autoclear and detaches on the last close.
    if (::ioctl(loop.get(), LOOP_CLR_FD, 0) < 0)
    {
        throw sysError(errno, "LOOP_CLR_FD " + device);
    }
    spdlog::info("event=loop-detached device={}", device);
}

void LinuxDisks::createImage(const std::string& path, std::uint64_t size)
{
    UniqueFd fd(::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
    if (!fd)
    {
        throw sysError(errno, "create " + path);
    }
    auto fail = [&](const std::string& what)
    {
        int error = errno;
        fd.reset();
        ::unlink(path.c_str());
        return sysError(error, what + " " + path);
    };
    // Really allocated: a sparse image would let the PV overcommit the host and fail on a later write.
    int r = 0;
    do
    {
        r = ::fallocate(fd.get(), 0, 0, static_cast<off_t>(size));
    } while (r < 0 && errno == EINTR);
    if (r < 0)
    {
        throw fail("fallocate " + std::to_string(size) + " bytes");
    }
    if (::fsync(fd.get()) < 0)
    {
        throw fail("fsync");
    }
    syncDirectoryOf(path);
    spdlog::info("event=image-created path={} bytes={}", path, size);
}

void LinuxDisks::removeImage(const std::string& path)
{
    if (::unlink(path.c_str()) < 0)
    {
        throw sysError(errno, "unlink " + path);
    }
    syncDirectoryOf(path);
    spdlog::info("event=image-removed path={}", path);
}

std::optional<std::string> LinuxDisks::signature(const std::string& device)
{
    errno = 0;
    Probe probe(blkid_new_probe_from_filename(device.c_str()));
    if (!probe)
    {
        throw sysError(errno != 0 ? errno : EIO, "blkid probe " + device);
    }
    blkid_probe_enable_superblocks(probe.get(), 1);
    blkid_probe_set_superblocks_flags(probe.get(), BLKID_SUBLKS_TYPE);
    blkid_probe_enable_partitions(probe.get(), 1);

    int r = blkid_do_safeprobe(probe.get());
    if (r == 1)
    {
        return std::nullopt;
    }
    if (r == -2)
    {
        // Two signatures at once (a filesystem over an old RAID member): certainly not free.
        return std::string("ambivalent");
    }
    if (r < 0)
    {
        throw sysError(errno != 0 ? errno : EIO, "blkid probe " + device);
    }
    const char* value = nullptr;
    if (blkid_probe_lookup_value(probe.get(), "TYPE", &value, nullptr) == 0 && value != nullptr)
    {
        return std::string(value);
    }
    if (blkid_probe_lookup_value(probe.get(), "PTTYPE", &value, nullptr) == 0 && value != nullptr)
    {
        return std::string(value);
    }
    return std::string("unknown");
}

std::vector<std::string> LinuxDisks::listDirectory(const std::string& dir)
{
    std::vector<std::string> names;
    Dir handle(::opendir(dir.c_str()));
    if (!handle)
    {
        if (errno == ENOENT)
        {
            return names;
        }
        throw sysError(errno, "opendir " + dir);
    }
    while (dirent* entry = ::readdir(handle.get()))
    {
        std::string name = entry->d_name;
        if (name != "." && name != "..")
        {
            names.push_back(std::move(name));
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::optional<std::string> LinuxDisks::imageRefusal(const std::string& image, const std::string& directory)
{
    std::string dir = directory;
    while (dir.size() > 1 && dir.back() == '/')
    {
        dir.pop_back();
    }
    const std::string prefix = dir == "/" ? dir : dir + "/";
    if (dir.empty() || dir.front() != '/' || image.compare(0, prefix.size(), prefix) != 0)
    {
        return "not inside the image directory " + dir;
    }
    const std::string name = image.substr(prefix.size());
    if (name.empty() || name == "." || name == ".." || name.compare(0, 3, "../") == 0 ||
        name.find("/../") != std::string::npos)
    {
        return "not a file name inside the image directory " + dir;
    }
    if (name.find('/') != std::string::npos)
    {
        // /media/<user>/ is where udisks2 mounts what any active user plugs in.
        return "in a subdirectory of the image directory " + dir + " (images must be directly inside it)";
    }

    UniqueFd dirFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    struct stat st
    {
    };
    if (!dirFd || ::fstat(dirFd.get(), &st) < 0)
    {
        return "cannot open the image directory " + dir + ": " + std::strerror(errno);
    }
    // Whoever may rename entries of the directory may swap an image under lvkeeper; the sticky bit
    // keeps others from renaming root's files.
    if (st.st_uid != 0)
    {
        return "the image directory " + dir + " is owned by uid " + std::to_string(st.st_uid) + ", not root";
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)
    {
        return "the image directory " + dir + " is writable by group or others (mode " + octalMode(st.st_mode) + ")";
    }

    // O_PATH: no open of a fifo (which would block) or a device (which may act on open); O_NOFOLLOW:
    // a symlink is seen as one.
    UniqueFd fd(::openat(dirFd.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd)
    {
        return errno == ENOENT ? std::string("does not exist") : std::string("cannot open: ") + std::strerror(errno);
    }
    if (::fstat(fd.get(), &st) < 0)
    {
        return std::string("cannot stat: ") + std::strerror(errno);
    }
    if (!S_ISREG(st.st_mode))
    {
        return std::string("is ") + fileKind(st.st_mode) + ", not a regular file";
    }
    if (st.st_uid != 0)
    {
        return "is owned by uid " + std::to_string(st.st_uid) + ", not root";
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    {
        return "is writable by group or others (mode " + octalMode(st.st_mode) + ")";
    }
    return std::nullopt;
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> LinuxDisks::fileAllocation(const std::string& path)
{
    struct stat st
    {
    };
    if (::stat(path.c_str(), &st) < 0)
    {
        if (errno == ENOENT)
        {
            return std::nullopt;
        }
        throw sysError(errno, "stat " + path);
    }
    return std::make_pair(static_cast<std::uint64_t>(st.st_blocks) * 512, static_cast<std::uint64_t>(st.st_size));
}

} // namespace lvkeeper::sys

namespace lvkeeper::sys
{

void LinuxDisks::flush(const std::string& device)
{
    UniqueFd fd(::open(device.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd)
    {
        throw sysError(errno, "open " + device);
    }
    // For a loop device this reaches lo_req_flush, which fsyncs the backing file: what lvm wrote to the PV
    // (with O_DIRECT, into the loop device) is in that file's page cache until then.
    if (::fsync(fd.get()) < 0)
    {
        throw sysError(errno, "fsync " + device);
    }
}

void LinuxDisks::allocateImage(const std::string& path)
{
    // Mode 0 over the whole file allocates only the holes; existing data is not touched.
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
    {
        throw std::system_error(errno, std::generic_category(), "open " + path);
    }
    struct stat st
    {
    };
    int r = ::fstat(fd, &st);
    if (r == 0)
    {
        r = ::fallocate(fd, 0, 0, st.st_size);
    }
    int saved = errno;
    if (r == 0)
    {
        r = ::fsync(fd);
        saved = errno;
    }
    ::close(fd);
    if (r != 0)
    {
        throw std::system_error(saved, std::generic_category(), "allocate " + path);
    }
}

} // namespace lvkeeper::sys

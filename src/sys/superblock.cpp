#include "lvkeeper/sys/superblock.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <system_error>

namespace lvkeeper::sys
{

namespace
{

std::uint64_t le(const unsigned char* p, int bytes)
{
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i)
    {
        v = (v << 8) | p[i];
    }
    return v;
}

std::uint64_t be(const unsigned char* p, int bytes)
{
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
    {
        v = (v << 8) | p[i];
    }
    return v;
}

void readAt(const std::string& device, off_t offset, unsigned char* buffer, std::size_t size)
{
    int fd = ::open(device.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
    {
        throw std::system_error(errno, std::generic_category(), "open " + device);
    }
    ssize_t n = ::pread(fd, buffer, size, offset);
    int saved = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(size))
    {
        throw std::system_error(n < 0 ? saved : EIO, std::generic_category(), "read superblock of " + device);
    }
}

} // namespace

std::optional<std::uint64_t> readFilesystemSize(const std::string& device, const std::string& fsType)
{
    if (fsType == "ext4" || fsType == "ext3" || fsType == "ext2")
    {
        // struct ext4_super_block at byte 1024: s_blocks_count_lo @4, s_log_block_size @24,
        // s_magic @56 (0xEF53), s_feature_incompat @96 (0x80 = 64bit), s_blocks_count_hi @336.
        std::array<unsigned char, 1024> sb{};
        readAt(device, 1024, sb.data(), sb.size());
        if (le(&sb[56], 2) != 0xEF53)
        {
            return std::nullopt;
        }
        std::uint64_t blocks = le(&sb[4], 4);
        if (le(&sb[96], 4) & 0x80)
        {
            blocks |= le(&sb[336], 4) << 32;
        }
        return blocks * (1024ULL << le(&sb[24], 4));
    }
    if (fsType == "xfs")
    {
        // struct xfs_sb at byte 0, big-endian: sb_magicnum @0 ("XFSB"), sb_blocksize @4, sb_dblocks @8.
        std::array<unsigned char, 512> sb{};
        readAt(device, 0, sb.data(), sb.size());
        if (be(&sb[0], 4) != 0x58465342)
        {
            return std::nullopt;
        }
        return be(&sb[8], 8) * be(&sb[4], 4);
    }
    return std::nullopt;
}

} // namespace lvkeeper::sys

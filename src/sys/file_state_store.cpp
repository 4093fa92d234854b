#include "lvkeeper/sys/linux.hpp"

#include "lvkeeper/sys/unique_fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace lvkeeper::sys
{

namespace
{

std::system_error sysError(int error, const std::string& what)
{
    return std::system_error(error, std::generic_category(), what);
}

void makeDirectories(const std::string& dir)
{
    for (std::size_t pos = 1; pos <= dir.size(); ++pos)
    {
        if (pos != dir.size() && dir[pos] != '/')
        {
            continue;
        }
        std::string prefix = dir.substr(0, pos);
        if (::mkdir(prefix.c_str(), 0755) < 0 && errno != EEXIST)
        {
            throw sysError(errno, "mkdir " + prefix);
        }
    }
}

void writeAll(int fd, const std::string& data, const std::string& path)
{
    std::size_t done = 0;
    while (done < data.size())
    {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0)
        {
            if (errno == EINTR)
            {
                continue;
            }
            throw sysError(errno, "write " + path);
        }
        done += static_cast<std::size_t>(n);
    }
}

} // namespace

FileStateStore::FileStateStore(std::string dir) : dir_(std::move(dir)) {}

std::vector<std::string> FileStateStore::images()
{
    std::vector<std::string> images;
    const std::string path = dir_ + "/images";
    std::ifstream in(path);
    if (!in)
    {
        if (errno == ENOENT)
        {
            return images;
        }
        throw sysError(errno != 0 ? errno : EIO, "read " + path);
    }
    std::string line;
    while (std::getline(in, line))
    {
        if (!line.empty())
        {
            images.push_back(line);
        }
    }
    return images;
}

void FileStateStore::setImages(const std::vector<std::string>& images)
{
    std::string data;
    for (const auto& image : images)
    {
        // One path per line is the whole format; a relative path would depend on our cwd at boot.
        if (image.empty() || image.front() != '/' || image.find('\n') != std::string::npos)
        {
            throw std::invalid_argument("image path must be absolute and on one line: " + image);
        }
        data += image;
        data += '\n';
    }

    makeDirectories(dir_);
    const std::string path = dir_ + "/images";
    const std::string tmp = path + ".tmp";
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd)
    {
        throw sysError(errno, "create " + tmp);
    }
    writeAll(fd.get(), data, tmp);
    // A crash must leave either the old list or the new one, never a truncated file.
    if (::fsync(fd.get()) < 0)
    {
        throw sysError(errno, "fsync " + tmp);
    }
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) < 0)
    {
        int error = errno;
        ::unlink(tmp.c_str());
        throw sysError(error, "rename " + tmp);
    }
    UniqueFd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir)
    {
        ::fsync(dir.get());
    }
}

} // namespace lvkeeper::sys

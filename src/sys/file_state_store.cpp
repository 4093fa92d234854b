#include "lvkeeper/sys/linux.hpp"

#include "lvkeeper/sys/unique_fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <optional>
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

/// Replaces path with data so that a crash leaves either the old file or the new one, never a truncated
/// one, and the new one survives a power cut once this returns: temp file, fsync, rename, directory fsync.
void replaceFile(const std::string& dir, const std::string& name, const std::string& data, mode_t mode)
{
    makeDirectories(dir);
    const std::string path = dir + "/" + name;
    const std::string tmp = path + ".tmp";
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd)
    {
        throw sysError(errno, "create " + tmp);
    }
    auto fail = [&](int error, const std::string& what)
    {
        fd.reset();
        ::unlink(tmp.c_str());
        return sysError(error, what);
    };
    try
    {
        writeAll(fd.get(), data, tmp);
    }
    catch (const std::system_error& e)
    {
        throw fail(e.code().value(), e.what());
    }
    if (::fsync(fd.get()) < 0)
    {
        throw fail(errno, "fsync " + tmp);
    }
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) < 0)
    {
        int error = errno;
        ::unlink(tmp.c_str());
        throw sysError(error, "rename " + tmp);
    }
    UniqueFd dirFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dirFd)
    {
        throw sysError(errno, "open " + dir);
    }
    if (::fsync(dirFd.get()) < 0)
    {
        throw sysError(errno, "fsync " + dir);
    }
}

/// The whole file, nullopt when it does not exist.
std::optional<std::string> readWhole(const std::string& path)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd)
    {
        if (errno == ENOENT)
        {
            return std::nullopt;
        }
        throw sysError(errno, "read " + path);
    }
    std::string text;
    char buffer[8192];
    for (;;)
    {
        ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0)
        {
            if (errno == EINTR)
            {
                continue;
            }
            throw sysError(errno, "read " + path);
        }
        if (n == 0)
        {
            return text;
        }
        text.append(buffer, static_cast<std::size_t>(n));
    }
}

} // namespace

FileStateStore::FileStateStore(std::string dir) : dir_(std::move(dir)) {}

std::string FileStateStore::location() const
{
    return dir_;
}

std::vector<std::string> FileStateStore::images()
{
    std::vector<std::string> images;
    const std::string path = dir_ + "/images";
    auto text = readWhole(path);
    if (!text)
    {
        return images;
    }
    std::size_t start = 0;
    int number = 0;
    while (start < text->size())
    {
        auto end = text->find('\n', start);
        if (end == std::string::npos)
        {
            end = text->size();
        }
        std::string line = text->substr(start, end - start);
        start = end + 1;
        ++number;
        if (line.empty())
        {
            continue;
        }
        if (line.front() != '/' || line.find('\0') != std::string::npos)
        {
            throw sysError(EBADMSG,
                           path + " is corrupt: line " + std::to_string(number) + " is not an absolute image path");
        }
        images.push_back(std::move(line));
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
    replaceFile(dir_, "images", data, 0644);
}

std::optional<std::string> FileStateStore::readJournal()
{
    return readWhole(dir_ + "/journal");
}

void FileStateStore::writeJournal(const std::string& text)
{
    replaceFile(dir_, "journal", text, 0600);
}

std::string FileStateStore::setAsideJournal()
{
    const std::string from = dir_ + "/journal";
    const std::string to = from + ".corrupt-" + std::to_string(static_cast<long long>(::time(nullptr)));
    if (::rename(from.c_str(), to.c_str()) < 0)
    {
        throw sysError(errno, "rename " + from);
    }
    return to;
}

} // namespace lvkeeper::sys

#include "lvkeeper/sys/files.hpp"

#include "lvkeeper/sys/unique_fd.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace lvkeeper::sys
{

namespace
{

std::system_error sysError(int error, const std::string& what)
{
    return std::system_error(error, std::generic_category(), what);
}

} // namespace

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

void replaceFile(const std::string& dir, const std::string& name, const std::string& data, mode_t mode, bool durable)
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
    // The unit's UMask=0077 must not take away what mode grants (metrics are world-readable).
    if (::fchmod(fd.get(), mode) < 0)
    {
        throw fail(errno, "chmod " + tmp);
    }
    try
    {
        writeAll(fd.get(), data, tmp);
    }
    catch (const std::system_error& e)
    {
        throw fail(e.code().value(), e.what());
    }
    if (durable && ::fsync(fd.get()) < 0)
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
    if (!durable)
    {
        return;
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

void TextFileWriter::replace(const std::string& path, const std::string& text)
{
    auto slash = path.rfind('/');
    std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    replaceFile(dir, path.substr(slash + 1), text, 0644, false);
}

} // namespace lvkeeper::sys

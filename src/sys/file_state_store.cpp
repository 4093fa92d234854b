#include "lvkeeper/sys/linux.hpp"

#include "lvkeeper/sys/files.hpp"
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
    std::vector<std::string> rejected;
    auto images = readableImages(rejected);
    if (!rejected.empty())
    {
        throw sysError(EBADMSG, dir_ + "/images is corrupt: " + rejected.front());
    }
    return images;
}

std::vector<std::string> FileStateStore::readableImages(std::vector<std::string>& rejected)
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
            rejected.push_back("line " + std::to_string(number) + " is not an absolute image path");
            continue;
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
    replaceFile(dir_, "images", data, 0644, true);
}

std::optional<std::string> FileStateStore::readJournal()
{
    return readWhole(dir_ + "/journal");
}

void FileStateStore::writeJournal(const std::string& text)
{
    replaceFile(dir_, "journal", text, 0600, true);
}

std::string FileStateStore::setAsideJournal()
{
    const std::string from = dir_ + "/journal";
    std::string to = from + ".corrupt-" + std::to_string(static_cast<long long>(::time(nullptr)));
    if (::rename(from.c_str(), to.c_str()) < 0)
    {
        throw sysError(errno, "rename " + from);
    }
    return to;
}

} // namespace lvkeeper::sys

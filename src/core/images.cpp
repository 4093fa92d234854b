#include "lvkeeper/images.hpp"

#include "lvkeeper/errors.hpp"
#include "lvkeeper/size.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>

namespace lvkeeper
{

namespace
{

std::string joinPath(const std::string& dir, const std::string& name)
{
    return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

} // namespace

Images::Images(StateStore& state, Executor& executor, Disks& disks, Filesystems& fs) :
    state_(state), executor_(executor), disks_(disks), fs_(fs)
{
}

void Images::update(std::string what, std::function<bool(std::vector<std::string>&)> change, Done done)
{
    executor_.offload(
        std::move(what),
        [this, change = std::move(change)]
        {
            auto images = state_.images();
            if (change(images))
            {
                state_.setImages(images);
            }
        },
        std::move(done));
}

void Images::record(const std::string& image, Done done)
{
    update(
        "record " + image,
        [image](std::vector<std::string>& images)
        {
            if (std::find(images.begin(), images.end(), image) != images.end())
            {
                return false;
            }
            images.push_back(image);
            return true;
        },
        std::move(done));
}

void Images::forget(const std::string& image, Done done)
{
    update(
        "forget " + image,
        [image](std::vector<std::string>& images)
        {
            auto size = images.size();
            images.erase(std::remove(images.begin(), images.end(), image), images.end());
            return images.size() != size;
        },
        std::move(done));
}

void Images::list(std::function<void(std::vector<std::string> images, Error error)> done)
{
    offloadValue<std::vector<std::string>>(
        executor_, "read the image record",
        [this]
        {
            return state_.images();
        },
        std::move(done));
}

std::string Images::nextPath(const std::string& dir)
{
    std::set<std::string> names;
    for (const auto& name : disks_.listDirectory(dir))
    {
        names.insert(name);
    }
    for (unsigned n = 0;; ++n)
    {
        std::string name = "disk" + std::to_string(n) + ".img";
        if (!names.count(name))
        {
            return joinPath(dir, name);
        }
    }
}

std::string Images::heldDeletedReport(const MountInfo& mount)
{
    std::vector<HeldDeletedFile> held;
    try
    {
        held = fs_.heldDeletedFiles(mount.devMajor, mount.devMinor);
    }
    catch (const std::exception& e)
    {
        return " (could not scan for deleted files held open: " + std::string(e.what()) + ")";
    }
    if (held.empty())
    {
        return "";
    }
    std::uint64_t total = 0;
    std::string list;
    for (const auto& h : held)
    {
        total += h.bytes;
        list += (list.empty() ? "" : ", ") + h.command + " (pid " + std::to_string(h.pid) + ") holds " + h.path + " " +
                formatSize(h.bytes);
    }
    return "; " + formatSize(total) + " more is held by deleted files still open: " + list +
           " - restart those processes to free it (lvkeeper never kills a process)";
}

void Images::checkRoom(const DisksConfig& disks, std::uint64_t size)
{
    const auto& dir = disks.imageDirectory;
    if (size > std::numeric_limits<std::uint64_t>::max() - disks.reserveHostSpace)
    {
        throw KeeperError(ErrorKind::InvalidArgument, "disk size " + std::to_string(size) + " bytes is too large");
    }
    std::uint64_t needed = size + disks.reserveHostSpace;
    FsUsage usage = fs_.usage(dir);
    if (usage.available >= needed)
    {
        return;
    }
    std::string message = dir + " has " + formatSize(usage.available) + " free but a new " + formatSize(size) +
                          " disk needs " + formatSize(needed) +
                          " (ReserveHostSpace=" + formatSize(disks.reserveHostSpace) + " is kept free)";
    if (auto mount = fs_.mountOf(dir))
    {
        message += heldDeletedReport(*mount);
    }
    throw KeeperError(ErrorKind::NoHostSpace, message);
}

void Images::keepAllocated()
{
    if (allocating_)
    {
        return;
    }
    allocating_ = true;
    struct Result
    {
        std::map<std::string, std::string> failed; ///< image -> error
        std::vector<std::pair<std::string, std::pair<std::uint64_t, std::uint64_t>>> allocated;
        std::vector<std::string> fine;
    };
    auto result = std::make_shared<Result>();
    executor_.offload(
        "keep images allocated",
        [this, result]
        {
            for (const auto& image : state_.images())
            {
                try
                {
                    auto alloc = disks_.fileAllocation(image);
                    if (!alloc || alloc->first + MiB >= alloc->second)
                    {
                        result->fine.push_back(image);
                        continue;
                    }
                    disks_.allocateImage(image);
                    result->allocated.emplace_back(image, *alloc);
                }
                catch (const std::exception& e)
                {
                    result->failed[image] = e.what();
                }
            }
        },
        [this, result](Error error)
        {
            allocating_ = false;
            if (error)
            {
                spdlog::warn("event=state-read-failed error=\"{}\"", describeError(error));
                return;
            }
            for (const auto& image : result->fine)
            {
                allocationFailed_.erase(image);
            }
            for (const auto& [image, alloc] : result->allocated)
            {
                allocationFailed_.erase(image);
                spdlog::info("event=image-allocated image={} was={} size={}", image, formatSize(alloc.first),
                             formatSize(alloc.second));
            }
            for (const auto& [image, message] : result->failed)
            {
                if (allocationFailed_.insert(image).second)
                {
                    spdlog::error("event=image-allocate-failed image={} error=\"{}\"", image, message);
                }
            }
        });
}

} // namespace lvkeeper

#include "lvkeeper/sys/fanotify_watch.hpp"

#include "lvkeeper/sys/unique_fd.hpp"

#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace lvkeeper::sys
{

namespace
{

// Under a writer that never pauses the queue never empties; a bounded read keeps one batch finite.
constexpr int maxReadsPerBatch = 16;

constexpr std::uint64_t baseMask = FAN_MODIFY | FAN_CLOSE_WRITE;

std::system_error sysError(int error, const std::string& what)
{
    return std::system_error(error, std::generic_category(), what);
}

// Marks and fsids both come from this one open directory, so a mount changing under the path
// in between cannot pair one filesystem's mark with another's fsid.
UniqueFd openMountRoot(const std::string& mountPoint)
{
    UniqueFd fd(::open(mountPoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd)
    {
        throw sysError(errno, "open " + mountPoint);
    }
    return fd;
}

std::pair<int, int> fsidOf(int fd, const std::string& mountPoint)
{
    struct statfs st
    {
    };
    if (::fstatfs(fd, &st) < 0)
    {
        throw sysError(errno, "statfs " + mountPoint);
    }
    return {st.f_fsid.__val[0], st.f_fsid.__val[1]};
}

} // namespace

FanotifyWatch::FanotifyWatch(sd_event* event, std::chrono::milliseconds minInterval, Activity activity,
                             Activity fsError) :
    event_(sd_event_ref(event)),
    minInterval_(minInterval), activity_(std::move(activity)), fsError_(std::move(fsError))
{
    fd_ = ::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_FID, O_RDONLY | O_LARGEFILE);
    if (fd_ < 0)
    {
        int error = errno;
        sd_event_unref(event_);
        throw sysError(error, "fanotify_init");
    }
    int r = sd_event_add_io(event_, &ioSource_, fd_, EPOLLIN, onIo, this);
    if (r < 0)
    {
        ::close(fd_);
        sd_event_unref(event_);
        throw sysError(-r, "sd_event_add_io fanotify");
    }
    sd_event_source_set_description(ioSource_, "fanotify");
}

FanotifyWatch::~FanotifyWatch()
{
    sd_event_source_disable_unref(ioSource_);
    sd_event_source_disable_unref(unmuteSource_);
    // Closing the group drops all its marks.
    ::close(fd_);
    sd_event_unref(event_);
}

std::uint64_t FanotifyWatch::markMask() const
{
    return fsErrorSupported_ ? (baseMask | FAN_FS_ERROR) : baseMask;
}

void FanotifyWatch::watch(const std::string& mountPoint)
{
    if (marks_.count(mountPoint) != 0)
    {
        return;
    }
    UniqueFd dir = openMountRoot(mountPoint);
    Fsid fsid = fsidOf(dir.get(), mountPoint);

    auto& mountPoints = byFsid_[fsid];
    if (mountPoints.empty())
    {
        auto mark = [&](std::uint64_t mask)
        {
            return ::fanotify_mark(fd_, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, dir.get(), nullptr);
        };
        int r = 0;
        if (tryFsError_)
        {
            r = mark(baseMask | FAN_FS_ERROR);
            if (r == 0)
            {
                fsErrorSupported_ = true;
            }
            else if (errno == EINVAL)
            {
                // Kernels before 5.16 have no FAN_FS_ERROR; writes are still worth watching.
                spdlog::info("event=fanotify-no-fs-error mount={} action=\"watching writes only\"", mountPoint);
                tryFsError_ = false;
                r = mark(baseMask);
            }
        }
        else
        {
            r = mark(baseMask);
        }
        if (r != 0)
        {
            int error = errno;
            byFsid_.erase(fsid);
            throw sysError(error, "fanotify_mark " + mountPoint);
        }
    }
    mountPoints.insert(mountPoint);
    marks_.emplace(mountPoint, fsid);
    spdlog::debug("event=fanotify-watch mount={} fs_errors={}", mountPoint, fsErrorSupported_);
}

void FanotifyWatch::unwatch(const std::string& mountPoint)
{
    auto mark = marks_.find(mountPoint);
    if (mark == marks_.end())
    {
        return;
    }
    Fsid fsid = mark->second;
    marks_.erase(mark);
    auto& mountPoints = byFsid_[fsid];
    mountPoints.erase(mountPoint);
    if (!mountPoints.empty())
    {
        // Another mount of the same filesystem still wants the mark.
        return;
    }
    byFsid_.erase(fsid);

    UniqueFd dir(::open(mountPoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir)
    {
        // Gone with its mount; the kernel dropped the mark with the superblock.
        return;
    }
    try
    {
        if (fsidOf(dir.get(), mountPoint) != fsid)
        {
            // Something else is mounted there now; its filesystem was never ours to unmark.
            return;
        }
    }
    catch (const std::system_error&)
    {
        return;
    }
    if (::fanotify_mark(fd_, FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM, markMask(), dir.get(), nullptr) < 0 &&
        errno != ENOENT && errno != EINVAL)
    {
        spdlog::warn("event=fanotify-unmark-failed mount={} error=\"{}\"", mountPoint, std::strerror(errno));
    }
    spdlog::debug("event=fanotify-unwatch mount={}", mountPoint);
}

int FanotifyWatch::onIo(sd_event_source* /*source*/, int /*fd*/, std::uint32_t /*revents*/, void* userdata)
{
    static_cast<FanotifyWatch*>(userdata)->drain();
    return 0;
}

int FanotifyWatch::onUnmute(sd_event_source* /*source*/, std::uint64_t /*usec*/, void* userdata)
{
    auto* self = static_cast<FanotifyWatch*>(userdata);
    // Level-triggered: whatever queued (and merged) while muted makes the fd readable at once.
    sd_event_source_set_enabled(self->ioSource_, SD_EVENT_ON);
    self->unquiet();
    return 0;
}

bool FanotifyWatch::changeWriteBits(const Fsid& fsid, bool add)
{
    auto mounts = byFsid_.find(fsid);
    if (mounts == byFsid_.end() || mounts->second.empty())
    {
        return false;
    }
    const std::string& mountPoint = *mounts->second.begin();
    UniqueFd dir(::open(mountPoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    try
    {
        if (!dir || fsidOf(dir.get(), mountPoint) != fsid)
        {
            return false; // unmounted or mounted over: the mark went with its superblock
        }
    }
    catch (const std::system_error&)
    {
        return false;
    }
    unsigned flags = (add ? FAN_MARK_ADD : FAN_MARK_REMOVE) | FAN_MARK_FILESYSTEM;
    if (::fanotify_mark(fd_, flags, baseMask, dir.get(), nullptr) < 0)
    {
        if (errno != ENOENT)
        {
            spdlog::warn("event=fanotify-mask-failed mount={} add={} error=\"{}\"", mountPoint, add,
                         std::strerror(errno));
        }
        return false;
    }
    return true;
}

void FanotifyWatch::quiet(const std::set<Fsid>& filesystems)
{
    // While muted the kernel would still build an event for every new file a writer creates (they do
    // not merge): take the write bits off the busy filesystems' marks (FAN_FS_ERROR stays) and put
    // them back at unmute, then look once, since writes in between were not reported.
    for (const auto& fsid : filesystems)
    {
        if (!quieted_.count(fsid) && changeWriteBits(fsid, false))
        {
            quieted_.insert(fsid);
        }
    }
}

void FanotifyWatch::unquiet()
{
    auto quieted = std::move(quieted_);
    quieted_.clear();
    std::set<std::string> look;
    for (const auto& fsid : quieted)
    {
        if (marks_.empty() || !byFsid_.count(fsid) || byFsid_[fsid].empty())
        {
            continue;
        }
        if (!changeWriteBits(fsid, true))
        {
            spdlog::warn("event=fanotify-rearm-failed fsid={}:{}", fsid.first, fsid.second);
        }
        look.insert(byFsid_[fsid].begin(), byFsid_[fsid].end());
    }
    report(activity_, look);
}

bool FanotifyWatch::mute()
{
    if (minInterval_.count() <= 0)
    {
        return false;
    }
    auto usec = static_cast<std::uint64_t>(std::chrono::microseconds(minInterval_).count());
    int r = 0;
    if (unmuteSource_ == nullptr)
    {
        r = sd_event_add_time_relative(event_, &unmuteSource_, CLOCK_MONOTONIC, usec, 1000, onUnmute, this);
        if (r >= 0)
        {
            sd_event_source_set_description(unmuteSource_, "fanotify-unmute");
        }
    }
    else
    {
        r = sd_event_source_set_time_relative(unmuteSource_, usec);
        if (r >= 0)
        {
            r = sd_event_source_set_enabled(unmuteSource_, SD_EVENT_ONESHOT);
        }
    }
    if (r < 0)
    {
        // Without the timer nothing would turn the fd back on: stay unmuted, just unbounded.
        spdlog::warn("event=fanotify-unmute-timer-failed error=\"{}\"", std::strerror(-r));
        return false;
    }
    sd_event_source_set_enabled(ioSource_, SD_EVENT_OFF);
    return true;
}

void FanotifyWatch::drain()
{
    alignas(fanotify_event_metadata) std::array<char, 65536> buffer{};
    std::set<std::string> active;
    std::set<std::string> failed;
    std::set<Fsid> busy;
    bool gotEvents = false;

    auto noteAll = [&](std::set<std::string>& into)
    {
        for (const auto& entry : marks_)
        {
            into.insert(entry.first);
        }
    };

    for (int reads = 0; reads < maxReadsPerBatch; ++reads)
    {
        ssize_t n = ::read(fd_, buffer.data(), buffer.size());
        if (n < 0)
        {
            if (errno == EINTR)
            {
                continue;
            }
            if (errno != EAGAIN)
            {
                spdlog::warn("event=fanotify-read-failed error=\"{}\"", std::strerror(errno));
            }
            break;
        }
        if (n == 0)
        {
            break;
        }
        gotEvents = true;

        std::size_t offset = 0;
        while (offset + sizeof(fanotify_event_metadata) <= static_cast<std::size_t>(n))
        {
            fanotify_event_metadata meta{};
            std::memcpy(&meta, buffer.data() + offset, sizeof meta);
            if (meta.event_len < sizeof meta || offset + meta.event_len > static_cast<std::size_t>(n))
            {
                break;
            }
            const char* event = buffer.data() + offset;
            offset += meta.event_len;

            if (meta.vers != FANOTIFY_METADATA_VERSION)
            {
                spdlog::error("event=fanotify-version-mismatch got={} want={}", meta.vers, FANOTIFY_METADATA_VERSION);
                continue;
            }
            if (meta.fd >= 0)
            {
                ::close(meta.fd);
            }
            if ((meta.mask & FAN_Q_OVERFLOW) != 0)
            {
                // Lost events: any filesystem may have grown.
                noteAll(active);
                continue;
            }

            std::size_t info = meta.metadata_len;
            while (info + sizeof(fanotify_event_info_header) <= meta.event_len)
            {
                fanotify_event_info_header header{};
                std::memcpy(&header, event + info, sizeof header);
                if (header.len < sizeof header || info + header.len > meta.event_len)
                {
                    break;
                }
                bool hasFsid = header.info_type == FAN_EVENT_INFO_TYPE_FID ||
                               header.info_type == FAN_EVENT_INFO_TYPE_DFID ||
                               header.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME;
                if (hasFsid && header.len >= sizeof(fanotify_event_info_fid))
                {
                    fanotify_event_info_fid fid{};
                    std::memcpy(&fid, event + info, sizeof fid);
                    auto found = byFsid_.find({fid.fsid.val[0], fid.fsid.val[1]});
                    if (found != byFsid_.end())
                    {
                        auto& into = (meta.mask & FAN_FS_ERROR) != 0 ? failed : active;
                        into.insert(found->second.begin(), found->second.end());
                        if ((meta.mask & FAN_FS_ERROR) == 0)
                        {
                            busy.insert(found->first);
                        }
                    }
                    break;
                }
                info += header.len;
            }
        }
    }

    if (!gotEvents)
    {
        return;
    }
    if (mute())
    {
        quiet(busy);
    }

    for (const auto& mountPoint : failed)
    {
        spdlog::warn("event=fs-error-reported mount={}", mountPoint);
    }
    report(fsError_, failed);
    report(activity_, active);
}

void FanotifyWatch::report(const Activity& callback, const std::set<std::string>& mountPoints)
{
    for (const auto& mountPoint : mountPoints)
    {
        try
        {
            if (callback)
            {
                callback(mountPoint);
            }
        }
        catch (const std::exception& e)
        {
            spdlog::error("event=fanotify-callback-threw mount={} error=\"{}\"", mountPoint, e.what());
        }
    }
}

} // namespace lvkeeper::sys

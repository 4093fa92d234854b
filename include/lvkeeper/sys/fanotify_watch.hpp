#pragma once

#include <systemd/sd-event.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>

namespace lvkeeper::sys
{

/// One fanotify group (FAN_REPORT_FID) with a FAN_MARK_FILESYSTEM mark per watched mount,
/// for FAN_MODIFY | FAN_CLOSE_WRITE (and FAN_FS_ERROR where the kernel has it).
/// After a batch of events the fd is muted for minInterval and the busy filesystems' marks stop
/// reporting writes until then (so the kernel builds no event per new file meanwhile); at unmute the
/// marks are re-armed and activity is reported once for them. A burst costs at most two callbacks
/// per interval however many writes it has. Callbacks must not destroy the watch.
class FanotifyWatch
{
  public:
    /// activity(mountPoint) after writes; fsError(mountPoint) on FAN_FS_ERROR.
    using Activity = std::function<void(const std::string& mountPoint)>;

    FanotifyWatch(sd_event* event, std::chrono::milliseconds minInterval, Activity activity, Activity fsError);
    ~FanotifyWatch();

    FanotifyWatch(const FanotifyWatch&) = delete;
    FanotifyWatch& operator=(const FanotifyWatch&) = delete;

    /// Adds a filesystem mark for the filesystem mounted at mountPoint. Throws std::system_error.
    void watch(const std::string& mountPoint);
    /// Removes it (no error when it was not watched or the mount is gone).
    void unwatch(const std::string& mountPoint);
    /// Whether the kernel accepted FAN_FS_ERROR.
    bool reportsFsErrors() const noexcept
    {
        return fsErrorSupported_;
    }

  private:
    using Fsid = std::pair<int, int>;

    static int onIo(sd_event_source* source, int fd, std::uint32_t revents, void* userdata);
    static int onUnmute(sd_event_source* source, std::uint64_t usec, void* userdata);
    void drain();
    /// Turns the fd off for minInterval; false when it could not (then nothing is quieted).
    bool mute();
    /// Takes FAN_MODIFY | FAN_CLOSE_WRITE off the marks of busy filesystems for the mute.
    void quiet(const std::set<Fsid>& filesystems);
    /// Puts them back and reports activity once for each (its writes meanwhile went unreported).
    void unquiet();
    bool changeWriteBits(const Fsid& fsid, bool add);
    /// Calls callback for each mount point; a callback that throws is logged, the rest still run.
    static void report(const Activity& callback, const std::set<std::string>& mountPoints);
    std::uint64_t markMask() const;

    sd_event* event_;
    std::chrono::milliseconds minInterval_;
    Activity activity_;
    Activity fsError_;
    int fd_ = -1;
    bool tryFsError_ = true;
    bool fsErrorSupported_ = false;
    sd_event_source* ioSource_ = nullptr;
    sd_event_source* unmuteSource_ = nullptr;
    std::map<std::string, Fsid> marks_;            ///< mount point -> fsid of its filesystem
    std::map<Fsid, std::set<std::string>> byFsid_; ///< fsid -> mount points (bind mounts share one)
    std::set<Fsid> quieted_;                       ///< filesystems whose write bits are off until unmute
};

} // namespace lvkeeper::sys

#pragma once

#include "lvkeeper/config.hpp"
#include "lvkeeper/executor.hpp"
#include "lvkeeper/system.hpp"

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace lvkeeper
{

/// The disk images behind lvkeeper's PVs: the durable record the boot-time re-attachment reads, the names of
/// new ones, whether the image directory has room for one more, and keeping them fully allocated.
class Images
{
  public:
    using Error = std::exception_ptr;
    using Done = std::function<void(Error error)>;

    Images(StateStore& state, Executor& executor, Disks& disks, Filesystems& fs);

    /// Adds image to the record, durably, off the loop (nothing if it is there already).
    void record(const std::string& image, Done done);
    /// Removes image from the record, durably, off the loop.
    void forget(const std::string& image, Done done);
    /// The record, read off the loop.
    void list(std::function<void(std::vector<std::string> images, Error error)> done);

    /// Where the record lives, for messages.
    std::string location() const
    {
        return state_.location() + "/images";
    }
    /// diskN.img with the lowest N free in dir.
    std::string nextPath(const std::string& dir);
    /// Throws KeeperError(NoHostSpace) when dir cannot take size more bytes and keep the reserve; the message
    /// names the deleted files that processes still hold open there. Sizes that overflow are InvalidArgument.
    void checkRoom(const DisksConfig& disks, std::uint64_t size);
    /// "; 3.7G more is held by deleted files still open: server (pid 381) holds /.tempfile 3.7G - restart..."
    /// or "" when nothing is held. The one deleted-file scan, as Diagnose reports it too.
    std::string heldDeletedReport(const MountInfo& mount);

    /// Allocates the holes of every recorded image that turned sparse (ext4 zeroes new inode tables after a grow
    /// and a loop device turns zeroes into holes); off the loop. A failure is logged once per image.
    void keepAllocated();

  private:
    /// Runs a read-modify-write of the record off the loop.
    void update(std::string what, std::function<bool(std::vector<std::string>&)> change, Done done);

    StateStore& state_;
    Executor& executor_;
    Disks& disks_;
    Filesystems& fs_;
    std::set<std::string> allocationFailed_;
    bool allocating_ = false;
};

} // namespace lvkeeper

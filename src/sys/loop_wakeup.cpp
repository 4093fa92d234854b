#include "lvkeeper/sys/loop_wakeup.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace lvkeeper::sys
{

LoopWakeup::LoopWakeup(sd_event* event, const char* description, std::function<void()> onWake)
    : onWake_(std::move(onWake))
{
    fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd_ < 0)
    {
        throw std::system_error(errno, std::generic_category(), "eventfd");
    }
    int r = sd_event_add_io(event, &source_, fd_, EPOLLIN, onIo, this);
    if (r < 0)
    {
        ::close(fd_);
        throw std::system_error(-r, std::generic_category(), "sd_event_add_io");
    }
    sd_event_source_set_description(source_, description);
}

LoopWakeup::~LoopWakeup()
{
    sd_event_source_disable_unref(source_);
    ::close(fd_);
}

void LoopWakeup::signal()
{
    // Only fails when the counter would overflow (EAGAIN): the loop has a wakeup pending then anyway.
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
}

int LoopWakeup::onIo(sd_event_source* /*source*/, int fd, std::uint32_t /*revents*/, void* userdata)
{
    std::uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(fd, &count, sizeof count);
    static_cast<LoopWakeup*>(userdata)->onWake_();
    return 0;
}

} // namespace lvkeeper::sys

#pragma once

#include <unistd.h>

#include <utility>

namespace lvkeeper::sys
{

/// Owns a file descriptor and closes it once.
class UniqueFd
{
  public:
    UniqueFd() = default;
    /// Takes ownership of fd (negative means none).
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    ~UniqueFd()
    {
        reset();
    }

    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept
    {
        if (this != &other)
        {
            reset(other.release());
        }
        return *this;
    }

    /// The descriptor, -1 when empty.
    int get() const noexcept
    {
        return fd_;
    }
    /// Whether it holds a descriptor.
    explicit operator bool() const noexcept
    {
        return fd_ >= 0;
    }
    /// Gives the descriptor up without closing it.
    int release() noexcept
    {
        return std::exchange(fd_, -1);
    }
    /// Closes the current descriptor and takes fd.
    void reset(int fd = -1) noexcept
    {
        if (fd_ >= 0)
        {
            // close(2) releases the descriptor even when it reports EINTR; never retry.
            ::close(fd_);
        }
        fd_ = fd;
    }

  private:
    int fd_ = -1;
};

} // namespace lvkeeper::sys

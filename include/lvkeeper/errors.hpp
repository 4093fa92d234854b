#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

namespace lvkeeper
{

/// The kinds of failure an admin sees; each maps to org.lvkeeper.Keeper1.Error.<Name>.
enum class ErrorKind
{
    InvalidArgument,
    NotFound,
    NoSpace,
    NoHostSpace,
    Busy,
    FilesystemErrors,
    CommandFailed,
    AccessDenied,
    Failed,
};

/// The D-Bus error name suffix of a kind ("NoSpace").
std::string_view errorKindName(ErrorKind kind);

/// An error with a kind and a message a person can act on.
class KeeperError : public std::runtime_error
{
  public:
    KeeperError(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

    /// Which named error this is.
    ErrorKind kind() const noexcept
    {
        return kind_;
    }

  private:
    ErrorKind kind_;
};

/// The message of any captured exception, for logs, signals and replies.
std::string describeError(const std::exception_ptr& error);

} // namespace lvkeeper

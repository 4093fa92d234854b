#include "lvkeeper/errors.hpp"

namespace lvkeeper
{

std::string_view errorKindName(ErrorKind kind)
{
    switch (kind)
    {
    case ErrorKind::InvalidArgument:
        return "InvalidArgument";
    case ErrorKind::NotFound:
        return "NotFound";
    case ErrorKind::NoSpace:
        return "NoSpace";
    case ErrorKind::NoHostSpace:
        return "NoHostSpace";
    case ErrorKind::Busy:
        return "Busy";
    case ErrorKind::FilesystemErrors:
        return "FilesystemErrors";
    case ErrorKind::CommandFailed:
        return "CommandFailed";
    case ErrorKind::AccessDenied:
        return "AccessDenied";
    case ErrorKind::Failed:
        return "Failed";
    }
    // A value outside the enum (a cast gone wrong) must still map to a valid D-Bus name.
    return "Failed";
}

std::string describeError(const std::exception_ptr& error)
{
    try
    {
        std::rethrow_exception(error);
    }
    catch (const std::exception& e)
    {
        return e.what();
    }
    catch (...)
    {
        return "unknown error";
    }
}

} // namespace lvkeeper

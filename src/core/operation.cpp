#include "lvkeeper/operation.hpp"

#include "lvkeeper/errors.hpp"

#include <spdlog/spdlog.h>

#include <ctime>
#include <memory>
#include <optional>

namespace lvkeeper
{

namespace
{

std::string isoTime(std::chrono::system_clock::time_point when)
{
    std::time_t t = std::chrono::system_clock::to_time_t(when);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

} // namespace

Operation::Error operationError(ErrorKind kind, const std::string& message)
{
    return std::make_exception_ptr(KeeperError(kind, message));
}

Operation::Operation(OperationContext& ctx, std::string kind) : ctx_(ctx)
{
    intent_.kind = std::move(kind);
}

Operation::~Operation() = default;

// NOLINTNEXTLINE(performance-unnecessary-value-param): its values are moved out (clang-tidy 14 misses it)
void Operation::journal(std::map<std::string, std::string> fields, bool required)
{
    journaled_ = true;
    required_ = required;
    for (auto& [key, value] : fields)
    {
        intent_.fields[key] = std::move(value);
    }
    if (intent_.since.empty())
    {
        intent_.since = isoTime(ctx_.scheduler.wallNow());
    }
}

void Operation::adopt(const Intent& intent)
{
    intent_ = intent;
    journaled_ = true;
    ctx_.journal.own(intent_.id, weak_from_this());
}

void Operation::note(const std::string& key, const std::string& value)
{
    intent_.fields[key] = value;
}

void Operation::step(const std::string& name, std::function<void(Next)> body, Next next)
{
    auto keep = shared_from_this();
    ctx_.gate.pass(intent_.kind, name,
                   [this, keep, name, body = std::move(body), next = std::move(next)]() mutable
                   {
                       if (!journaled_)
                       {
                           body(std::move(next));
                           return;
                       }
                       intent_.step = name;
                       bool first = intent_.id == 0;
                       ctx_.journal.record(
                           intent_,
                           [this, keep, name, body = std::move(body), next = std::move(next)](Error error) mutable
                           {
                               if (error && required_)
                               {
                                   next(error);
                                   return;
                               }
                               // Not recorded, but the step goes ahead: keeping the volume
                               // alive matters more (Diagnose reports the journal).
                               body(std::move(next));
                           });
                       if (first)
                       {
                           ctx_.journal.own(intent_.id, weak_from_this());
                       }
                   });
}

void Operation::closeIntent(std::function<void()> done)
{
    if (!journaled_ || intent_.id == 0)
    {
        done();
        return;
    }
    journaled_ = false;
    ctx_.journal.close(intent_.id,
                       [done = std::move(done)](Error)
                       {
                           done();
                       });
}

void Operation::pvcreateBlank(const std::string& device, Next next)
{
    auto keep = shared_from_this();
    auto signature = std::make_shared<std::optional<std::string>>();
    ctx_.executor.offload(
        "probe " + device,
        [this, keep, device, signature]
        {
            *signature = ctx_.disks.signature(device);
        },
        [this, keep, device, signature, next = std::move(next)](Error error)
        {
            if (error)
            {
                next(error);
                return;
            }
            if (*signature)
            {
                next(operationError(ErrorKind::InvalidArgument, device + " carries a " + **signature +
                                                                    " signature; lvkeeper never writes over one"));
                return;
            }
            ctx_.lvm.change("", lvm::pvcreateArgs(device), {device}, next);
        });
}

void Operation::offload(std::string what, Executor::Work work, Next next)
{
    auto keep = shared_from_this();
    ctx_.executor.offload(std::move(what), std::move(work),
                          [keep, next = std::move(next)](Error error)
                          {
                              next(error);
                          });
}

} // namespace lvkeeper

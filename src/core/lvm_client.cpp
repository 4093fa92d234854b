#include "lvkeeper/lvm_client.hpp"

#include "lvkeeper/errors.hpp"

#include <spdlog/spdlog.h>

#include <memory>
#include <system_error>

namespace lvkeeper
{

namespace
{

LvmClient::Error commandFailed(const std::string& what, const CommandResult& r)
{
    return std::make_exception_ptr(KeeperError(ErrorKind::CommandFailed, what + r.describe()));
}

/// Commands after which a VG has other PVs than before: the device list is read again before the next flush.
bool changesMembership(const std::string& subcommand)
{
    return subcommand == "vgextend" || subcommand == "vgreduce" || subcommand == "pvcreate" || subcommand == "pvremove";
}

} // namespace

LvmClient::LvmClient(CommandRunner& runner, Executor& executor, Disks& disks, std::string lvmCommand,
                     std::chrono::milliseconds timeout) :
    runner_(runner),
    executor_(executor), disks_(disks), command_(std::move(lvmCommand)), timeout_(timeout)
{
}

template <typename Row>
void LvmClient::report(std::vector<std::string> args, std::vector<Row> (*parse)(std::string_view), Report<Row> done,
                       bool background)
{
    args.insert(args.begin(), command_);
    runner_.run(std::move(args), CommandOptions(timeout_, background),
                [parse, done = std::move(done)](const CommandResult& r)
                {
                    if (!r.ok())
                    {
                        done({}, commandFailed("cannot read LVM state: ", r));
                        return;
                    }
                    std::vector<Row> rows;
                    try
                    {
                        rows = parse(r.out);
                    }
                    catch (...)
                    {
                        done({}, std::current_exception());
                        return;
                    }
                    done(std::move(rows), nullptr);
                });
}

void LvmClient::lvs(Report<lvm::Lv> done, bool background)
{
    report(lvm::lvsArgs(), &lvm::parseLvs, std::move(done), background);
}

void LvmClient::pvs(Report<lvm::Pv> done, bool background)
{
    report<lvm::Pv>(
        lvm::pvsArgs(), &lvm::parsePvs,
        [this, done = std::move(done)](std::vector<lvm::Pv> rows, Error error)
        {
            if (!error)
            {
                devicesOf_.clear();
                for (const auto& pv : rows)
                {
                    if (!pv.vgName.empty())
                    {
                        devicesOf_[pv.vgName].insert(pv.name);
                    }
                }
            }
            done(std::move(rows), error);
        },
        background);
}

void LvmClient::vgs(Report<lvm::Vg> done, bool background)
{
    report(lvm::vgsArgs(), &lvm::parseVgs, std::move(done), background);
}

void LvmClient::moves(Report<lvm::Move> done, bool background)
{
    report(lvm::movesArgs(), &lvm::parseMoves, std::move(done), background);
}

void LvmClient::run(std::vector<std::string> args, CommandRunner::Done done)
{
    args.insert(args.begin(), command_);
    runner_.run(std::move(args), CommandOptions(timeout_), std::move(done));
}

void LvmClient::change(const std::string& vg, std::vector<std::string> args, std::vector<std::string> alsoFlush,
                       Done done)
{
    std::string subcommand = args.empty() ? std::string() : args.front();
    std::string what = subcommand + (args.size() > 1 ? " " + args.back() : std::string());
    run(std::move(args),
        [this, vg, subcommand, what, alsoFlush = std::move(alsoFlush), done = std::move(done)](const CommandResult& r)
        {
            if (!r.ok())
            {
                done(commandFailed("", r));
                return;
            }
            std::set<std::string> devices(alsoFlush.begin(), alsoFlush.end());
            auto flushAll = [this, vg, subcommand, what, devices, done](Error error)
            {
                if (error)
                {
                    done(std::make_exception_ptr(KeeperError(
                        ErrorKind::Failed, what +
                                               " succeeded but the PVs it wrote to could not be listed to flush "
                                               "them: " +
                                               describeError(error))));
                    return;
                }
                std::set<std::string> all = devices;
                if (!vg.empty())
                {
                    const auto& of = devicesOf_[vg];
                    all.insert(of.begin(), of.end());
                }
                if (changesMembership(subcommand) && !vg.empty())
                {
                    devicesOf_.erase(vg);
                }
                flushDevices(vg, std::move(all), what, done);
            };
            if (vg.empty() || devicesOf_.count(vg))
            {
                flushAll(nullptr);
                return;
            }
            // Never read yet (or changed since): which PVs did the command write its metadata to?
            pvs(
                [flushAll](const std::vector<lvm::Pv>&, Error error)
                {
                    flushAll(error);
                });
        });
}

void LvmClient::flushDevices(const std::string& vg, std::set<std::string> devices, const std::string& what, Done done)
{
    if (devices.empty())
    {
        done(nullptr);
        return;
    }
    auto count = devices.size();
    executor_.offload(
        "flush " + what,
        [this, devices = std::move(devices)]
        {
            for (const auto& device : devices)
            {
                // A missing PV ("[unknown]", a node that is gone) holds nothing the command wrote.
                if (device.empty() || device.front() != '/')
                {
                    continue;
                }
                try
                {
                    disks_.flush(device);
                }
                catch (const std::system_error& e)
                {
                    if (e.code() != std::errc::no_such_file_or_directory &&
                        e.code() != std::errc::no_such_device_or_address)
                    {
                        throw;
                    }
                }
            }
        },
        [vg, what, count, done](Error error)
        {
            if (error)
            {
                spdlog::error("event=flush-failed vg={} after=\"{}\" error=\"{}\"", vg, what, describeError(error));
                done(std::make_exception_ptr(KeeperError(
                    ErrorKind::Failed, what + " succeeded but could not be made durable: " + describeError(error))));
                return;
            }
            spdlog::debug("event=flushed vg={} after=\"{}\" devices={}", vg, what, count);
            done(nullptr);
        });
}

} // namespace lvkeeper

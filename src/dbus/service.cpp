#include "lvkeeper/dbus.hpp"
#include "lvkeeper/errors.hpp"
#include "lvkeeper/policy.hpp"

#include "dbus/authorizer.hpp"
#include "dbus/log_text.hpp"
#include "dbus/manager_adaptor.hpp"
#include "dbus/volume_adaptor.hpp"
#include "lvkeeper_build_config.hpp"

#include <spdlog/spdlog.h>

namespace lvkeeper::dbus
{

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor): final, so only ever deleted as a Manager
class Service::Manager final
    : public sdbus::AdaptorInterfaces<org::lvkeeper::Keeper1::Manager_adaptor, sdbus::ObjectManager_adaptor>
{
  public:
    Manager(sdbus::IConnection& connection, Keeper& keeper, Doctor& doctor) :
        AdaptorInterfaces(connection, managerPath), keeper_(keeper), doctor_(doctor), authorizer_(connection)
    {
        registerAdaptor();
    }

    ~Manager()
    {
        unregisterAdaptor();
    }

    Manager(const Manager&) = delete;
    Manager& operator=(const Manager&) = delete;

  private:
    /// Runs work once the caller is authorized for action, else answers the refusal. Nothing the caller
    /// sent is logged before that: the refusal logs the bus's facts (method, action, uid) only.
    template <typename Reply, typename Work>
    void authorized(const std::shared_ptr<Reply>& reply, const char* method, const char* action, Work work)
    {
        try
        {
            authorizer_.authorize(Authorizer::currentCaller(getObject()), method, action,
                                  [reply, work](std::exception_ptr denied)
                                  {
                                      if (denied)
                                      {
                                          reply->returnError(toDbusError(denied));
                                          return;
                                      }
                                      try
                                      {
                                          work();
                                      }
                                      catch (...)
                                      {
                                          reply->returnError(toDbusError(std::current_exception()));
                                      }
                                  });
        }
        catch (...)
        {
            reply->returnError(toDbusError(std::current_exception()));
        }
    }

    void Grow(sdbus::Result<uint64_t>&& result, std::string volume, std::string size) override
    {
        // sdbus::Result is move-only and std::function wants copies: share it.
        auto reply = std::make_shared<sdbus::Result<uint64_t>>(std::move(result));
        authorized(reply, "Grow", "org.lvkeeper.grow",
                   [this, reply, volume, size]
                   {
                       spdlog::info("event=call method=Grow volume={} size={}", logText(volume), logText(size));
                       keeper_.grow(volume, size,
                                    [reply](std::uint64_t newSize, Keeper::Error error)
                                    {
                                        if (error)
                                        {
                                            reply->returnError(toDbusError(error));
                                        }
                                        else
                                        {
                                            reply->returnResults(newSize);
                                        }
                                    });
                   });
    }

    void AddDisk(sdbus::Result<std::string, std::string>&& result, std::string vg, std::string size) override
    {
        auto reply = std::make_shared<sdbus::Result<std::string, std::string>>(std::move(result));
        authorized(reply, "AddDisk", "org.lvkeeper.add-disk",
                   [this, reply, vg, size]
                   {
                       spdlog::info("event=call method=AddDisk vg={} size={}", logText(vg), logText(size));
                       keeper_.addDisk(vg, size,
                                       [reply](const std::string& image, const std::string& device, Keeper::Error error)
                                       {
                                           if (error)
                                           {
                                               reply->returnError(toDbusError(error));
                                           }
                                           else
                                           {
                                               reply->returnResults(image, device);
                                           }
                                       });
                   });
    }

    void Remount(sdbus::Result<>&& result, std::string volume) override
    {
        auto reply = std::make_shared<sdbus::Result<>>(std::move(result));
        authorized(reply, "Remount", "org.lvkeeper.remount",
                   [this, reply, volume]
                   {
                       spdlog::info("event=call method=Remount volume={}", logText(volume));
                       keeper_.remount(volume,
                                       [reply](Keeper::Error error)
                                       {
                                           if (error)
                                           {
                                               reply->returnError(toDbusError(error));
                                           }
                                           else
                                           {
                                               reply->returnResults();
                                           }
                                       });
                   });
    }

    void Diagnose(
        sdbus::Result<std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, std::string>>>&&
            result) override
    {
        spdlog::info("event=call method=Diagnose");
        auto reply = std::make_shared<std::decay_t<decltype(result)>>(std::move(result));
        try
        {
            // Who asks decides what they learn: the uid the bus verified, never /proc's.
            authorizer_.callerUid(
                Authorizer::currentCaller(getObject()),
                [this, reply](std::optional<uid_t> uid, const std::string& why)
                {
                    if (!uid)
                    {
                        reply->returnError(
                            toDbusError(std::make_exception_ptr(KeeperError(ErrorKind::AccessDenied, why))));
                        return;
                    }
                    doctor_.diagnose(
                        *uid,
                        [reply](const std::vector<Finding>& findings, Doctor::Error error)
                        {
                            if (error)
                            {
                                reply->returnError(toDbusError(error));
                                return;
                            }
                            std::vector<sdbus::Struct<std::string, std::string, std::string, std::string, std::string>>
                                out;
                            out.reserve(findings.size());
                            for (const auto& f : findings)
                            {
                                out.emplace_back(f.id, std::string(severityName(f.severity)), f.subject, f.problem,
                                                 f.fix);
                            }
                            reply->returnResults(out);
                        });
                });
        }
        catch (...)
        {
            reply->returnError(toDbusError(std::current_exception()));
        }
    }

    void Repair(sdbus::Result<std::vector<sdbus::Struct<std::string, std::string>>>&& result,
                std::vector<std::string> ids) override
    {
        auto reply = std::make_shared<std::decay_t<decltype(result)>>(std::move(result));
        authorized(reply, "Repair", "org.lvkeeper.repair",
                   [this, reply, ids]
                   {
                       spdlog::info("event=call method=Repair ids={}", ids.size());
                       doctor_.repair(ids,
                                      [reply](const std::vector<RepairResult>& results)
                                      {
                                          std::vector<sdbus::Struct<std::string, std::string>> out;
                                          out.reserve(results.size());
                                          for (const auto& r : results)
                                          {
                                              out.emplace_back(r.id, r.describe());
                                          }
                                          reply->returnResults(out);
                                      });
                   });
    }

    std::string Version() override
    {
        return LVKEEPER_VERSION;
    }

    std::string CurrentJob() override
    {
        return job_;
    }

    double Progress() override
    {
        return fraction_;
    }

    uint64_t DisksAdded() override
    {
        return keeper_.disksAdded();
    }

  public:
    void setProgress(const std::string& job, double fraction)
    {
        if (job == job_ && fraction == fraction_)
        {
            return;
        }
        job_ = job;
        fraction_ = fraction;
        getObject().emitPropertiesChangedSignal(org::lvkeeper::Keeper1::Manager_adaptor::INTERFACE_NAME,
                                                {"CurrentJob", "Progress"});
    }

    void disksChanged()
    {
        getObject().emitPropertiesChangedSignal(org::lvkeeper::Keeper1::Manager_adaptor::INTERFACE_NAME,
                                                {"DisksAdded"});
    }

  private:
    Keeper& keeper_;
    Doctor& doctor_;
    Authorizer authorizer_;
    std::string job_;
    double fraction_ = 0;
};

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor): final, so only ever deleted as a Volume
class Service::Volume final : public sdbus::AdaptorInterfaces<org::lvkeeper::Keeper1::Volume_adaptor,
                                                              sdbus::ManagedObject_adaptor, sdbus::Properties_adaptor>
{
  public:
    Volume(sdbus::IConnection& connection, Keeper& keeper, std::size_t index) :
        AdaptorInterfaces(connection, volumeObjectPath(keeper.volumes().at(index).config.mountPoint)), keeper_(keeper),
        index_(index)
    {
        registerAdaptor();
        emitInterfacesAddedSignal({org::lvkeeper::Keeper1::Volume_adaptor::INTERFACE_NAME});
    }

    ~Volume()
    {
        emitInterfacesRemovedSignal({org::lvkeeper::Keeper1::Volume_adaptor::INTERFACE_NAME});
        unregisterAdaptor();
    }

    Volume(const Volume&) = delete;
    Volume& operator=(const Volume&) = delete;

    void changed()
    {
        emitPropertiesChangedSignal(org::lvkeeper::Keeper1::Volume_adaptor::INTERFACE_NAME);
    }

  private:
    const VolumeState& v() const
    {
        return keeper_.volumes().at(index_);
    }

    std::string MountPoint() override
    {
        return v().config.mountPoint;
    }
    std::string Device() override
    {
        return v().mount.source;
    }
    std::string VolumeGroup() override
    {
        return v().vg;
    }
    std::string LogicalVolume() override
    {
        return v().lv;
    }
    std::string Filesystem() override
    {
        return v().mount.fsType;
    }
    uint64_t Size() override
    {
        return v().usage.size;
    }
    uint64_t LogicalVolumeSize() override
    {
        return v().lvSize;
    }
    uint64_t Used() override
    {
        return v().usage.used;
    }
    uint64_t Available() override
    {
        return v().usage.available;
    }
    double UsedPercent() override
    {
        return v().usage.usedPercent();
    }
    double InodesUsedPercent() override
    {
        return v().usage.inodesUsedPercent();
    }
    bool ReadOnly() override
    {
        return v().readOnly;
    }
    bool FilesystemErrors() override
    {
        return v().fsErrors;
    }
    bool Mounted() override
    {
        return v().mounted;
    }
    double GrowAt() override
    {
        return v().config.growAt;
    }
    uint64_t GrowStep() override
    {
        return v().config.growStep;
    }
    uint64_t MaxSize() override
    {
        return v().config.maxSize.value_or(0);
    }
    bool AutoGrow() override
    {
        return v().config.autoGrow;
    }
    uint64_t VolumeGroupFree() override
    {
        return v().vgFree;
    }
    std::string State() override
    {
        return std::string(activityName(v().activity));
    }
    bool Exhausted() override
    {
        return v().exhausted.has_value();
    }
    std::string ExhaustedReason() override
    {
        return v().exhausted.value_or("");
    }
    uint64_t GrowCount() override
    {
        return v().growCount;
    }
    uint64_t GrowFailureCount() override
    {
        return v().growFailureCount;
    }
    uint64_t LastGrowTimestamp() override
    {
        if (!v().lastGrowTime)
        {
            return 0;
        }
        return static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(v().lastGrowTime->time_since_epoch()).count());
    }
    std::string LastError() override
    {
        return v().lastError;
    }
    double FillRate() override
    {
        return v().fillRate;
    }
    int64_t TimeToFull() override
    {
        return policy::timeToFull(v().usage.available, v().fillRate);
    }
    uint64_t LastGrowDuration() override
    {
        return static_cast<uint64_t>(v().lastGrowDuration.count());
    }

    Keeper& keeper_;
    std::size_t index_;
};

Service::Service(sdbus::IConnection& connection, Keeper& keeper, Doctor& doctor,
                 std::function<void(const std::string&)> status) :
    connection_(connection),
    keeper_(keeper), status_(std::move(status)), manager_(std::make_unique<Manager>(connection, keeper, doctor))
{
    buildVolumes();
}

Service::~Service()
{
    volumes_.clear();
    manager_.reset();
}

void Service::buildVolumes()
{
    volumes_.clear();
    for (std::size_t i = 0; i < keeper_.volumes().size(); ++i)
    {
        volumes_.push_back(std::make_unique<Volume>(connection_, keeper_, i));
    }
}

void Service::thresholdCrossed(const std::string& volume, double usedPercent, std::uint64_t available)
{
    manager_->emitThresholdCrossed(volume, usedPercent, available);
}

void Service::grown(const std::string& volume, std::uint64_t oldSize, std::uint64_t newSize, const std::string& reason)
{
    manager_->emitGrown(volume, oldSize, newSize, reason);
}

void Service::growFailed(const std::string& volume, const std::string& error)
{
    manager_->emitGrowFailed(volume, error);
}

void Service::diskAdded(const std::string& vg, const std::string& image, const std::string& device, std::uint64_t size)
{
    manager_->emitDiskAdded(vg, image, device, size);
    manager_->disksChanged();
}

void Service::remounted(const std::string& volume)
{
    manager_->emitRemounted(volume);
}

void Service::readOnly(const std::string& volume, const std::string& reason)
{
    manager_->emitReadOnly(volume, reason);
}

void Service::spaceExhausted(const std::string& volume, const std::string& reason)
{
    manager_->emitSpaceExhausted(volume, reason);
}

void Service::volumeChanged(std::size_t index)
{
    if (index < volumes_.size())
    {
        volumes_[index]->changed();
    }
}

void Service::statusChanged(const std::string& status)
{
    if (status_)
    {
        status_(status);
    }
}

void Service::volumesReplaced()
{
    buildVolumes();
}

void Service::progress(const std::string& job, double fraction)
{
    manager_->setProgress(job, fraction);
}

} // namespace lvkeeper::dbus

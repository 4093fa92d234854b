#pragma once

#include "lvkeeper/bus_names.hpp"
#include "lvkeeper/doctor.hpp"
#include "lvkeeper/keeper.hpp"

#include <sdbus-c++/sdbus-c++.h>
#include <systemd/sd-event.h>

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace lvkeeper::dbus
{

/// Drives an sdbus-c++ connection from sd-event (1.2 has no attachSdEventLoop): an io source and a
/// timer re-armed from getEventLoopPollData() in a prepare callback, processPendingRequest() from both.
class BusLoop
{
  public:
    BusLoop(sd_event* event, sdbus::IConnection& connection);
    ~BusLoop();

    BusLoop(const BusLoop&) = delete;
    BusLoop& operator=(const BusLoop&) = delete;

  private:
    static int onPrepare(sd_event_source* source, void* userdata);
    static int onIo(sd_event_source* source, int fd, std::uint32_t revents, void* userdata);
    static int onTime(sd_event_source* source, std::uint64_t usec, void* userdata);
    void process();

    sdbus::IConnection& connection_;
    sd_event_source* io_ = nullptr;
    sd_event_source* time_ = nullptr;
};

/// Translates any exception into a named D-Bus error: KeeperError keeps its kind, the rest is Failed.
sdbus::Error toDbusError(const std::exception_ptr& error);

/// The object path of a volume: /org/lvkeeper/Keeper1/volumes/ and the mount point without its leading
/// slash, sd_bus_path_encode()d ("/data" -> "data", "/" -> "_", "/srv/a-b" -> "srv_2fa_2db").
std::string volumeObjectPath(const std::string& mountPoint);

/// The D-Bus face of a Keeper: the Manager object, one Volume object per watched volume, signals.
class Service : public KeeperListener
{
  public:
    /// status receives every new STATUS= line.
    Service(sdbus::IConnection& connection, Keeper& keeper, Doctor& doctor,
            std::function<void(const std::string&)> status);
    ~Service() override;

    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    void thresholdCrossed(const std::string& volume, double usedPercent, std::uint64_t available) override;
    void grown(const std::string& volume, std::uint64_t oldSize, std::uint64_t newSize,
               const std::string& reason) override;
    void growFailed(const std::string& volume, const std::string& error) override;
    void diskAdded(const std::string& vg, const std::string& image, const std::string& device,
                   std::uint64_t size) override;
    void remounted(const std::string& volume) override;
    void readOnly(const std::string& volume, const std::string& reason) override;
    void spaceExhausted(const std::string& volume, const std::string& reason) override;
    void volumeChanged(std::size_t index) override;
    void statusChanged(const std::string& status) override;
    void volumesReplaced() override;
    /// A long job's progress: updates CurrentJob and Progress (a fraction, 0..1).
    void progress(const std::string& job, double fraction) override;

  private:
    class Manager;
    class Volume;
    void buildVolumes();

    sdbus::IConnection& connection_;
    Keeper& keeper_;
    std::function<void(const std::string&)> status_;
    std::unique_ptr<Manager> manager_;
    std::vector<std::unique_ptr<Volume>> volumes_;
};

} // namespace lvkeeper::dbus

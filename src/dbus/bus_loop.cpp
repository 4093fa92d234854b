#include "lvkeeper/dbus.hpp"

#include <spdlog/spdlog.h>

#include <poll.h>

#include <cstdint>
#include <system_error>

namespace lvkeeper::dbus
{

namespace
{

std::uint32_t toEpoll(short events)
{
    std::uint32_t mask = 0;
    if (events & POLLIN)
    {
        mask |= EPOLLIN;
    }
    if (events & POLLOUT)
    {
        mask |= EPOLLOUT;
    }
    if (events & POLLPRI)
    {
        mask |= EPOLLPRI;
    }
    return mask;
}

void check(int r, const char* what)
{
    if (r < 0)
    {
        throw std::system_error(-r, std::generic_category(), what);
    }
}

} // namespace

BusLoop::BusLoop(sd_event* event, sdbus::IConnection& connection) : connection_(connection)
{
    auto data = connection_.getEventLoopPollData();
    check(sd_event_add_io(event, &io_, data.fd, toEpoll(data.events), &BusLoop::onIo, this), "sd_event_add_io(bus)");
    check(sd_event_source_set_prepare(io_, &BusLoop::onPrepare), "sd_event_source_set_prepare(bus)");
    check(sd_event_add_time(event, &time_, CLOCK_MONOTONIC, UINT64_MAX, 0, &BusLoop::onTime, this),
          "sd_event_add_time(bus)");
    check(sd_event_source_set_enabled(time_, SD_EVENT_OFF), "sd_event_source_set_enabled(bus)");
    sd_event_source_set_description(io_, "dbus-io");
    sd_event_source_set_description(time_, "dbus-timeout");
}

BusLoop::~BusLoop()
{
    sd_event_source_disable_unref(io_);
    sd_event_source_disable_unref(time_);
}

int BusLoop::onPrepare(sd_event_source*, void* userdata)
{
    // Like sd_bus_attach_event: before each poll, ask the bus what it waits for.
    auto* self = static_cast<BusLoop*>(userdata);
    try
    {
        auto data = self->connection_.getEventLoopPollData();
        sd_event_source_set_io_events(self->io_, toEpoll(data.events));
        if (data.timeout_usec == UINT64_MAX)
        {
            sd_event_source_set_enabled(self->time_, SD_EVENT_OFF);
        }
        else
        {
            sd_event_source_set_time(self->time_, data.timeout_usec);
            sd_event_source_set_enabled(self->time_, SD_EVENT_ONESHOT);
        }
    }
    catch (const std::exception& e)
    {
        spdlog::error("event=bus-poll-data-failed error=\"{}\"", e.what());
    }
    return 0;
}

void BusLoop::process()
{
    try
    {
        while (connection_.processPendingRequest())
        {
        }
    }
    catch (const std::exception& e)
    {
        // A broken bus connection is fatal for a bus service: leave the loop, systemd restarts us.
        spdlog::critical("event=bus-failed error=\"{}\"", e.what());
        sd_event_exit(sd_event_source_get_event(io_), 1);
    }
}

int BusLoop::onIo(sd_event_source*, int, std::uint32_t, void* userdata)
{
    static_cast<BusLoop*>(userdata)->process();
    return 0;
}

int BusLoop::onTime(sd_event_source*, std::uint64_t, void* userdata)
{
    static_cast<BusLoop*>(userdata)->process();
    return 0;
}

} // namespace lvkeeper::dbus

// lvkeeperd: wiring only. Parse arguments, set up logging, build the sd-event loop, connect the
// seams to the keeper and the keeper to the bus, run.
#include "lvkeeper/config.hpp"
#include "lvkeeper/dbus.hpp"
#include "lvkeeper/doctor.hpp"
#include "lvkeeper/keeper.hpp"
#include "lvkeeper/log_control.hpp"
#include "lvkeeper/sys/event_scheduler.hpp"
#include "lvkeeper/sys/fanotify_watch.hpp"
#include "lvkeeper/sys/files.hpp"
#include "lvkeeper/sys/file_fault_gate.hpp"
#include "lvkeeper/sys/linux.hpp"
#include "lvkeeper/sys/logging.hpp"
#include "lvkeeper/sys/mount_monitor.hpp"
#include "lvkeeper/sys/process_runner.hpp"
#include "lvkeeper/sys/thread_executor.hpp"
#include "lvkeeper/sys/udev_monitor.hpp"
#include "lvkeeper/sys/usage_probes.hpp"

#include "dbus/log_text.hpp"
#include "lvkeeper_build_config.hpp"

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <set>
#include <string>

namespace
{

struct Args
{
    std::string config = LVKEEPER_CONFIG_PATH;
    std::string stateDir = LVKEEPER_STATE_DIR;
    std::string logLevel = "info";
    bool attachImages = false;
    bool checkConfig = false;
};

void usage(std::ostream& out)
{
    out << "usage: lvkeeperd [--config PATH] [--state-dir DIR] [--log-level LEVEL]\n"
           "       lvkeeperd --attach-images [--config PATH] [--state-dir DIR]\n"
           "                                re-attach recorded disk images in ImageDirectory (boot)\n"
           "       lvkeeperd --check-config [--config PATH]      parse the config and exit\n"
           "       lvkeeperd --version\n";
}

Args parseArgs(int argc, char** argv)
{
    Args args;
    for (int i = 1; i < argc; ++i)
    {
        std::string a = argv[i];
        auto value = [&](const char* name) -> std::string
        {
            if (i + 1 >= argc)
            {
                throw std::invalid_argument(std::string(name) + " needs a value");
            }
            return argv[++i];
        };
        if (a == "--config")
            args.config = value("--config");
        else if (a == "--state-dir")
            args.stateDir = value("--state-dir");
        else if (a == "--log-level")
            args.logLevel = value("--log-level");
        else if (a == "--attach-images")
            args.attachImages = true;
        else if (a == "--check-config")
            args.checkConfig = true;
        else if (a == "--version")
        {
            // Says whether the environment may swap lvm(8): tests must know which build they run.
            std::cout << "lvkeeperd " << LVKEEPER_VERSION
                      << (LVKEEPER_TEST_SEAMS ? " (test seams: LVKEEPER_LVM honoured)" : "") << "\n";
            std::exit(0);
        }
        else if (a == "--help" || a == "-h")
        {
            usage(std::cout);
            std::exit(0);
        }
        else
            throw std::invalid_argument("unknown argument " + a);
    }
    return args;
}

/// Boot mode: bring back every recorded image as a loop device so LVM can activate the VG. Only images
/// the daemon could have made are attached: regular root-owned files only root may write, directly
/// inside the configured ImageDirectory; the state file is not trusted to say anything else.
int attachImages(const Args& args)
{
    const std::string directory = lvkeeper::loadConfig(args.config).disks.imageDirectory;
    lvkeeper::sys::FileStateStore state(args.stateDir);
    lvkeeper::sys::LinuxDisks disks;
    std::set<std::string> attached;
    for (const auto& loop : disks.loopDevices())
    {
        attached.insert(loop.backingFile);
    }
    int failures = 0;
    // One bad line (a crash mid-edit, a typo) must not keep the good ones from coming back at boot.
    std::vector<std::string> rejected;
    const auto images = state.readableImages(rejected);
    for (const auto& why : rejected)
    {
        ++failures;
        spdlog::error("event=image-record-line-refused record={}/images reason=\"{}\"", args.stateDir, why);
    }
    std::set<std::string> seen;
    for (const auto& image : images)
    {
        if (!seen.insert(image).second)
        {
            continue;
        }
        if (attached.count(image))
        {
            spdlog::info("event=image-already-attached image={}", image);
            continue;
        }
        if (auto refusal = disks.imageRefusal(image, directory))
        {
            ++failures;
            spdlog::error("event=image-refused image={} image_directory={} reason={}", lvkeeper::dbus::logText(image),
                          lvkeeper::dbus::logText(directory), lvkeeper::dbus::logText(*refusal));
            continue;
        }
        try
        {
            auto device = disks.attachLoop(image);
            spdlog::info("event=image-attached image={} device={}", image, device);
        }
        catch (const std::exception& e)
        {
            ++failures;
            spdlog::error("event=image-attach-failed image={} error=\"{}\"", image, e.what());
        }
    }
    return failures == 0 ? 0 : 1;
}

void check(int r, const char* what)
{
    if (r < 0)
    {
        throw std::system_error(-r, std::generic_category(), what);
    }
}

/// Adapts the fanotify group to the keeper's ActivityWatcher seam.
class FanotifyActivity : public lvkeeper::ActivityWatcher
{
  public:
    explicit FanotifyActivity(lvkeeper::sys::FanotifyWatch& watch) : watch_(watch) {}
    void watch(const std::string& mountPoint) override
    {
        watch_.watch(mountPoint);
    }
    void unwatch(const std::string& mountPoint) override
    {
        watch_.unwatch(mountPoint);
    }

  private:
    lvkeeper::sys::FanotifyWatch& watch_;
};

int runDaemon(const Args& args)
{
    lvkeeper::Config config = lvkeeper::loadConfig(args.config);

    sigset_t mask;
    sigemptyset(&mask);
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP})
    {
        sigaddset(&mask, sig);
    }
    check(-sigprocmask(SIG_BLOCK, &mask, nullptr), "sigprocmask");

    sd_event* rawEvent = nullptr;
    check(sd_event_default(&rawEvent), "sd_event_default");
    std::unique_ptr<sd_event, decltype(&sd_event_unref)> event(rawEvent, &sd_event_unref);
    // Pings the service manager at half of WatchdogSec=, and only while the loop turns.
    check(sd_event_set_watchdog(event.get(), true), "sd_event_set_watchdog");

    lvkeeper::sys::ProcessRunner runner(event.get());
    lvkeeper::sys::EventScheduler scheduler(event.get());
    lvkeeper::sys::LinuxFilesystems filesystems;
    lvkeeper::sys::LinuxDisks disks;
    lvkeeper::sys::FileStateStore state(args.stateDir);
    // fsync, fallocate, loop ioctls, probes and mount(2) run here, off the loop: slow storage never starves
    // the watchdog.
    lvkeeper::sys::ThreadExecutor executor(event.get());
    // The looks at writes fanotify cannot see: a thread of their own, so that idle the loop sleeps.
    lvkeeper::sys::ThreadUsageProbes probes(event.get(), filesystems);
#if LVKEEPER_TEST_SEAMS
    // The fault suite holds operations at named steps through files in /run/lvkeeper-faults.
    lvkeeper::sys::FileFaultGate gate("/run/lvkeeper-faults", scheduler);
#else
    lvkeeper::OpenGate gate;
#endif

    lvkeeper::Keeper* keeperPtr = nullptr;
    lvkeeper::sys::FanotifyWatch fanotify(
        event.get(), std::chrono::milliseconds(20),
        [&](const std::string& mp)
        {
            keeperPtr->onActivity(mp);
        },
        [&](const std::string& mp)
        {
            keeperPtr->onFilesystemError(mp);
        });
    FanotifyActivity activity(fanotify);

    lvkeeper::KeeperOptions options;
    options.version = LVKEEPER_VERSION;
    lvkeeper::sys::TextFileWriter files;
    if (const char* lvm = std::getenv("LVKEEPER_LVM"); lvm && *lvm)
    {
#if LVKEEPER_TEST_SEAMS
        // The one test seam: a recording fake in place of lvm(8), in a -Dtest_seams=true build only.
        options.lvmCommand = lvm;
        spdlog::warn("event=test-seam LVKEEPER_LVM={}", lvkeeper::dbus::logText(lvm));
#else
        // Whoever sets the service's environment must not get to choose what runs as root.
        spdlog::warn("event=test-seam-ignored LVKEEPER_LVM={} reason=\"a production build (-Dtest_seams=false) always "
                     "runs lvm(8)\"",
                     lvkeeper::dbus::logText(lvm));
#endif
    }
#if LVKEEPER_TEST_SEAMS
    if (const char* timeout = std::getenv("LVKEEPER_COMMAND_TIMEOUT_MS"); timeout && *timeout)
    {
        // The fault suite's lvm that holds the VG lock past the timeout.
        options.commandTimeout = std::chrono::milliseconds(std::strtoull(timeout, nullptr, 10));
        spdlog::warn("event=test-seam LVKEEPER_COMMAND_TIMEOUT_MS={}", timeout);
    }
#endif
    lvkeeper::Keeper keeper(
        config, lvkeeper::KeeperSeams{runner, scheduler, filesystems, disks, state, activity, executor, gate, files, probes}, options);
    keeperPtr = &keeper;

    lvkeeper::sys::MountMonitor mounts(event.get(),
                                       [&]
                                       {
                                           keeper.onMountsChanged();
                                       });
    // The kernel's own uevents, not udevd's: the unit gives lvkeeperd a network namespace of its own
    // (PrivateNetwork=), which the kernel's reach and udevd's netlink multicast does not. Only the
    // loop device and its sysfs backing_file are read, both there before udevd runs its rules.
    lvkeeper::sys::UdevMonitor udev(
        event.get(),
        [&](const std::string& action, const lvkeeper::LoopDevice& dev)
        {
            keeper.onLoopDevice(action, dev);
        },
        "kernel");

    auto connection = sdbus::createSystemBusConnection();
    lvkeeper::dbus::BusLoop busLoop(event.get(), *connection);
    lvkeeper::Doctor doctor(keeper);
    lvkeeper::dbus::Service service(*connection, keeper, doctor,
                                    [](const std::string& status)
                                    {
                                        sd_notifyf(0, "STATUS=%s", status.c_str());
                                    });
    keeper.setListener(&service);
    lvkeeper::dbus::LogControl logControl(*connection);

    // Backstop for writes fanotify cannot see (mmap, other mount namespaces); 0 disables.
    std::unique_ptr<lvkeeper::Timer> backstop;
    std::function<void()> armBackstop = [&]
    {
        auto interval = keeper.config().daemon.backstopInterval;
        if (interval.count() > 0)
        {
            backstop = scheduler.after(interval,
                                       [&]
                                       {
                                           keeper.onBackstop();
                                           armBackstop();
                                       });
        }
        else
        {
            backstop.reset();
        }
    };

    struct Handlers
    {
        std::function<void()> reload;
        std::function<void(int)> stop;
    };
    auto onSignal = [](sd_event_source* /*source*/, const signalfd_siginfo* info, void* userdata) -> int
    {
        auto* handlers = static_cast<Handlers*>(userdata);
        if (info->ssi_signo == SIGHUP)
        {
            handlers->reload();
            return 0;
        }
        handlers->stop(static_cast<int>(info->ssi_signo));
        return 0;
    };
    bool stopping = false;
    auto stop = [&](int signal)
    {
        if (stopping)
        {
            // A second Ctrl-C means now; a second SIGTERM changes nothing: the running command still finishes.
            if (signal == SIGINT)
            {
                spdlog::warn("event=stop-now signal={}", strsignal(signal));
                sd_event_exit(event.get(), 0);
            }
            return;
        }
        stopping = true;
        spdlog::info("event=stopping signal={}", strsignal(signal));
        sd_notify(0, "STOPPING=1");
        // The running operation finishes and its caller gets the answer; new calls get Busy.
        keeper.stop(
            [&]
            {
                sd_event_exit(event.get(), 0);
            });
    };
    std::function<void()> reload = [&]
    {
        sd_notify(0, "RELOADING=1");
        try
        {
            keeper.reload(lvkeeper::loadConfig(args.config));
            armBackstop();
        }
        catch (const std::exception& e)
        {
            spdlog::error("event=reload-failed error=\"{}\" action=\"keeping the old configuration\"", e.what());
        }
        sd_notify(0, "READY=1");
    };
    Handlers handlers{reload, stop};
    for (int sig : {SIGTERM, SIGINT, SIGHUP})
    {
        check(sd_event_add_signal(event.get(), nullptr, sig, onSignal, &handlers), "sd_event_add_signal");
    }

    keeper.start(
        [&]
        {
            armBackstop();
            // The name comes last: a caller reaches a daemon that has settled what a crash left half-done.
            connection->requestName(lvkeeper::dbus::busName);
            spdlog::info("event=ready volumes={} status=\"{}\"", keeper.volumes().size(), keeper.statusLine());
            sd_notifyf(0, "READY=1\nSTATUS=%s", keeper.statusLine().c_str());
        });

    int r = sd_event_loop(event.get());
    keeper.setListener(nullptr);
    // Work still running off the loop refers to the keeper: it ends before the keeper does.
    executor.shutdown();
    return r < 0 ? 1 : r;
}

} // namespace

int main(int argc, char** argv)
{
    try
    {
        Args args = parseArgs(argc, argv);
        lvkeeper::sys::setupLogging(args.logLevel);
        if (args.attachImages)
        {
            return attachImages(args);
        }
        if (args.checkConfig)
        {
            auto config = lvkeeper::loadConfig(args.config);
            std::cout << args.config << ": OK, " << config.volumes.size() << " volume(s)\n";
            return 0;
        }
        return runDaemon(args);
    }
    catch (const lvkeeper::ConfigError& e)
    {
        std::cerr << "lvkeeperd: " << e.what() << "\n";
        spdlog::critical("event=bad-config error=\"{}\"", e.what());
        return 78; // EX_CONFIG: systemd shows "status=78/CONFIG"
    }
    catch (const std::invalid_argument& e)
    {
        std::cerr << "lvkeeperd: " << e.what() << "\n";
        usage(std::cerr);
        return 2;
    }
    catch (const std::exception& e)
    {
        std::cerr << "lvkeeperd: " << e.what() << "\n";
        spdlog::critical("event=fatal error=\"{}\"", e.what());
        return 1;
    }
}

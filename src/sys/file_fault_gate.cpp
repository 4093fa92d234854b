#include "lvkeeper/sys/file_fault_gate.hpp"

#include "lvkeeper/sys/unique_fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace lvkeeper::sys
{

struct FileFaultGate::Held
{
    std::string pause;
    std::string paused;
    std::function<void()> go;
    std::unique_ptr<Timer> timer;
};

FileFaultGate::FileFaultGate(std::string dir, Scheduler& scheduler) : dir_(std::move(dir)), scheduler_(scheduler) {}

FileFaultGate::~FileFaultGate() = default;

void FileFaultGate::pass(const std::string& kind, const std::string& step, std::function<void()> go)
{
    auto held = std::make_shared<Held>();
    held->pause = dir_ + "/pause-" + kind + "-" + step;
    held->paused = dir_ + "/paused-" + kind + "-" + step;
    if (::access(held->pause.c_str(), F_OK) != 0)
    {
        go();
        return;
    }
    held->go = std::move(go);
    UniqueFd marker(::open(held->paused.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    // The marker is what the fault suite waits for: make it reach the disk before it cuts the power.
    if (marker)
    {
        ::fsync(marker.get());
    }
    spdlog::warn("event=fault-gate-held kind={} step={}", kind, step);
    held_.push_back(held);
    poll(held);
}

void FileFaultGate::poll(const std::shared_ptr<Held>& held)
{
    held->timer = scheduler_.after(std::chrono::milliseconds(100),
                                   [this, held]
                                   {
                                       if (::access(held->pause.c_str(), F_OK) == 0)
                                       {
                                           poll(held);
                                           return;
                                       }
                                       ::unlink(held->paused.c_str());
                                       spdlog::warn("event=fault-gate-released step={}", held->pause);
                                       // A reference of its own: this closure lives in held's timer.
                                       auto keep = held; // NOLINT(performance-unnecessary-copy-initialization)
                                       held_.erase(std::remove(held_.begin(), held_.end(), held), held_.end());
                                       auto go = std::move(keep->go);
                                       go();
                                   });
}

} // namespace lvkeeper::sys

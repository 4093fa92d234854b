#pragma once

#include "lvkeeper/fault_gate.hpp"
#include "lvkeeper/scheduler.hpp"

#include <memory>
#include <string>
#include <vector>

namespace lvkeeper::sys
{

/// The fault suite's gate (test-seam builds only): before step S of an operation of kind K, when
/// <dir>/pause-K-S exists, creates <dir>/paused-K-S and holds the operation until the pause file is removed,
/// looking every 100 ms from the loop (which keeps turning). A power cut, kill -9 or restart then lands there.
class FileFaultGate : public FaultGate
{
  public:
    FileFaultGate(std::string dir, Scheduler& scheduler);
    ~FileFaultGate() override;

    FileFaultGate(const FileFaultGate&) = delete;
    FileFaultGate& operator=(const FileFaultGate&) = delete;

    void pass(const std::string& kind, const std::string& step, std::function<void()> go) override;

  private:
    struct Held;
    void poll(const std::shared_ptr<Held>& held);

    std::string dir_;
    Scheduler& scheduler_;
    std::vector<std::shared_ptr<Held>> held_;
};

} // namespace lvkeeper::sys

#pragma once

#include <functional>
#include <string>

namespace lvkeeper
{

/// Where an operation passes before each of its named steps. In production it opens at once; the lab's fault
/// suite (a build with test seams) uses one that can hold an operation at a named step, so that a power cut,
/// kill -9 or restart lands exactly there.
class FaultGate
{
  public:
    virtual ~FaultGate() = default;

    /// Calls go() when step of an operation of kind ("grow", "lvextend") may run.
    virtual void pass(const std::string& kind, const std::string& step, std::function<void()> go) = 0;
};

/// The production gate: always open.
class OpenGate : public FaultGate
{
  public:
    void pass(const std::string& /*kind*/, const std::string& /*step*/, std::function<void()> go) override
    {
        go();
    }
};

} // namespace lvkeeper

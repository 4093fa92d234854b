#include "lvkeeper/job_queue.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace lvkeeper
{
namespace
{

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Jobs that log when they start and keep their Finish for the test to call.
struct Recorder
{
    std::vector<std::string> started;
    std::map<std::string, JobQueue::Finish> finishes;

    JobQueue::Job job(const std::string& name)
    {
        return [this, name](JobQueue::Finish finish) {
            started.push_back(name);
            finishes[name] = std::move(finish);
        };
    }

    void finish(const std::string& name)
    {
        auto f = finishes.at(name); // a copy: finishing may start a job that adds to the map
        f();
    }
};

TEST(JobQueue, IdleKeyStartsAJobAtOnce)
{
    JobQueue q;
    Recorder r;
    q.enqueue("vg0", "grow /data", r.job("a"));
    EXPECT_THAT(r.started, ElementsAre("a"));
    EXPECT_TRUE(q.busy("vg0"));
    EXPECT_EQ(q.running("vg0"), "grow /data");
    EXPECT_EQ(q.waiting("vg0"), 0U);
}

TEST(JobQueue, SameKeyRunsOneAtATimeInFifoOrder)
{
    JobQueue q;
    Recorder r;
    q.enqueue("vg0", "a", r.job("a"));
    q.enqueue("vg0", "b", r.job("b"));
    q.enqueue("vg0", "c", r.job("c"));
    EXPECT_THAT(r.started, ElementsAre("a"));
    EXPECT_EQ(q.waiting("vg0"), 2U);

    r.finish("a");
    EXPECT_THAT(r.started, ElementsAre("a", "b"));
    EXPECT_EQ(q.running("vg0"), "b");
    EXPECT_EQ(q.waiting("vg0"), 1U);

    r.finish("b");
    EXPECT_THAT(r.started, ElementsAre("a", "b", "c"));
    r.finish("c");
    EXPECT_FALSE(q.busy("vg0"));
    EXPECT_EQ(q.running("vg0"), "");
    EXPECT_EQ(q.waiting("vg0"), 0U);
}

TEST(JobQueue, EnqueueFirstGoesAheadOfTheWaitingButNotTheRunning)
{
    JobQueue q;
    Recorder r;
    q.enqueue("vg0", "add disk", r.job("add"));
    q.enqueue("vg0", "repair", r.job("repair"));
    q.enqueueFirst("vg0", "auto-grow", r.job("grow"));
    EXPECT_THAT(r.started, ElementsAre("add")); // the running job is never preempted
    r.finish("add");
    EXPECT_THAT(r.started, ElementsAre("add", "grow"));
    r.finish("grow");
    EXPECT_THAT(r.started, ElementsAre("add", "grow", "repair"));
    r.finish("repair");

    // On an idle key it simply runs.
    q.enqueueFirst("vg1", "auto-grow", r.job("g1"));
    EXPECT_EQ(q.running("vg1"), "auto-grow");
}

TEST(JobQueue, DifferentKeysRunConcurrently)
{
    JobQueue q;
    Recorder r;
    q.enqueue("vg0", "a", r.job("a"));
    q.enqueue("vg1", "b", r.job("b"));
    EXPECT_THAT(r.started, ElementsAre("a", "b"));
    EXPECT_TRUE(q.busy("vg0"));
    EXPECT_TRUE(q.busy("vg1"));
    EXPECT_EQ(q.running("vg1"), "b");

    // Finishing one key does not touch the other.
    q.enqueue("vg1", "c", r.job("c"));
    r.finish("a");
    EXPECT_FALSE(q.busy("vg0"));
    EXPECT_EQ(q.running("vg1"), "b");
    EXPECT_EQ(q.waiting("vg1"), 1U);
}

TEST(JobQueue, SynchronousFinishStartsTheNextJob)
{
    JobQueue q;
    std::vector<std::string> order;
    q.enqueue("vg0", "held", [&](JobQueue::Finish finish) {
        order.push_back("held");
        // Two synchronous jobs queue behind this one; finishing it must run them both, in order.
        q.enqueue("vg0", "sync1", [&](JobQueue::Finish f) {
            order.push_back("sync1");
            f();
        });
        q.enqueue("vg0", "sync2", [&](JobQueue::Finish f) {
            order.push_back("sync2");
            f();
        });
        finish();
    });
    EXPECT_THAT(order, ElementsAre("held", "sync1", "sync2"));
    EXPECT_FALSE(q.busy("vg0"));
    EXPECT_EQ(q.waiting("vg0"), 0U);
}

TEST(JobQueue, JobEnqueuedFromAJobWaitsForIt)
{
    JobQueue q;
    Recorder r;
    bool innerStarted = false;
    q.enqueue("vg0", "outer", [&](JobQueue::Finish finish) {
        r.finishes["outer"] = std::move(finish);
        q.enqueue("vg0", "inner", [&](JobQueue::Finish f) {
            innerStarted = true;
            f();
        });
        EXPECT_FALSE(innerStarted);
    });
    EXPECT_FALSE(innerStarted);
    EXPECT_EQ(q.waiting("vg0"), 1U);
    r.finish("outer");
    EXPECT_TRUE(innerStarted);
}

TEST(JobQueue, DoubleFinishIsHarmless)
{
    JobQueue q;
    Recorder r;
    q.enqueue("vg0", "a", r.job("a"));
    q.enqueue("vg0", "b", r.job("b"));
    q.enqueue("vg0", "c", r.job("c"));
    auto finishA = r.finishes.at("a");
    finishA();
    finishA(); // must not finish b, which is now running
    EXPECT_THAT(r.started, ElementsAre("a", "b"));
    EXPECT_TRUE(q.busy("vg0"));
    EXPECT_EQ(q.running("vg0"), "b");
    EXPECT_EQ(q.waiting("vg0"), 1U);
}

TEST(JobQueue, LateFinishOfAnOldJobDoesNotFreeANewOne)
{
    JobQueue q;
    Recorder r;
    q.enqueue("vg0", "a", r.job("a"));
    r.finish("a");
    q.enqueue("vg0", "b", r.job("b"));
    q.enqueue("vg0", "c", r.job("c"));
    r.finish("a"); // a stray second call from a's completion path
    EXPECT_THAT(r.started, ElementsAre("a", "b"));
    EXPECT_EQ(q.running("vg0"), "b");
}

TEST(JobQueue, UnknownKeyIsIdle)
{
    const JobQueue q;
    EXPECT_FALSE(q.busy("vg9"));
    EXPECT_EQ(q.waiting("vg9"), 0U);
    EXPECT_THAT(q.running("vg9"), IsEmpty());
}

} // namespace
} // namespace lvkeeper

TEST(JobQueueThrow, AJobThatThrowsDoesNotBlockItsLane)
{
    lvkeeper::JobQueue queue;
    bool secondRan = false;
    queue.enqueue("vg0", "throws", [](lvkeeper::JobQueue::Finish) { throw std::runtime_error("boom"); });
    queue.enqueue("vg0", "second", [&](lvkeeper::JobQueue::Finish finish) {
        secondRan = true;
        finish();
    });
    EXPECT_TRUE(secondRan);
    EXPECT_FALSE(queue.busy("vg0"));
}

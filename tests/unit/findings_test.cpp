// findings(): Diagnose's verdict as a pure function of one snapshot.

#include "lvkeeper/findings.hpp"

#include "lvkeeper/size.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace lvkeeper
{
namespace
{

using ::testing::HasSubstr;
using ::testing::Not;

bool has(const std::vector<Finding>& found, const std::string& id)
{
    return std::any_of(found.begin(), found.end(),
                       [&](const Finding& f)
                       {
                           return f.id == id;
                       });
}

Snapshot heldFiles()
{
    Snapshot s;
    Snapshot::Place root;
    root.name = "/media";
    root.mount.mountPoint = "/";
    root.held = {HeldDeletedFile{381, 0, "python3", "/.tempfile", 3 * GiB},
                 HeldDeletedFile{4242, 1000, "cat", "/home/alice/big", 2 * GiB},
                 HeldDeletedFile{99, 1001, "vim", "/home/bob/notes.swp", 20 * MiB}};
    s.places.push_back(root);
    return s;
}

TEST(Findings, RootIsToldWhichProcessHoldsEachDeletedFile)
{
    auto found = findings(heldFiles(), 0);
    EXPECT_TRUE(has(found, "deleted-open:381:/.tempfile"));
    EXPECT_TRUE(has(found, "deleted-open:4242:/home/alice/big"));
    EXPECT_TRUE(has(found, "deleted-open:99:/home/bob/notes.swp"));
}

TEST(Findings, AnotherUserLearnsHowMuchSpaceNotWhoOrWhat)
{
    auto found = findings(heldFiles(), 1000);
    // Alice's own process is hers to see.
    EXPECT_TRUE(has(found, "deleted-open:4242:/home/alice/big"));
    ASSERT_TRUE(has(found, "deleted-open:/"));
    for (const auto& f : found)
    {
        std::string all = f.id + f.subject + f.problem + f.fix;
        EXPECT_THAT(all, Not(HasSubstr("381")));
        EXPECT_THAT(all, Not(HasSubstr("python3")));
        EXPECT_THAT(all, Not(HasSubstr("tempfile")));
        EXPECT_THAT(all, Not(HasSubstr("bob")));
        EXPECT_THAT(all, Not(HasSubstr("vim")));
    }
    auto summary = std::find_if(found.begin(), found.end(),
                                [](const Finding& f)
                                {
                                    return f.id == "deleted-open:/";
                                });
    EXPECT_THAT(summary->problem, HasSubstr("2 deleted file(s)"));
    EXPECT_THAT(summary->problem, HasSubstr(formatSize(3 * GiB + 20 * MiB)));
}

TEST(Findings, WhatTheJournalLeftOpenIsNamedWithItsStepAndRepairTriesAgain)
{
    Snapshot s;
    Intent intent;
    intent.id = 12;
    intent.kind = "add-disk";
    intent.step = "pvcreate";
    intent.fields = {{"image", "/media/disk4.img"}, {"vg", "vg0"}};
    s.unsettled.push_back(intent);
    s.journalProblem = std::make_pair(std::string("journal-corrupt:/var/lib/lvkeeper/journal"),
                                      std::string("/var/lib/lvkeeper/journal is corrupt: not a JSON object"));
    s.stateDirectory = "/var/lib/lvkeeper";
    auto found = findings(s, 0);
    ASSERT_TRUE(has(found, "operation-interrupted:12"));
    auto f = *std::find_if(found.begin(), found.end(),
                           [](const Finding& x)
                           {
                               return x.id == "operation-interrupted:12";
                           });
    EXPECT_THAT(f.problem, HasSubstr("add-disk /media/disk4.img"));
    EXPECT_THAT(f.problem, HasSubstr("pvcreate"));
    EXPECT_TRUE(f.safe);
    EXPECT_TRUE(has(found, "journal-corrupt:/var/lib/lvkeeper/journal"));
}

TEST(Findings, AMoveThatStandsStillIsInterruptedAndOneThatRunsIsNot)
{
    Snapshot s;
    s.watchedVgs = {"vg0"};
    s.moves = {lvm::Move{"vg0", "pvmove0", "/dev/loop1", 30.8}, lvm::Move{"vg0", "pvmove1", "/dev/loop2", 12.0}};
    s.stalledMoves = {"/dev/loop1"};
    auto found = findings(s, 0);
    EXPECT_TRUE(has(found, "pvmove-interrupted:/dev/loop1"));
    EXPECT_TRUE(has(found, "pvmove-running:/dev/loop2"));
    EXPECT_FALSE(has(found, "pvmove-interrupted:/dev/loop2"));
}

TEST(Findings, CriticalComesFirst)
{
    Snapshot s;
    Snapshot::Volume v;
    v.state.config.mountPoint = "/data";
    s.volumes.push_back(v); // not mounted: critical
    s.places = heldFiles().places;
    auto found = findings(s, 0);
    ASSERT_FALSE(found.empty());
    EXPECT_EQ(found.front().severity, Severity::Critical);
    EXPECT_EQ(found.front().id, "not-mounted:/data");
    EXPECT_EQ(severityName(found.back().severity), "warning");
}

} // namespace
} // namespace lvkeeper

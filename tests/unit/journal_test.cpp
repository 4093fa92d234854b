// The intent journal's format and the Journal's bookkeeping, against a fake state store.

#include "fakes.hpp"

#include "lvkeeper/journal.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace lvkeeper
{
namespace
{

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Intent addDisk(std::uint64_t id, const std::string& step)
{
    Intent intent;
    intent.id = id;
    intent.kind = "add-disk";
    intent.step = step;
    intent.since = "2026-12-01T10:00:00Z";
    intent.fields = {{"vg", "vg0"}, {"image", "/media/disk3.img"}, {"note", "a \"quoted\"\nline"}};
    return intent;
}

TEST(JournalFormat, RoundTripsEveryField)
{
    auto text = serializeJournal({addDisk(3, "pvcreate"), addDisk(4, "allocate")});
    auto back = parseJournal(text);
    ASSERT_EQ(back.size(), 2U);
    EXPECT_EQ(back[0].id, 3U);
    EXPECT_EQ(back[0].kind, "add-disk");
    EXPECT_EQ(back[0].step, "pvcreate");
    EXPECT_EQ(back[0].since, "2026-12-01T10:00:00Z");
    EXPECT_EQ(back[0].field("note"), "a \"quoted\"\nline");
    EXPECT_EQ(back[1].step, "allocate");
    EXPECT_EQ(back[0].field("missing"), "");
}

TEST(JournalFormat, CorruptTextIsAnErrorThatSaysWhat)
{
    for (const char* text : {"", "{", "[]", "{\"version\": 2, \"intents\": []}", "{\"version\": 1}",
                             "{\"version\": 1, \"intents\": [{\"kind\": \"grow\"}]}",
                             "{\"version\": 1, \"intents\": [{\"id\": 1, \"kind\": \"grow\", \"step\": \"x\", "
                             "\"fields\": {\"a\": 1}}]}"})
    {
        EXPECT_THROW(parseJournal(text), std::invalid_argument) << text;
    }
}

class JournalTest : public ::testing::Test
{
  protected:
    test::FakeStateStore store;
    test::FakeExecutor executor;
    Journal journal{store, executor};

    std::vector<Intent> load()
    {
        std::vector<Intent> open;
        bool loaded = false;
        journal.load(
            [&](std::vector<Intent> intents)
            {
                open = std::move(intents);
                loaded = true;
            });
        EXPECT_TRUE(loaded);
        return open;
    }
};

TEST_F(JournalTest, ARecordIsDurableBeforeItsCallbackAndCloseRemovesIt)
{
    EXPECT_THAT(load(), IsEmpty());
    Intent intent = addDisk(0, "allocate");
    bool durable = false;
    journal.record(intent,
                   [&](Journal::Error error)
                   {
                       EXPECT_FALSE(error);
                       ASSERT_TRUE(store.journal);
                       durable = parseJournal(*store.journal).size() == 1;
                   });
    EXPECT_TRUE(durable);
    EXPECT_GT(intent.id, 0U);
    bool closed = false;
    journal.close(intent.id,
                  [&](Journal::Error)
                  {
                      closed = parseJournal(*store.journal).empty();
                  });
    EXPECT_TRUE(closed);
}

TEST_F(JournalTest, WritesInFlightCoalesceAndEveryWaiterIsAnswered)
{
    load();
    executor.hold = true;
    Intent a = addDisk(0, "allocate");
    Intent b = addDisk(0, "allocate");
    Intent c = addDisk(0, "allocate");
    int answered = 0;
    journal.record(a,
                   [&](Journal::Error)
                   {
                       ++answered;
                   });
    journal.record(b,
                   [&](Journal::Error)
                   {
                       ++answered;
                   });
    journal.record(c,
                   [&](Journal::Error)
                   {
                       ++answered;
                   });
    // One write runs; b and c wait for the next one, which carries both.
    ASSERT_EQ(executor.held.size(), 1U);
    while (executor.releaseOne())
    {
    }
    EXPECT_EQ(answered, 3);
    EXPECT_EQ(store.journalHistory.size(), 2U);
    EXPECT_EQ(parseJournal(store.journalHistory.back()).size(), 3U);
}

TEST_F(JournalTest, AnOpenIntentFromTheLastRunIsLoadedAndUnsettledUntilAnOperationOwnsIt)
{
    store.journal = serializeJournal({addDisk(9, "pvcreate")});
    auto open = load();
    ASSERT_EQ(open.size(), 1U);
    EXPECT_EQ(journal.unsettled().size(), 1U);
    auto owner = std::make_shared<int>(0);
    journal.own(9, owner);
    EXPECT_THAT(journal.unsettled(), IsEmpty());
    EXPECT_EQ(journal.owned().size(), 1U);
    owner.reset(); // the operation ended without settling it
    EXPECT_EQ(journal.unsettled().size(), 1U);
    // New ids never reuse one of the last run's.
    Intent next = addDisk(0, "allocate");
    journal.record(next, [](Journal::Error) {});
    EXPECT_GT(next.id, 9U);
}

TEST_F(JournalTest, AnUnreadableJournalIsReportedByNameAndSetAside)
{
    store.journalUnreadable = true;
    EXPECT_THAT(load(), IsEmpty());
    auto problem = journal.problem();
    ASSERT_TRUE(problem);
    EXPECT_EQ(problem->id, "journal-unreadable:/var/lib/lvkeeper/journal");
    EXPECT_THAT(problem->text, HasSubstr("cannot be read"));
}

TEST_F(JournalTest, AFullFilesystemFailsTheRecordAndIsReportedUntilAWriteWorksAgain)
{
    load();
    store.journalUnwritable = true;
    Intent intent = addDisk(0, "allocate");
    Journal::Error failure;
    journal.record(intent,
                   [&](Journal::Error error)
                   {
                       failure = error;
                   });
    ASSERT_TRUE(failure);
    ASSERT_TRUE(journal.problem());
    EXPECT_EQ(journal.problem()->id, "journal-unwritable:/var/lib/lvkeeper/journal");
    store.journalUnwritable = false;
    journal.close(intent.id);
    EXPECT_FALSE(journal.problem());
}

} // namespace
} // namespace lvkeeper

// The journal's view of a log line, and the catalog that explains the events.

#include "lvkeeper/sys/logging.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

using lvkeeper::sys::journalFields;
using lvkeeper::sys::messageIdOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Pair;

TEST(JournalFields, EveryKeyValueIsAFieldWithTheEventAsLvkeeperEvent)
{
    auto fields = journalFields("event=grown volume=/data from=2.8G to=4.6G reason=threshold from_bytes=3007315968 "
                                "to_bytes=4945084416");
    EXPECT_THAT(fields, ElementsAre(Pair("LVKEEPER_EVENT", "grown"), Pair("VOLUME", "/data"), Pair("FROM", "2.8G"),
                                    Pair("TO", "4.6G"), Pair("REASON", "threshold"), Pair("FROM_BYTES", "3007315968"),
                                    Pair("TO_BYTES", "4945084416")));
}

TEST(JournalFields, QuotedValuesAreUnescapedAndCannotForgeFields)
{
    auto fields = journalFields(R"(event=grow-failed volume=/data error="lvextend: \"x\" y=1 \\ z")");
    EXPECT_THAT(fields, ElementsAre(Pair("LVKEEPER_EVENT", "grow-failed"), Pair("VOLUME", "/data"),
                                    Pair("ERROR", R"(lvextend: "x" y=1 \ z)")));
}

TEST(JournalFields, KeysThatWouldShadowTheJournalsOwnFieldsArePrefixed)
{
    auto fields = journalFields("event=x message=hi priority=0 code_file=a.c Words and x=1");
    EXPECT_THAT(fields, Contains(Pair("LVKEEPER_MESSAGE", "hi")));
    EXPECT_THAT(fields, Contains(Pair("LVKEEPER_PRIORITY", "0")));
    EXPECT_THAT(fields, Contains(Pair("LVKEEPER_CODE_FILE", "a.c")));
    EXPECT_THAT(fields, Contains(Pair("X", "1")));
}

TEST(JournalCatalog, EveryMessageIdHasAnEntryAndEveryEntryAnEvent)
{
    std::ifstream in(LVKEEPER_SOURCE_ROOT "/catalog/lvkeeper.catalog");
    ASSERT_TRUE(in) << "catalog/lvkeeper.catalog";
    std::stringstream text;
    text << in.rdbuf();
    std::string catalog = text.str();
    std::set<std::string> entries;
    std::regex entry("^-- ([0-9a-f]{32})$", std::regex::multiline);
    for (auto it = std::sregex_iterator(catalog.begin(), catalog.end(), entry); it != std::sregex_iterator(); ++it)
    {
        entries.insert((*it)[1]);
    }
    std::set<std::string> ids;
    for (const char* event : {"grown", "grow-failed", "space-exhausted", "disk-added", "read-only", "remounted",
                              "threshold-crossed", "fs-error", "replay", "replay-failed", "journal-set-aside", "healed",
                              "command-timeout", "stopping", "ready", "grow-recovered"})
    {
        auto id = std::string(messageIdOf(event));
        ASSERT_EQ(id.size(), 32U) << event;
        ids.insert(id);
    }
    EXPECT_EQ(entries, ids);
    EXPECT_TRUE(messageIdOf("no-such-event").empty());
}

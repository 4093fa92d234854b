#include "lvkeeper/errors.hpp"
#include "lvkeeper/size.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

namespace lvkeeper
{
namespace
{

using ::testing::HasSubstr;

// The message of the KeeperError that fn throws; fails the test if it throws nothing or something else.
template <typename Fn>
std::string invalidArgumentMessage(Fn fn)
{
    try
    {
        fn();
    }
    catch (const KeeperError& e)
    {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
        return e.what();
    }
    ADD_FAILURE() << "no KeeperError thrown";
    return {};
}

TEST(ErrorKindName, NamesEveryKind)
{
    EXPECT_EQ(errorKindName(ErrorKind::InvalidArgument), "InvalidArgument");
    EXPECT_EQ(errorKindName(ErrorKind::NotFound), "NotFound");
    EXPECT_EQ(errorKindName(ErrorKind::NoSpace), "NoSpace");
    EXPECT_EQ(errorKindName(ErrorKind::NoHostSpace), "NoHostSpace");
    EXPECT_EQ(errorKindName(ErrorKind::Busy), "Busy");
    EXPECT_EQ(errorKindName(ErrorKind::FilesystemErrors), "FilesystemErrors");
    EXPECT_EQ(errorKindName(ErrorKind::CommandFailed), "CommandFailed");
    EXPECT_EQ(errorKindName(ErrorKind::AccessDenied), "AccessDenied");
    EXPECT_EQ(errorKindName(ErrorKind::Failed), "Failed");
}

TEST(ParseSize, PlainNumbersAreBytes)
{
    EXPECT_EQ(parseSize("0"), 0U);
    EXPECT_EQ(parseSize("123"), 123U);
    EXPECT_EQ(parseSize("123b"), 123U);
    EXPECT_EQ(parseSize("123B"), 123U);
    EXPECT_EQ(parseSize("007"), 7U);
}

TEST(ParseSize, BinaryUnitsInAnySpelling)
{
    EXPECT_EQ(parseSize("4K"), 4 * KiB);
    EXPECT_EQ(parseSize("4k"), 4 * KiB);
    EXPECT_EQ(parseSize("500M"), 500 * MiB);
    EXPECT_EQ(parseSize("500m"), 500 * MiB);
    EXPECT_EQ(parseSize("500MiB"), 500 * MiB);
    EXPECT_EQ(parseSize("500Mib"), 500 * MiB);
    EXPECT_EQ(parseSize("500MB"), 500 * MiB);
    EXPECT_EQ(parseSize("4G"), 4 * GiB);
    EXPECT_EQ(parseSize("4g"), 4 * GiB);
    EXPECT_EQ(parseSize("4096M"), 4 * GiB);
    EXPECT_EQ(parseSize("2T"), 2 * TiB);
    EXPECT_EQ(parseSize("2TiB"), 2 * TiB);
    EXPECT_EQ(parseSize("0G"), 0U);
}

TEST(ParseSize, FractionsRoundToTheNearestByte)
{
    EXPECT_EQ(parseSize("1.5G"), 3 * GiB / 2);
    EXPECT_EQ(parseSize("0.5K"), 512U);
    EXPECT_EQ(parseSize("1.75M"), 7 * MiB / 4);
    // 0.1K is 102.4 bytes, 0.3K is 307.2 and 0.0005K is 0.512.
    EXPECT_EQ(parseSize("0.1K"), 102U);
    EXPECT_EQ(parseSize("0.3K"), 307U);
    EXPECT_EQ(parseSize("0.0005K"), 1U);
    EXPECT_EQ(parseSize("0.0004K"), 0U);
    // Digits past the 18th are ignored rather than overflowing.
    EXPECT_EQ(parseSize("1.0000000000000000000000001T"), TiB);
}

TEST(ParseSize, LimitsOfUint64)
{
    EXPECT_EQ(parseSize("18446744073709551615"), std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(parseSize("16777215T"), 16777215 * TiB);
    EXPECT_THAT(invalidArgumentMessage([] { parseSize("18446744073709551616"); }), HasSubstr("too large"));
    EXPECT_THAT(invalidArgumentMessage([] { parseSize("16777216T"); }), HasSubstr("too large"));
    EXPECT_THAT(invalidArgumentMessage([] { parseSize("16777215.9999999999999T"); }), HasSubstr("too large"));
    EXPECT_THAT(invalidArgumentMessage([] { parseSize("99999999999999999999999G"); }), HasSubstr("too large"));
}

TEST(ParseSize, RejectsMalformedText)
{
    for (const char* text : {"", " ", " 4G", "4G ", "4 G", "-1", "-1G", "+", "+4G", "G", "4GG", "4X", "4Gi", "4GiBB",
                             "4Gb ", "1.", ".5G", "1..5G", "1.5.G", "1e3", "0x10", "4,5G", "4.5", "4.5B", "4P", "nan"})
    {
        EXPECT_THROW(parseSize(text), KeeperError) << '"' << text << '"';
    }
}

TEST(ParseSize, ErrorMessageQuotesTheTextAndShowsTheSyntax)
{
    EXPECT_EQ(invalidArgumentMessage([] { parseSize("4X"); }),
              "invalid size \"4X\": expected a number with an optional unit B, K, M, G or T, like 4G or 500M");
    EXPECT_THAT(invalidArgumentMessage([] { parseSize("4.5"); }), HasSubstr("use a unit for fractions"));
}

TEST(ParseSizeRequest, EmptyMeansTheConfiguredStep)
{
    const SizeRequest request = parseSizeRequest("");
    EXPECT_EQ(request.kind, SizeRequest::Kind::Default);
    EXPECT_EQ(request.bytes, 0U);
}

TEST(ParseSizeRequest, PlusMeansAStep)
{
    const SizeRequest request = parseSizeRequest("+500M");
    EXPECT_EQ(request.kind, SizeRequest::Kind::Relative);
    EXPECT_EQ(request.bytes, 500 * MiB);
    EXPECT_EQ(parseSizeRequest("+1").bytes, 1U);
}

TEST(ParseSizeRequest, BareSizeIsATarget)
{
    const SizeRequest request = parseSizeRequest("4G");
    EXPECT_EQ(request.kind, SizeRequest::Kind::Absolute);
    EXPECT_EQ(request.bytes, 4 * GiB);
}

TEST(ParseSizeRequest, RejectsZeroShrinkAndJunk)
{
    EXPECT_THAT(invalidArgumentMessage([] { parseSizeRequest("+0"); }),
                HasSubstr("invalid size \"+0\": a step must be larger than zero"));
    EXPECT_THAT(invalidArgumentMessage([] { parseSizeRequest("+0.0001K"); }), HasSubstr("larger than zero"));
    EXPECT_THAT(invalidArgumentMessage([] { parseSizeRequest("0"); }),
                HasSubstr("invalid size \"0\": a target size must be larger than zero"));
    EXPECT_THAT(invalidArgumentMessage([] { parseSizeRequest("-1G"); }),
                HasSubstr("invalid size \"-1G\": shrinking is not supported"));
    EXPECT_THAT(invalidArgumentMessage([] { parseSizeRequest("-"); }), HasSubstr("shrinking is not supported"));
    // The whole argument is quoted, sign included, as the caller typed it.
    EXPECT_THAT(invalidArgumentMessage([] { parseSizeRequest("+4X"); }), HasSubstr("invalid size \"+4X\": expected"));
    EXPECT_THROW(parseSizeRequest("+"), KeeperError);
    EXPECT_THROW(parseSizeRequest("++1G"), KeeperError);
    EXPECT_THROW(parseSizeRequest("+-1G"), KeeperError);
    EXPECT_THROW(parseSizeRequest(" "), KeeperError);
}

TEST(FormatSize, GigabytesAndTerabytesAlwaysShowOneDecimal)
{
    EXPECT_EQ(formatSize(4 * GiB), "4.0G");
    EXPECT_EQ(formatSize(4 * GiB + GiB / 2), "4.5G");
    EXPECT_EQ(formatSize(1800 * MiB), "1.8G");
    EXPECT_EQ(formatSize(GiB), "1.0G");
    EXPECT_EQ(formatSize(2 * TiB), "2.0T");
    EXPECT_EQ(formatSize(TiB + TiB / 4), "1.3T"); // 1.25 rounds half up
    EXPECT_EQ(formatSize(std::numeric_limits<std::uint64_t>::max()), "16777216.0T");
}

TEST(FormatSize, MegabytesAndKilobytesAreWholeWhenExact)
{
    EXPECT_EQ(formatSize(500 * MiB), "500M");
    EXPECT_EQ(formatSize(MiB), "1M");
    EXPECT_EQ(formatSize(1023 * MiB), "1023M");
    EXPECT_EQ(formatSize(MiB + MiB / 2), "1.5M");
    EXPECT_EQ(formatSize(512 * KiB), "512K");
    EXPECT_EQ(formatSize(KiB + 100), "1.1K");
    EXPECT_EQ(formatSize(500 * MiB + 1), "500.0M");
}

TEST(FormatSize, BytesBelowOneKilobyte)
{
    EXPECT_EQ(formatSize(0), "0B");
    EXPECT_EQ(formatSize(17), "17B");
    EXPECT_EQ(formatSize(1023), "1023B");
    EXPECT_EQ(formatSize(1024), "1K");
}

TEST(FormatSize, RoundingUpToTheNextUnitSwitchesUnit)
{
    EXPECT_EQ(formatSize(MiB - 1), "1.0M");
    EXPECT_EQ(formatSize(GiB - 1), "1.0G");
    EXPECT_EQ(formatSize(TiB - 1), "1.0T");
    EXPECT_EQ(formatSize(1023 * MiB + MiB / 2), "1023.5M");
}

TEST(FormatSize, RoundTripsThroughParseSize)
{
    for (const char* text : {"500M", "512K", "17B", "4.0G", "4.5G", "2.0T"})
    {
        EXPECT_EQ(formatSize(parseSize(text)), text);
    }
}

TEST(RoundUp, RoundsToTheNextMultiple)
{
    const std::uint64_t extent = 4 * MiB;
    EXPECT_EQ(roundUp(0, extent), 0U);
    EXPECT_EQ(roundUp(1, extent), extent);
    EXPECT_EQ(roundUp(extent, extent), extent);
    EXPECT_EQ(roundUp(extent + 1, extent), 2 * extent);
    EXPECT_EQ(roundUp(4 * GiB + 500 * MiB, extent), 4 * GiB + 500 * MiB);
    EXPECT_EQ(roundUp(7, 1), 7U);
    EXPECT_EQ(roundUp(7, 3), 9U);
}

TEST(RoundUp, RejectsZeroUnitAndOverflow)
{
    EXPECT_THROW(roundUp(1, 0), KeeperError);
    EXPECT_THROW(roundUp(std::numeric_limits<std::uint64_t>::max(), 4 * MiB), KeeperError);
    EXPECT_EQ(roundUp(std::numeric_limits<std::uint64_t>::max() - 1, 1), std::numeric_limits<std::uint64_t>::max() - 1);
}

} // namespace
} // namespace lvkeeper

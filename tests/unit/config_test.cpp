#include "lvkeeper/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

namespace lvkeeper
{
namespace
{

using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::chrono_literals;

const std::string confPath = "/etc/lvkeeper/lvkeeper.conf";

Config parse(const std::string& text)
{
    return parseConfig(text, confPath);
}

// The ConfigError that parsing text throws; fails the test if it throws nothing.
ConfigError parseError(const std::string& text)
{
    try
    {
        parse(text);
    }
    catch (const ConfigError& e)
    {
        return e;
    }
    ADD_FAILURE() << "no ConfigError for:\n" << text;
    return ConfigError("", 0, "", "");
}

VolumeConfig parseVolume(const std::string& body)
{
    const Config config = parse("[Volume]\nMountPoint=/data\n" + body);
    EXPECT_EQ(config.volumes.size(), 1U);
    return config.volumes.at(0);
}

// Line 3 is the setting under test, after "[Volume]" and "MountPoint=/data".
void expectVolumeValueError(const std::string& key, const std::string& value, const std::string& reason)
{
    const ConfigError e = parseError("[Volume]\nMountPoint=/data\n" + key + "=" + value + "\n");
    EXPECT_EQ(e.line(), 3) << key << "=" << value;
    EXPECT_EQ(e.key(), key);
    EXPECT_EQ(e.file(), confPath);
    EXPECT_EQ(std::string(e.what()), confPath + ":3: " + key + "=" + value + ": " + reason);
}

void expectSectionValueError(const std::string& section, const std::string& key, const std::string& value,
                             const std::string& reasonPart)
{
    const ConfigError e = parseError("[" + section + "]\n" + key + "=" + value + "\n");
    EXPECT_EQ(e.line(), 2) << key << "=" << value;
    EXPECT_EQ(e.key(), key);
    EXPECT_THAT(e.what(), StartsWith(confPath + ":2: " + key + "=" + value + ": "));
    EXPECT_THAT(e.what(), HasSubstr(reasonPart));
}

TEST(ConfigError, FormatsFileLineAndMessage)
{
    const ConfigError e(confPath, 7, "GrowAt", "GrowAt=150: must be a percentage between 1 and 99");
    EXPECT_STREQ(e.what(), "/etc/lvkeeper/lvkeeper.conf:7: GrowAt=150: must be a percentage between 1 and 99");
    EXPECT_EQ(e.file(), confPath);
    EXPECT_EQ(e.line(), 7);
    EXPECT_EQ(e.key(), "GrowAt");
}

TEST(ConfigError, LineZeroMeansTheWholeFile)
{
    const ConfigError e(confPath, 0, "", "cannot read: No such file or directory");
    EXPECT_STREQ(e.what(), "/etc/lvkeeper/lvkeeper.conf: cannot read: No such file or directory");
}

TEST(ParseConfig, EmptyTextGivesDefaultsAndNoVolumes)
{
    const Config config = parse("");
    EXPECT_TRUE(config.volumes.empty());
    EXPECT_EQ(config.disks.imageDirectory, "/media");
    EXPECT_EQ(config.disks.imageSize, 1800 * MiB);
    EXPECT_FALSE(config.disks.autoAddDisk);
    EXPECT_EQ(config.disks.maxDisks, 8U);
    EXPECT_EQ(config.disks.reserveHostSpace, 256 * MiB);
    EXPECT_FALSE(config.disks.adoptLoopDevices);
    EXPECT_EQ(config.daemon.backstopInterval, 60s);
}

TEST(ParseConfig, OnlyCommentsAndBlankLines)
{
    EXPECT_TRUE(parse("# lvkeeper\n\n; nothing to watch yet\n   \n").volumes.empty());
}

TEST(ParseConfig, VolumeDefaults)
{
    const VolumeConfig volume = parseVolume("");
    EXPECT_EQ(volume.mountPoint, "/data");
    EXPECT_DOUBLE_EQ(volume.growAt, 90.0);
    EXPECT_EQ(volume.growStep, 500 * MiB);
    EXPECT_FALSE(volume.maxSize.has_value());
    EXPECT_TRUE(volume.autoGrow);
    EXPECT_EQ(volume.cooldown, 2000ms);
}

TEST(ParseConfig, FullFileWithTwoVolumes)
{
    const Config config = parse(R"(# /etc/lvkeeper/lvkeeper.conf
[Volume]
MountPoint=/data
GrowAt=85
GrowStep=1G
MaxSize=20G
AutoGrow=yes
Cooldown=5s

[Volume]
MountPoint = /srv/cache/
GrowAt = 75.5%
GrowStep = 256MiB
AutoGrow = off
Cooldown = 500ms

[Disks]
ImageDirectory=/var/lib/lvkeeper/images
ImageSize=2G
AutoAddDisk=true
MaxDisks=4
ReserveHostSpace=1G
AdoptLoopDevices=1

[Daemon]
BackstopInterval=2min
)");
    ASSERT_EQ(config.volumes.size(), 2U);

    const VolumeConfig& data = config.volumes[0];
    EXPECT_EQ(data.mountPoint, "/data");
    EXPECT_DOUBLE_EQ(data.growAt, 85.0);
    EXPECT_EQ(data.growStep, GiB);
    EXPECT_EQ(data.maxSize, 20 * GiB);
    EXPECT_TRUE(data.autoGrow);
    EXPECT_EQ(data.cooldown, 5s);

    const VolumeConfig& cache = config.volumes[1];
    EXPECT_EQ(cache.mountPoint, "/srv/cache");
    EXPECT_DOUBLE_EQ(cache.growAt, 75.5);
    EXPECT_EQ(cache.growStep, 256 * MiB);
    EXPECT_FALSE(cache.maxSize.has_value()); // not inherited from the first [Volume]
    EXPECT_FALSE(cache.autoGrow);
    EXPECT_EQ(cache.cooldown, 500ms);

    EXPECT_EQ(config.disks.imageDirectory, "/var/lib/lvkeeper/images");
    EXPECT_EQ(config.disks.imageSize, 2 * GiB);
    EXPECT_TRUE(config.disks.autoAddDisk);
    EXPECT_EQ(config.disks.maxDisks, 4U);
    EXPECT_EQ(config.disks.reserveHostSpace, GiB);
    EXPECT_TRUE(config.disks.adoptLoopDevices);
    EXPECT_EQ(config.daemon.backstopInterval, 120s);
}

TEST(ParseConfig, KeysGoToTheVolumeWhoseHeaderCameLast)
{
    // Same keys in each section, interleaved with other sections: each value lands in its own volume.
    const Config config = parse("[Volume]\nMountPoint=/a\n[Disks]\nMaxDisks=2\n[Volume]\nGrowAt=50\n"
                                "MountPoint=/b\n[Daemon]\nBackstopInterval=0\n[Volume]\nMountPoint=/c\nGrowAt=60\n");
    ASSERT_EQ(config.volumes.size(), 3U);
    EXPECT_EQ(config.volumes[0].mountPoint, "/a");
    EXPECT_DOUBLE_EQ(config.volumes[0].growAt, 90.0);
    EXPECT_EQ(config.volumes[1].mountPoint, "/b");
    EXPECT_DOUBLE_EQ(config.volumes[1].growAt, 50.0);
    EXPECT_EQ(config.volumes[2].mountPoint, "/c");
    EXPECT_DOUBLE_EQ(config.volumes[2].growAt, 60.0);
    EXPECT_EQ(config.disks.maxDisks, 2U);
    EXPECT_EQ(config.daemon.backstopInterval, 0s);
}

TEST(ParseConfig, LaterAssignmentWins)
{
    const Config config = parse("[Volume]\nMountPoint=/data\nGrowAt=80\nGrowAt=70\n"
                                "[Disks]\nMaxDisks=3\n[Disks]\nMaxDisks=5\n");
    EXPECT_DOUBLE_EQ(config.volumes.at(0).growAt, 70.0);
    EXPECT_EQ(config.disks.maxDisks, 5U);
}

TEST(ParseConfig, CommentsIndentationCrLfAndBom)
{
    const Config config = parse("\xEF\xBB\xBF[Volume]\r\n"
                                "# a comment\r\n"
                                "; another comment\r\n"
                                "  MountPoint=/data\r\n"
                                "\tGrowAt=80 ; inline comment after a blank\r\n"
                                "    GrowStep=1G\r\n");
    ASSERT_EQ(config.volumes.size(), 1U);
    EXPECT_EQ(config.volumes[0].mountPoint, "/data");
    EXPECT_DOUBLE_EQ(config.volumes[0].growAt, 80.0);
    // Indented lines are settings of their own, never continuations of the line above.
    EXPECT_EQ(config.volumes[0].growStep, GiB);
}

TEST(ParseConfig, IndentedSectionHeaderStartsAVolume)
{
    const Config config = parse("  [Volume]\nMountPoint=/a\n\t[Volume]\nMountPoint=/b\n");
    ASSERT_EQ(config.volumes.size(), 2U);
    EXPECT_EQ(config.volumes[1].mountPoint, "/b");
}

TEST(ParseConfig, NoTrailingNewline)
{
    EXPECT_EQ(parse("[Volume]\nMountPoint=/data").volumes.at(0).mountPoint, "/data");
}

TEST(ParseConfig, MountPointIsNormalized)
{
    EXPECT_EQ(parseVolume("MountPoint=/data/").mountPoint, "/data");
    EXPECT_EQ(parseVolume("MountPoint=//srv//data/./x/").mountPoint, "/srv/data/x");
    EXPECT_EQ(parseVolume("MountPoint=/").mountPoint, "/");
    EXPECT_EQ(parseVolume("MountPoint=///").mountPoint, "/");
    EXPECT_EQ(parseVolume("MountPoint=/my data").mountPoint, "/my data");
}

TEST(ParseConfig, MountPointMustBeAbsolute)
{
    expectVolumeValueError("MountPoint", "data", "must be an absolute path");
    expectVolumeValueError("MountPoint", "./data", "must be an absolute path");
    expectVolumeValueError("MountPoint", "", "must be an absolute path");
    expectVolumeValueError("MountPoint", "/srv/../data", "must not contain \"..\"");
}

TEST(ParseConfig, GrowAtAcceptsPercentages)
{
    EXPECT_DOUBLE_EQ(parseVolume("GrowAt=1").growAt, 1.0);
    EXPECT_DOUBLE_EQ(parseVolume("GrowAt=99").growAt, 99.0);
    EXPECT_DOUBLE_EQ(parseVolume("GrowAt=85%").growAt, 85.0);
    EXPECT_DOUBLE_EQ(parseVolume("GrowAt=92.5").growAt, 92.5);
    EXPECT_DOUBLE_EQ(parseVolume("GrowAt=92.25%").growAt, 92.25);
    EXPECT_DOUBLE_EQ(parseVolume("GrowAt=099").growAt, 99.0);
}

TEST(ParseConfig, GrowAtRejectsOutOfRangeAndJunk)
{
    for (const char* value :
         {"0", "0.5", "99.5", "100", "150", "-5", "", "%", "85%%", "85 %", "abc", "8.", ".8", "1e1", "1000000", "90,5"})
    {
        expectVolumeValueError("GrowAt", value, "must be a percentage between 1 and 99");
    }
}

TEST(ParseConfig, ErrorMessageReadsLikeTheManPageSays)
{
    const ConfigError e = parseError("# comment\n\n[Volume]\nMountPoint=/data\n\n; why\nGrowAt=150\n");
    EXPECT_STREQ(e.what(), "/etc/lvkeeper/lvkeeper.conf:7: GrowAt=150: must be a percentage between 1 and 99");
    EXPECT_EQ(e.line(), 7);
    EXPECT_EQ(e.key(), "GrowAt");
}

TEST(ParseConfig, GrowStepIsAPositiveSize)
{
    EXPECT_EQ(parseVolume("GrowStep=1G").growStep, GiB);
    EXPECT_EQ(parseVolume("GrowStep=1.5G").growStep, 3 * GiB / 2);
    EXPECT_EQ(parseVolume("GrowStep=4096").growStep, 4096U);
    expectVolumeValueError("GrowStep", "0", "must be larger than zero");
    expectVolumeValueError("GrowStep", "0M", "must be larger than zero");
    expectVolumeValueError("GrowStep", "4X",
                           "must be a size: a number with an optional unit B, K, M, G or T, like 500M or 4G");
    expectVolumeValueError("GrowStep", "+1G",
                           "must be a size: a number with an optional unit B, K, M, G or T, like 500M or 4G");
    expectVolumeValueError("GrowStep", "99999999T", "too large");
}

TEST(ParseConfig, MaxSizeNoneOrASize)
{
    EXPECT_EQ(parseVolume("MaxSize=10G").maxSize, 10 * GiB);
    EXPECT_FALSE(parseVolume("MaxSize=").maxSize.has_value());
    EXPECT_FALSE(parseVolume("MaxSize=0").maxSize.has_value());
    EXPECT_FALSE(parseVolume("MaxSize=infinity").maxSize.has_value());
    EXPECT_FALSE(parseVolume("MaxSize=10G\nMaxSize=").maxSize.has_value());
    expectVolumeValueError("MaxSize", "lots",
                           "must be a size: a number with an optional unit B, K, M, G or T, like 500M or 4G");
    expectVolumeValueError("MaxSize", "Infinity",
                           "must be a size: a number with an optional unit B, K, M, G or T, like 500M or 4G");
}

TEST(ParseConfig, Booleans)
{
    for (const char* yes : {"yes", "Yes", "YES", "true", "True", "on", "1"})
    {
        EXPECT_TRUE(parseVolume(std::string("AutoGrow=no\nAutoGrow=") + yes).autoGrow) << yes;
    }
    for (const char* no : {"no", "No", "false", "FALSE", "off", "0"})
    {
        EXPECT_FALSE(parseVolume(std::string("AutoGrow=") + no).autoGrow) << no;
    }
    for (const char* junk : {"", "2", "y", "enabled", "yes please"})
    {
        expectVolumeValueError("AutoGrow", junk, "must be a boolean: yes, no, true, false, on, off, 1 or 0");
    }
}

TEST(ParseConfig, CooldownDurations)
{
    EXPECT_EQ(parseVolume("Cooldown=2s").cooldown, 2s);
    EXPECT_EQ(parseVolume("Cooldown=500ms").cooldown, 500ms);
    EXPECT_EQ(parseVolume("Cooldown=1min").cooldown, 60s);
    EXPECT_EQ(parseVolume("Cooldown=10").cooldown, 10s);
    EXPECT_EQ(parseVolume("Cooldown=0").cooldown, 0ms);
    EXPECT_EQ(parseVolume("Cooldown=1.5s").cooldown, 1500ms);
    EXPECT_EQ(parseVolume("Cooldown=0.25").cooldown, 250ms);
    EXPECT_EQ(parseVolume("Cooldown=1min 30s").cooldown, 90s);
    EXPECT_EQ(parseVolume("Cooldown=1min30s").cooldown, 90s);
    EXPECT_EQ(parseVolume("Cooldown=2sec").cooldown, 2s);
    EXPECT_EQ(parseVolume("Cooldown=1h").cooldown, 3600s);
    EXPECT_EQ(parseVolume("Cooldown=1d").cooldown, 86400s);
    EXPECT_EQ(parseVolume("Cooldown=2m").cooldown, 120s);
    for (const char* junk : {"", "s", "2x", "2 s", "-1s", "infinity", "1.s", ".5s", "2S", "5us"})
    {
        expectVolumeValueError("Cooldown", junk, "must be a duration like 2s, 500ms or 1min, or a number of seconds");
    }
    expectVolumeValueError("Cooldown", "99999999999999999999", "too large");
    expectVolumeValueError("Cooldown", "9999999999999999d", "too large");
}

TEST(ParseConfig, DisksValues)
{
    EXPECT_EQ(parse("[Disks]\nImageDirectory=/srv/images/\n").disks.imageDirectory, "/srv/images");
    EXPECT_EQ(parse("[Disks]\nImageSize=16M\n").disks.imageSize, 16 * MiB);
    EXPECT_EQ(parse("[Disks]\nMaxDisks=0\n").disks.maxDisks, 0U);
    EXPECT_EQ(parse("[Disks]\nMaxDisks=256\n").disks.maxDisks, 256U);
    EXPECT_EQ(parse("[Disks]\nReserveHostSpace=0\n").disks.reserveHostSpace, 0U);
    EXPECT_FALSE(parse("[Disks]\nAutoAddDisk=no\n").disks.autoAddDisk);

    expectSectionValueError("Disks", "ImageDirectory", "media", "must be an absolute path");
    expectSectionValueError("Disks", "ImageSize", "15M", "must be at least 16M");
    expectSectionValueError("Disks", "ImageSize", "0", "must be at least 16M");
    expectSectionValueError("Disks", "ImageSize", "big", "must be a size");
    expectSectionValueError("Disks", "MaxDisks", "257", "must be a whole number between 0 and 256");
    expectSectionValueError("Disks", "MaxDisks", "-1", "must be a whole number between 0 and 256");
    expectSectionValueError("Disks", "MaxDisks", "4.0", "must be a whole number between 0 and 256");
    expectSectionValueError("Disks", "MaxDisks", "99999999999", "must be a whole number between 0 and 256");
    expectSectionValueError("Disks", "MaxDisks", "", "must be a whole number between 0 and 256");
    expectSectionValueError("Disks", "ReserveHostSpace", "1 G", "must be a size");
    expectSectionValueError("Disks", "AutoAddDisk", "maybe", "must be a boolean");
    expectSectionValueError("Disks", "AdoptLoopDevices", "", "must be a boolean");
}

TEST(ParseConfig, DaemonBackstopInterval)
{
    EXPECT_EQ(parse("[Daemon]\nBackstopInterval=0\n").daemon.backstopInterval, 0s);
    EXPECT_EQ(parse("[Daemon]\nBackstopInterval=30\n").daemon.backstopInterval, 30s);
    EXPECT_EQ(parse("[Daemon]\nBackstopInterval=5min\n").daemon.backstopInterval, 300s);
}

TEST(ParseConfig, DaemonRejectsFractionsOfASecondAndUnknownKeys)
{
    expectSectionValueError("Daemon", "BackstopInterval", "1500ms", "must be a whole number of seconds");
    expectSectionValueError("Daemon", "BackstopInterval", "soon", "must be a duration");
    expectSectionValueError("Daemon", "LogLevel", "debug",
                            "unknown key in [Daemon]; expected BackstopInterval or MetricsFile");
}

TEST(ParseConfig, DaemonMetricsFileIsAnAbsolutePromFileOrOff)
{
    EXPECT_EQ(parse("").daemon.metricsFile, "");
    EXPECT_EQ(parse("[Daemon]\nMetricsFile=/var/lib/prometheus/node-exporter/lvkeeper.prom\n").daemon.metricsFile,
              "/var/lib/prometheus/node-exporter/lvkeeper.prom");
    EXPECT_EQ(parse("[Daemon]\nMetricsFile=/x/a.prom\nMetricsFile=\n").daemon.metricsFile, "");
    expectSectionValueError("Daemon", "MetricsFile", "lvkeeper.prom", "must be an absolute path");
    expectSectionValueError("Daemon", "MetricsFile", "/var/lib/prometheus/lvkeeper.txt", "ending in .prom");
}

TEST(ParseConfig, UnknownKeysNameTheirSection)
{
    expectVolumeValueError("Mountpoint", "/x",
                           "unknown key in [Volume]; expected MountPoint, GrowAt, GrowStep, MaxSize, AutoGrow or "
                           "Cooldown");
    expectVolumeValueError("mountpoint", "/x",
                           "unknown key in [Volume]; expected MountPoint, GrowAt, GrowStep, MaxSize, AutoGrow or "
                           "Cooldown");
    expectSectionValueError("Disks", "ImageDir", "/x", "unknown key in [Disks]");
}

TEST(ParseConfig, UnknownSectionIsAnErrorEvenWhenEmpty)
{
    const ConfigError withKeys = parseError("[Volume]\nMountPoint=/data\n\n[Volumes]\nMountPoint=/srv\n");
    EXPECT_STREQ(withKeys.what(),
                 "/etc/lvkeeper/lvkeeper.conf:4: [Volumes]: unknown section; expected [Volume], [Disks] or [Daemon]");
    EXPECT_EQ(withKeys.line(), 4);
    EXPECT_EQ(withKeys.key(), "");

    EXPECT_EQ(parseError("[volume]\n").line(), 1);
    EXPECT_EQ(parseError("[Volume]\nMountPoint=/a\n[Foo]\n").line(), 3);
}

TEST(ParseConfig, JunkAfterASectionHeader)
{
    const ConfigError e = parseError("[Volume] extra\nMountPoint=/data\n");
    EXPECT_EQ(e.line(), 1);
    EXPECT_THAT(e.what(), HasSubstr("unexpected text after the section header"));
    // A comment after the header is fine.
    EXPECT_EQ(parse("[Volume] # the data volume\nMountPoint=/data\n").volumes.size(), 1U);
}

TEST(ParseConfig, SettingOutsideAnySection)
{
    const ConfigError e = parseError("# top\nMountPoint=/data\n[Volume]\nMountPoint=/data\n");
    EXPECT_EQ(e.line(), 2);
    EXPECT_EQ(e.key(), "MountPoint");
    EXPECT_THAT(e.what(), HasSubstr(":2: MountPoint=/data: a setting outside of any section"));
}

TEST(ParseConfig, SyntaxErrorsNameTheLine)
{
    const ConfigError noEquals = parseError("[Volume]\nMountPoint=/data\nGrowAt 80\n");
    EXPECT_EQ(noEquals.line(), 3);
    EXPECT_EQ(noEquals.key(), "");
    EXPECT_STREQ(noEquals.what(), "/etc/lvkeeper/lvkeeper.conf:3: \"GrowAt 80\": expected a [Section] header, a "
                                  "Key=value setting or a # comment");

    EXPECT_EQ(parseError("[Volume\nMountPoint=/data\n").line(), 1);
}

TEST(ParseConfig, TheFirstErrorWins)
{
    // A syntax error (found by inih) before a bad value (found by us) and the other way round.
    EXPECT_EQ(parseError("[Volume]\nMountPoint=/data\njunk\nGrowAt=150\n").line(), 3);
    EXPECT_EQ(parseError("[Volume]\nMountPoint=/data\nGrowAt=150\njunk\n").line(), 3);
    EXPECT_EQ(parseError("[Volume]\nMountPoint=/data\nGrowAt=150\n[Foo]\n").line(), 3);
    EXPECT_EQ(parseError("[Volume]\nMountPoint=/data\njunk\n[Foo]\n").line(), 3);
}

TEST(ParseConfig, VolumeWithoutMountPointNamesItsHeader)
{
    const ConfigError e = parseError("[Volume]\nMountPoint=/data\n\n[Volume]\nGrowAt=80\n");
    EXPECT_EQ(e.line(), 4);
    EXPECT_EQ(e.key(), "MountPoint");
    EXPECT_STREQ(e.what(),
                 "/etc/lvkeeper/lvkeeper.conf:4: [Volume]: MountPoint= is missing; every [Volume] section needs one");

    // Also an empty [Volume] with nothing under it at the end of the file.
    EXPECT_EQ(parseError("[Volume]\nMountPoint=/data\n[Volume]\n").line(), 3);
}

TEST(ParseConfig, DuplicateMountPointNamesBothPlaces)
{
    const ConfigError e = parseError("[Volume]\nMountPoint=/data\n\n[Volume]\nGrowAt=80\nMountPoint=/data/\n");
    EXPECT_EQ(e.line(), 6);
    EXPECT_EQ(e.key(), "MountPoint");
    EXPECT_STREQ(e.what(),
                 "/etc/lvkeeper/lvkeeper.conf:6: MountPoint=/data: already configured by the [Volume] at line 1");
}

TEST(ParseConfig, LongLinesAreRejectedNotSplit)
{
    const std::string longPath = "/" + std::string(500, 'x');
    const ConfigError e = parseError("[Volume]\nMountPoint=" + longPath + "\n");
    EXPECT_EQ(e.line(), 2);
    EXPECT_THAT(e.what(), HasSubstr("the line is too long"));
}

TEST(ParseConfig, NulByteIsRejected)
{
    const ConfigError e = parseError(std::string("[Volume]\nMountPoint=/da\0ta\n", 27));
    EXPECT_EQ(e.line(), 2);
    EXPECT_THAT(e.what(), HasSubstr("NUL"));
}

class LoadConfigTest : public ::testing::Test
{
  protected:
    std::string path = ::testing::TempDir() + "lvkeeper_config_test_" + std::to_string(::getpid()) + ".conf";

    void TearDown() override
    {
        std::remove(path.c_str());
    }
};

TEST_F(LoadConfigTest, ReadsAFile)
{
    std::ofstream(path) << "[Volume]\nMountPoint=/data\nGrowAt=80\n";
    const Config config = loadConfig(path);
    ASSERT_EQ(config.volumes.size(), 1U);
    EXPECT_DOUBLE_EQ(config.volumes[0].growAt, 80.0);
}

TEST_F(LoadConfigTest, ErrorsNameTheFile)
{
    std::ofstream(path) << "[Volume]\nMountPoint=/data\nGrowAt=150\n";
    try
    {
        loadConfig(path);
        FAIL() << "no ConfigError";
    }
    catch (const ConfigError& e)
    {
        EXPECT_EQ(e.file(), path);
        EXPECT_EQ(std::string(e.what()), path + ":3: GrowAt=150: must be a percentage between 1 and 99");
    }
}

// The example (installed in /usr/share/doc/lvkeeper/examples) must stay loadable and match the defaults it documents.
TEST(ShippedConfig, ParsesAndMatchesTheDefaults)
{
    const Config config = loadConfig(std::string(LVKEEPER_TEST_DATA) + "/../../../units/lvkeeper.conf");
    ASSERT_EQ(config.volumes.size(), 1U);
    const VolumeConfig defaults;
    EXPECT_EQ(config.volumes[0].mountPoint, "/data");
    EXPECT_DOUBLE_EQ(config.volumes[0].growAt, defaults.growAt);
    EXPECT_EQ(config.volumes[0].growStep, defaults.growStep);
    EXPECT_EQ(config.volumes[0].maxSize, defaults.maxSize);
    EXPECT_EQ(config.volumes[0].autoGrow, defaults.autoGrow);
    const DisksConfig disks;
    EXPECT_EQ(config.disks.imageDirectory, disks.imageDirectory);
    EXPECT_EQ(config.disks.imageSize, disks.imageSize);
    EXPECT_EQ(config.disks.autoAddDisk, disks.autoAddDisk);
    EXPECT_EQ(config.disks.maxDisks, disks.maxDisks);
    EXPECT_EQ(config.disks.reserveHostSpace, disks.reserveHostSpace);
    EXPECT_EQ(config.disks.adoptLoopDevices, disks.adoptLoopDevices);
    EXPECT_EQ(config.daemon.backstopInterval, DaemonConfig{}.backstopInterval);
}

TEST_F(LoadConfigTest, MissingFileIsAnEmptyOne)
{
    // As systemd's daemons: every default, no volume watched.
    const Config config = loadConfig(path + ".missing");
    EXPECT_TRUE(config.volumes.empty());
    EXPECT_EQ(config.disks.imageDirectory, DisksConfig{}.imageDirectory);
    EXPECT_EQ(config.daemon.backstopInterval, DaemonConfig{}.backstopInterval);
}

TEST_F(LoadConfigTest, DirectoryIsNotAConfigFile)
{
    try
    {
        loadConfig(::testing::TempDir());
        FAIL() << "no ConfigError";
    }
    catch (const ConfigError& e)
    {
        EXPECT_EQ(e.line(), 0);
        EXPECT_THAT(e.what(), HasSubstr("cannot read: Is a directory"));
    }
}

/// A main file and its lvkeeper.conf.d, in a directory of their own.
class DropInTest : public ::testing::Test
{
  protected:
    std::string dir = ::testing::TempDir() + "lvkeeper_dropin_test_" + std::to_string(::getpid());
    std::string path = dir + "/lvkeeper.conf";

    void SetUp() override
    {
        std::filesystem::create_directories(path + ".d");
    }
    void TearDown() override
    {
        std::filesystem::remove_all(dir);
    }
    void write(const std::string& name, const std::string& text)
    {
        std::ofstream(dir + "/" + name) << text;
    }
};

TEST_F(DropInTest, DropInsApplyInByteOrderAfterTheMainFile)
{
    write("lvkeeper.conf", "[Disks]\nImageSize=1G\nMaxDisks=4\n[Daemon]\nBackstopInterval=30\n");
    write("lvkeeper.conf.d/20-size.conf", "[Disks]\nImageSize=4G\n");
    write("lvkeeper.conf.d/10-size.conf", "[Disks]\nImageSize=2G\nReserveHostSpace=1G\n");
    write("lvkeeper.conf.d/Z-upper.conf", "[Disks]\nMaxDisks=6\n"); // byte order: digits before letters
    const Config config = loadConfig(path);
    EXPECT_EQ(config.disks.imageSize, 4 * GiB);        // 20- after 10-
    EXPECT_EQ(config.disks.reserveHostSpace, 1 * GiB); // set by 10-, kept by 20-
    EXPECT_EQ(config.disks.maxDisks, 6U);              // Z- after 20-
    EXPECT_EQ(config.daemon.backstopInterval, 30s);    // the main file's, untouched
    EXPECT_EQ(dropInFiles(path),
              (std::vector<std::string>{path + ".d/10-size.conf", path + ".d/20-size.conf", path + ".d/Z-upper.conf"}));
}

TEST_F(DropInTest, AVolumeIsChangedByItsMountPointOrAdded)
{
    write("lvkeeper.conf", "[Volume]\nMountPoint=/data\nGrowAt=80\nGrowStep=1G\n");
    write("lvkeeper.conf.d/50-data.conf", "[Volume]\nMountPoint=/data/\nGrowAt=70\n\n[Volume]\nMountPoint=/srv\n");
    const Config config = loadConfig(path);
    ASSERT_EQ(config.volumes.size(), 2U);
    EXPECT_EQ(config.volumes[0].mountPoint, "/data");
    EXPECT_DOUBLE_EQ(config.volumes[0].growAt, 70.0); // the drop-in's
    EXPECT_EQ(config.volumes[0].growStep, 1 * GiB);   // the main file's, untouched
    EXPECT_EQ(config.volumes[1].mountPoint, "/srv");
    EXPECT_DOUBLE_EQ(config.volumes[1].growAt, VolumeConfig{}.growAt);
}

TEST_F(DropInTest, OnlyRegularVisibleConfFilesCount)
{
    write("lvkeeper.conf", "[Disks]\nMaxDisks=4\n");
    write("lvkeeper.conf.d/10-x.conf.dpkg-old", "[Disks]\nMaxDisks=100\n");
    write("lvkeeper.conf.d/.20-hidden.conf", "[Disks]\nMaxDisks=101\n");
    write("lvkeeper.conf.d/30-notes.txt", "not INI at all");
    std::filesystem::create_directory(path + ".d/40-dir.conf");
    std::filesystem::create_symlink("/dev/null", path + ".d/50-masked.conf");
    EXPECT_TRUE(dropInFiles(path).empty());
    EXPECT_EQ(loadConfig(path).disks.maxDisks, 4U);
}

TEST_F(DropInTest, DropInsApplyWithoutAMainFile)
{
    write("lvkeeper.conf.d/data.conf", "[Volume]\nMountPoint=/data\n");
    const Config config = loadConfig(path);
    ASSERT_EQ(config.volumes.size(), 1U);
    EXPECT_EQ(config.volumes[0].mountPoint, "/data");
}

TEST_F(DropInTest, NoDropInDirectoryIsFine)
{
    std::filesystem::remove(path + ".d");
    write("lvkeeper.conf", "[Disks]\nMaxDisks=3\n");
    EXPECT_TRUE(dropInFiles(path).empty());
    EXPECT_EQ(loadConfig(path).disks.maxDisks, 3U);
}

TEST_F(DropInTest, AnErrorNamesTheDropInAndItsLine)
{
    write("lvkeeper.conf", "[Volume]\nMountPoint=/data\n");
    write("lvkeeper.conf.d/10-bad.conf", "[Volume]\nMountPoint=/data\nGrowAt=150\n");
    try
    {
        loadConfig(path);
        FAIL() << "no ConfigError";
    }
    catch (const ConfigError& e)
    {
        EXPECT_EQ(e.file(), path + ".d/10-bad.conf");
        EXPECT_EQ(e.line(), 3);
        EXPECT_EQ(e.key(), "GrowAt");
    }
}

TEST_F(DropInTest, EachVolumeOfADropInNeedsItsMountPoint)
{
    write("lvkeeper.conf", "[Volume]\nMountPoint=/data\n");
    write("lvkeeper.conf.d/10-bad.conf", "[Volume]\nGrowAt=70\n");
    try
    {
        loadConfig(path);
        FAIL() << "no ConfigError";
    }
    catch (const ConfigError& e)
    {
        EXPECT_EQ(e.file(), path + ".d/10-bad.conf");
        EXPECT_EQ(e.line(), 1);
        EXPECT_THAT(e.what(), HasSubstr("MountPoint= is missing"));
    }
}

TEST(ParseDropIn, DuplicateMountPointsInOneFileAreStillAnError)
{
    Config base;
    base.volumes.emplace_back();
    base.volumes[0].mountPoint = "/data";
    EXPECT_THROW(parseDropIn("[Volume]\nMountPoint=/data\n[Volume]\nMountPoint=/data\n", "d.conf", base), ConfigError);
}

} // namespace
} // namespace lvkeeper

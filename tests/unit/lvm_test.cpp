#include "lvkeeper/errors.hpp"
#include "lvkeeper/lvm.hpp"
#include "lvkeeper/size.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace lvkeeper::lvm
{
namespace
{

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string readData(const std::string& name)
{
    const std::string path = std::string(LVKEEPER_TEST_DATA) + "/" + name;
    std::ifstream file(path);
    EXPECT_TRUE(file) << "cannot open " << path;
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

// The message of the CommandFailed error that fn throws; fails the test otherwise.
template <typename Fn>
std::string commandFailedMessage(Fn fn)
{
    try
    {
        fn();
    }
    catch (const KeeperError& e)
    {
        EXPECT_EQ(e.kind(), ErrorKind::CommandFailed);
        return e.what();
    }
    ADD_FAILURE() << "no KeeperError thrown";
    return {};
}

TEST(LvmArgs, ReportsAskForJsonInBytes)
{
    EXPECT_THAT(pvsArgs(), ElementsAre("pvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                                       "pv_name,vg_name,pv_size,pv_free,dev_size,pe_start,pv_pe_count,"
                                       "pv_pe_alloc_count,pv_attr"));
    EXPECT_THAT(vgsArgs(), ElementsAre("vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                                       "vg_name,vg_size,vg_free,vg_extent_size,vg_extent_count,vg_free_count,"
                                       "pv_count"));
    EXPECT_THAT(lvsArgs(), ElementsAre("lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
                                       "lv_name,vg_name,lv_path,lv_dm_path,lv_size,lv_kernel_major,"
                                       "lv_kernel_minor,vg_free,vg_extent_size"));
}

TEST(LvmArgs, ChangeCommands)
{
    EXPECT_THAT(lvextendArgs("vg0", "data0", 4 * GiB + 500 * MiB),
                ElementsAre("lvextend", "--size", "4819255296b", "vg0/data0"));
    EXPECT_THAT(pvcreateArgs("/dev/loop1"), ElementsAre("pvcreate", "/dev/loop1"));
    EXPECT_THAT(vgextendArgs("vg0", "/dev/loop1"), ElementsAre("vgextend", "vg0", "/dev/loop1"));
    EXPECT_THAT(vgreduceArgs("vg0", "/dev/loop1"), ElementsAre("vgreduce", "vg0", "/dev/loop1"));
    EXPECT_THAT(pvremoveArgs("/dev/loop1"), ElementsAre("pvremove", "/dev/loop1"));
}

// data/pvs.json is real lvm2 2.03.16 output (see data/README.md).
TEST(ParsePvs, RealCapture)
{
    const std::vector<Pv> pvs = parsePvs(readData("pvs.json"));
    ASSERT_EQ(pvs.size(), 3U);

    EXPECT_EQ(pvs[0].name, "/dev/loop1");
    EXPECT_EQ(pvs[0].vgName, "testvg_20441");
    EXPECT_EQ(pvs[0].size, 1883242496U);
    EXPECT_EQ(pvs[0].free, 1883242496U);
    EXPECT_EQ(pvs[0].devSize, 1800 * MiB);
    EXPECT_EQ(pvs[0].peStart, MiB);
    EXPECT_EQ(pvs[0].peCount, 449U);
    EXPECT_EQ(pvs[0].peAllocCount, 0U);
    EXPECT_FALSE(pvs[0].allocatable); // "u--" after pvchange -x n

    EXPECT_EQ(pvs[1].name, "/dev/loop2");
    EXPECT_EQ(pvs[1].peStart, GiB); // pvcreate --dataalignment 1g
    EXPECT_EQ(pvs[1].size, 194 * 4 * MiB);
    EXPECT_EQ(pvs[1].free, 247463936U);
    EXPECT_EQ(pvs[1].peAllocCount, 135U);
    EXPECT_TRUE(pvs[1].allocatable);

    EXPECT_EQ(pvs[2].name, "/dev/loop3");
    EXPECT_EQ(pvs[2].vgName, ""); // an orphan
    EXPECT_EQ(pvs[2].size, 200 * MiB);
    EXPECT_EQ(pvs[2].peCount, 0U);
    EXPECT_FALSE(pvs[2].allocatable); // "---"
}

// data/pvs_incident.json is synthesized in the real format: the incident's two loop PVs.
TEST(ParsePvs, IncidentLayout)
{
    const std::vector<Pv> pvs = parsePvs(readData("pvs_incident.json"));
    ASSERT_EQ(pvs.size(), 2U);

    EXPECT_EQ(pvs[0].name, "/dev/loop0");
    EXPECT_FALSE(pvs[0].allocatable);
    EXPECT_EQ(pvs[0].free, 0U);
    EXPECT_EQ(pvs[0].peAllocCount, pvs[0].peCount);

    EXPECT_EQ(pvs[1].name, "/dev/loop1");
    EXPECT_TRUE(pvs[1].allocatable);
    EXPECT_EQ(pvs[1].peStart, GiB);
    EXPECT_EQ(pvs[1].devSize, 1800 * MiB);
    // The 1 GiB data offset eats most of the disk: 776M of 1800M are usable.
    EXPECT_EQ(pvs[1].size, 776 * MiB);
    EXPECT_EQ(pvs[1].devSize - pvs[1].peStart, pvs[1].size);
}

TEST(ParseVgs, RealCapture)
{
    const std::vector<Vg> vgs = parseVgs(readData("vgs.json"));
    ASSERT_EQ(vgs.size(), 1U);
    EXPECT_EQ(vgs[0].name, "testvg_20441");
    EXPECT_EQ(vgs[0].size, 2696937472U);
    EXPECT_EQ(vgs[0].free, 2130706432U);
    EXPECT_EQ(vgs[0].extentSize, 4 * MiB);
    EXPECT_EQ(vgs[0].extentCount, 643U);
    EXPECT_EQ(vgs[0].freeCount, 508U);
    EXPECT_EQ(vgs[0].pvCount, 2U);
    EXPECT_EQ(vgs[0].size, vgs[0].extentCount * vgs[0].extentSize);
    EXPECT_EQ(vgs[0].free, vgs[0].freeCount * vgs[0].extentSize);
}

TEST(ParseVgs, RealCaptureWithNoVgs)
{
    EXPECT_TRUE(parseVgs(readData("vgs_empty.json")).empty());
}

TEST(ParseVgs, RealCaptureWithACommandLogBesideTheReport)
{
    const std::vector<Vg> vgs = parseVgs(readData("vgs_with_log.json"));
    ASSERT_EQ(vgs.size(), 1U);
    EXPECT_EQ(vgs[0].name, "testvg_20441");
}

TEST(ParseLvs, RealCaptureOfInactiveLvs)
{
    const std::vector<Lv> lvs = parseLvs(readData("lvs.json"));
    ASSERT_EQ(lvs.size(), 2U);
    EXPECT_EQ(lvs[0].name, "data0");
    EXPECT_EQ(lvs[0].vgName, "testvg_20441");
    EXPECT_EQ(lvs[0].path, "/dev/testvg_20441/data0");
    EXPECT_EQ(lvs[0].dmPath, "/dev/mapper/testvg_20441-data0");
    EXPECT_EQ(lvs[0].size, 500 * MiB);
    EXPECT_EQ(lvs[0].kernelMajor, -1);
    EXPECT_EQ(lvs[0].kernelMinor, -1);
    EXPECT_EQ(lvs[0].vgFree, 2130706432U);
    EXPECT_EQ(lvs[0].vgExtentSize, 4 * MiB);
    EXPECT_EQ(lvs[1].name, "lv0");
    EXPECT_EQ(lvs[1].size, 40 * MiB);
}

// data/lvs_active.json is synthesized in the real format: this host has no device-mapper to activate an LV.
TEST(ParseLvs, ActiveLvHasAKernelDevice)
{
    const std::vector<Lv> lvs = parseLvs(readData("lvs_active.json"));
    ASSERT_EQ(lvs.size(), 1U);
    EXPECT_EQ(lvs[0].vgName, "vg0");
    EXPECT_EQ(lvs[0].name, "data0");
    EXPECT_EQ(lvs[0].path, "/dev/vg0/data0");
    EXPECT_EQ(lvs[0].dmPath, "/dev/mapper/vg0-data0");
    EXPECT_EQ(lvs[0].kernelMajor, 253);
    EXPECT_EQ(lvs[0].kernelMinor, 0);
    EXPECT_EQ(lvs[0].vgFree, 776 * MiB);
}

TEST(ParseReport, ToleratesEmptyAndSuffixedNumbers)
{
    const std::vector<Lv> lvs = parseLvs(R"({"report":[{"lv":[{"lv_name":"a","vg_name":"v","lv_path":"",
        "lv_dm_path":"","lv_size":"4194304B","lv_kernel_major":"","lv_kernel_minor":"","vg_free":"",
        "vg_extent_size":"4194304"}]}]})");
    ASSERT_EQ(lvs.size(), 1U);
    EXPECT_EQ(lvs[0].size, 4 * MiB);
    EXPECT_EQ(lvs[0].kernelMajor, -1);
    EXPECT_EQ(lvs[0].kernelMinor, -1);
    EXPECT_EQ(lvs[0].vgFree, 0U);
}

TEST(ParseReport, RowsOfSeveralReportEntriesAreJoined)
{
    const std::vector<Vg> vgs = parseVgs(R"({"report":[
        {"vg":[{"vg_name":"a","vg_size":"1","vg_free":"0","vg_extent_size":"1","vg_extent_count":"1",
                "vg_free_count":"0","pv_count":"1"}]},
        {"vg":[{"vg_name":"b","vg_size":"2","vg_free":"0","vg_extent_size":"1","vg_extent_count":"2",
                "vg_free_count":"0","pv_count":"1"}]}]})");
    ASSERT_EQ(vgs.size(), 2U);
    EXPECT_EQ(vgs[1].name, "b");
}

TEST(ParseReport, MalformedOutputIsCommandFailed)
{
    EXPECT_THAT(commandFailedMessage([] { parsePvs(""); }), HasSubstr("unexpected lvm report: not JSON"));
    EXPECT_THAT(commandFailedMessage([] { parsePvs("  WARNING: something\n"); }),
                HasSubstr("unexpected lvm report: not JSON: \"  WARNING: something"));
    EXPECT_THAT(commandFailedMessage([] { parsePvs(R"({"report": [{"pv": [)"); }), HasSubstr("not JSON"));
    EXPECT_THAT(commandFailedMessage([] { parsePvs("[]"); }), HasSubstr("no \"report\" array"));
    EXPECT_THAT(commandFailedMessage([] { parsePvs("{}"); }), HasSubstr("no \"report\" array"));
    EXPECT_THAT(commandFailedMessage([] { parsePvs(R"({"report": {}})"); }), HasSubstr("no \"report\" array"));
    EXPECT_THAT(commandFailedMessage([] { parsePvs(R"({"report": []})"); }), HasSubstr("no \"pv\" list"));
    // A vgs report handed to the pvs parser.
    EXPECT_THAT(commandFailedMessage([] { parsePvs(readData("vgs.json")); }), HasSubstr("no \"pv\" list"));
    EXPECT_THAT(commandFailedMessage([] { parsePvs(R"({"report": [{"pv": {}}]})"); }),
                HasSubstr("\"pv\" is not an array"));
    EXPECT_THAT(commandFailedMessage([] { parsePvs(R"({"report": [{"pv": ["x"]}]})"); }),
                HasSubstr("row is not an object"));
}

TEST(ParseReport, BadFieldsAreCommandFailed)
{
    EXPECT_THAT(commandFailedMessage([] { parsePvs(R"({"report": [{"pv": [{"pv_name": "/dev/loop0"}]}]})"); }),
                HasSubstr("a row lacks \"vg_name\""));
    EXPECT_THAT(commandFailedMessage([] {
                    parseVgs(R"({"report":[{"vg":[{"vg_name":"a","vg_size":"1.5g","vg_free":"0",
                        "vg_extent_size":"1","vg_extent_count":"1","vg_free_count":"0","pv_count":"1"}]}]})");
                }),
                HasSubstr("\"vg_size\" is not a number: \"1.5g\""));
    EXPECT_THAT(commandFailedMessage([] {
                    parseVgs(R"({"report":[{"vg":[{"vg_name":"a","vg_size":"99999999999999999999","vg_free":"0",
                        "vg_extent_size":"1","vg_extent_count":"1","vg_free_count":"0","pv_count":"1"}]}]})");
                }),
                HasSubstr("\"vg_size\" is too large"));
    EXPECT_THAT(commandFailedMessage([] {
                    parseVgs(R"({"report":[{"vg":[{"vg_name":null,"vg_size":"1","vg_free":"0",
                        "vg_extent_size":"1","vg_extent_count":"1","vg_free_count":"0","pv_count":"1"}]}]})");
                }),
                HasSubstr("\"vg_name\" is not a string"));
    EXPECT_THAT(commandFailedMessage([] {
                    parseLvs(R"({"report":[{"lv":[{"lv_name":"a","vg_name":"v","lv_path":"","lv_dm_path":"",
                        "lv_size":"1","lv_kernel_major":"-2","lv_kernel_minor":"0","vg_free":"0",
                        "vg_extent_size":"1"}]}]})");
                }),
                HasSubstr("\"lv_kernel_major\" is not a number"));
    EXPECT_THAT(commandFailedMessage([] {
                    parseLvs(R"({"report":[{"lv":[{"lv_name":"a","vg_name":"v","lv_path":"","lv_dm_path":"",
                        "lv_size":"1","lv_kernel_major":"253","lv_kernel_minor":"99999999999","vg_free":"0",
                        "vg_extent_size":"1"}]}]})");
                }),
                HasSubstr("\"lv_kernel_minor\" is out of range"));
}

} // namespace
} // namespace lvkeeper::lvm

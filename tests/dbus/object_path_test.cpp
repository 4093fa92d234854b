// Volume object paths: one per mount point, whatever its bytes, and "/data" stays ".../volumes/data".
#include "lvkeeper/dbus.hpp"

#include <gtest/gtest.h>
#include <systemd/sd-bus.h>

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

using lvkeeper::dbus::volumeObjectPath;

namespace
{

const std::string prefix = "/org/lvkeeper/Keeper1/volumes";

std::string decoded(const std::string& path)
{
    char* label = nullptr;
    EXPECT_GT(sd_bus_path_decode(path.c_str(), prefix.c_str(), &label), 0) << path;
    std::string result = label ? label : "";
    std::free(label);
    return result;
}

} // namespace

TEST(VolumeObjectPath, KeepsTheReadableNames)
{
    EXPECT_EQ(volumeObjectPath("/data"), prefix + "/data");
    EXPECT_EQ(volumeObjectPath("/"), prefix + "/_");
    EXPECT_EQ(volumeObjectPath("/root"), prefix + "/root");
    EXPECT_EQ(volumeObjectPath("/srv/a-b"), prefix + "/srv_2fa_2db");
}

TEST(VolumeObjectPath, EveryMountPointGetsItsOwnValidPath)
{
    const std::vector<std::string> mountPoints = {
        "/",         "/root", "/_",     "/_2f", "/data",  "/data/",    "/data/x", "/data_x",
        "/data_2fx", "/a-b",  "/a_2db", "/0",   "/0data", "/_30data",  "/x y",    "/x\ty",
        "/\xc3\xa9", "/a\"b", "/a\nb",  "/a.b", "/a/b/c", "/a_2fb_2fc"};
    std::set<std::string> paths;
    for (const auto& mountPoint : mountPoints)
    {
        const std::string path = volumeObjectPath(mountPoint);
        EXPECT_TRUE(sd_bus_object_path_is_valid(path.c_str())) << path;
        // Decoding gives the mount point back (without its leading slash): the encoding is one-to-one.
        EXPECT_EQ("/" + decoded(path), mountPoint) << path;
        paths.insert(path);
    }
    EXPECT_EQ(paths.size(), mountPoints.size());
}

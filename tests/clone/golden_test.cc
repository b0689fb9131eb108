#include "dom0/clone/golden.h"

#include <gtest/gtest.h>

namespace lull::clone {
namespace {

TEST(Golden, DefaultsAndRelativeVolume) {
  GoldenConfig g;
  Status s = ParseGoldenConfig("[instance]\nname = \"db\"\nvcpus = 3\n[volume]\npath = \"v.img\"\n",
                               "g.toml", "/srv/x", &g);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(g.name, "db");
  EXPECT_EQ(g.vcpus, 3);
  EXPECT_EQ(g.max_vcpus, 8);
  EXPECT_EQ(g.volume_path, "/srv/x/v.img");
  EXPECT_DOUBLE_EQ(g.per_vcpu_rps(), 250.0);
}

TEST(Golden, RoundTripsThroughToml) {
  GoldenConfig a;
  a.name = "web-2";
  a.vcpus = 4;
  a.service_us = 2500;
  a.volume_path = "/abs/vol";
  GoldenConfig b;
  ASSERT_TRUE(ParseGoldenConfig(a.ToToml(), "rt", "", &b).ok());
  EXPECT_EQ(b.name, "web-2");
  EXPECT_EQ(b.vcpus, 4);
  EXPECT_EQ(b.service_us, 2500);
  EXPECT_EQ(b.volume_path, "/abs/vol");
}

void ExpectError(const std::string& text, const std::string& needle) {
  GoldenConfig g;
  g.name = "untouched";
  Status s = ParseGoldenConfig(text, "bad.toml", "", &g);
  ASSERT_FALSE(s.ok()) << text;
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("bad.toml"), std::string::npos) << s.message();
  EXPECT_EQ(g.name, "untouched");  // output untouched on error
}

TEST(Golden, BadInputNamesWhatIsWrong) {
  ExpectError("[instance]\nvcpuz = 2\n", "instance.vcpuz");
  ExpectError("[network]\nx = 1\n", "network");
  ExpectError("[instance]\nvcpus = \"two\"\n", "instance.vcpus must be an integer");
  ExpectError("[instance]\nvcpus = 9\nmax_vcpus = 8\n", "exceeds instance.max_vcpus");
  ExpectError("[instance]\nname = \"a b\"\n", "instance.name");
  ExpectError("[instance]\nburn_us = 5000\nservice_us = 4000\n", "instance.burn_us");
  ExpectError("[volume]\ncache_blocks = 10\nwarm_blocks = 20\n", "volume.warm_blocks");
  ExpectError("[instance]\nvcpus = 99999999999\n", "32 bits");
  ExpectError("[instance\nvcpus = 1\n", "line 1");
}

TEST(Golden, MissingFileIsNotFound) {
  GoldenConfig g;
  Status s = LoadGoldenConfig("/nonexistent/golden.toml", &g);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_NE(s.message().find("/nonexistent/golden.toml"), std::string::npos);
}

}  // namespace
}  // namespace lull::clone

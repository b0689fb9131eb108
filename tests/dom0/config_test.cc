// lulld's TOML configuration: defaults, overrides, and errors that name key and line.
#include <gtest/gtest.h>

#include "dom0/config.h"

namespace lull::dom0 {
namespace {

Status Parse(const std::string& text, LulldConfig* c) { return ParseConfig(text, "lulld.toml", c); }

TEST(Config, EmptyIsTheDefault) {
  LulldConfig c;
  ASSERT_TRUE(Parse("", &c).ok());
  EXPECT_EQ(c.pcpus, 16);
  EXPECT_EQ(c.guests, 32);
  EXPECT_EQ(c.engine.policy, Policy::kLull);
}

TEST(Config, ReadsEverySection) {
  LulldConfig c;
  Status s = Parse(R"(
[host]
pcpus = 8
[workload]
guests = 4
days = 0.5
[engine]
policy = "reactive"
control_period_s = 30
lease_period_s = 90
target_violation_rate = 0.05
[daemon]
socket = "/tmp/x.sock"
speed = 60
log = "journal"
[guests.guest2]
class = "critical"
)", &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.pcpus, 8);
  EXPECT_EQ(c.guests, 4);
  EXPECT_DOUBLE_EQ(c.days, 0.5);
  EXPECT_EQ(c.engine.policy, Policy::kReactive);
  EXPECT_DOUBLE_EQ(c.engine.control_period_s, 30);
  EXPECT_DOUBLE_EQ(c.engine.tuner.target_violation_rate, 0.05);
  EXPECT_EQ(c.socket, "/tmp/x.sock");
  EXPECT_EQ(c.log, "journal");
  EXPECT_EQ(c.guest_class.at("guest2"), PriorityClass::kCritical);
  // And it round-trips through lullctl config's TOML.
  LulldConfig d;
  ASSERT_TRUE(Parse(ConfigToToml(c), &d).ok());
  EXPECT_EQ(d.pcpus, 8);
  EXPECT_EQ(d.guest_class.at("guest2"), PriorityClass::kCritical);
}

struct Bad { const char* text; const char* expect; };

TEST(Config, ErrorsNameTheKeyAndTheLine) {
  const Bad cases[] = {
      {"[host]\npcpus = \"many\"\n", "lulld.toml:2: host.pcpus must be a number"},
      {"[host]\n\npcpus = -3\n", "lulld.toml:3: host.pcpus = -3: must be in [0, 4096]"},
      {"[engine]\npolicy = \"greedy\"\n", "lulld.toml:2: engine.policy = \"greedy\": must be none, reactive, lull or oracle"},
      {"[engine]\ncontrol_period_s = 60\nlease_period_s = 30\n", "lulld.toml:3: engine.lease_period_s = 30"},
      {"[engine]\nlease_perod_s = 30\n", "lulld.toml:2: unknown key engine.lease_perod_s"},
      {"[hots]\npcpus = 3\n", "lulld.toml:1: unknown section [hots]"},
      {"[workload]\nguests = 2.5\n", "lulld.toml:2: workload.guests must be an integer"},
      {"[daemon]\nlog = \"syslog\"\n", "lulld.toml:2: daemon.log = \"syslog\""},
      {"[guests.web1]\nclass = \"gold\"\n", "lulld.toml:2: guests.web1.class = \"gold\""},
      {"[guests.web1]\nweight = 3\n", "lulld.toml:2: unknown key guests.web1.weight"},
      {"[host]\npcpus = = 3\n", "lulld.toml:2:"},
      {"[host]\nbackend = \"kvm\"\n", "lulld.toml:2: host.backend = \"kvm\""},
      // std::stoi read "9477x" as 9477 and " 80" as 80.
      {"[daemon]\nmetrics_listen = \"127.0.0.1:9477x\"\n",
       "lulld.toml:2: daemon.metrics_listen = \"127.0.0.1:9477x\": port '9477x' is not a number in 0..65535"},
      {"[daemon]\nmetrics_listen = \"127.0.0.1: 80\"\n", "port ' 80' is not"},
      {"[daemon]\nmetrics_listen = \"127.0.0.1:65536\"\n", "port '65536' is not"},
      {"[daemon]\nmetrics_listen = \"localhost\"\n", "daemon.metrics_listen = \"localhost\": not host:port"},
  };
  for (const auto& b : cases) {
    LulldConfig c;
    Status s = Parse(b.text, &c);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << b.text;
    EXPECT_NE(s.message().find(b.expect), std::string::npos) << "got: " << s.message() << "\nwant: " << b.expect;
  }
}

TEST(Config, ValidateChecksTheFileRangesOnValuesSetInCode) {
  LulldConfig c;
  ASSERT_TRUE(ValidateConfig(c).ok());
  c.speed = -5;
  Status s = ValidateConfig(c);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("daemon.speed = -5: must be in [0, 1e+09]"), std::string::npos)
      << s.message();
  c = LulldConfig{};
  c.engine.window_periods = 13;
  s = ValidateConfig(c);
  EXPECT_NE(s.message().find("engine.window_periods = 13"), std::string::npos) << s.message();
  double lo = 0, hi = 0;
  ASSERT_TRUE(ConfigRange("host.step_s", &lo, &hi));
  EXPECT_EQ(lo, 0.01);
  EXPECT_EQ(hi, 60);
  EXPECT_FALSE(ConfigRange("daemon.socket", &lo, &hi)) << "a string has no range";
  EXPECT_FALSE(ConfigRange("no.such_key", &lo, &hi));
}

TEST(Config, MissingFileIsAnIoError) {
  LulldConfig c;
  Status s = LoadConfigFile("/nonexistent/lulld.toml", &c);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("/nonexistent/lulld.toml"), std::string::npos);
}

}  // namespace
}  // namespace lull::dom0

namespace lull::dom0 {
namespace {

TEST(Config, TheShippedExampleIsValid) {
  LulldConfig c;
  Status s = LoadConfigFile(LULL_SOURCE_DIR "/dom0/lulld.toml", &c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.socket, "/run/lulld/lulld.sock");
  EXPECT_DOUBLE_EQ(c.engine.lease_period_s, 180);
}

}  // namespace
}  // namespace lull::dom0

// The Xen back end's golden xl config (parsed with libxlutil) and what lull-clone --xen
// says off Xen. The domain operations themselves run in tests/xen/dom0-stock-clone.sh.
#include "dom0/clone/xen_instance.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace lull::clone {
namespace {

const char* kGolden = R"(# a golden image
name = "web"
type = "pv"
kernel = "/guest/vmlinux"
ramdisk = "/guest/initrd.gz"
cmdline = "console=hvc0 quiet"
memory = 64
maxmem = 96
vcpus = 1
maxvcpus = 2
on_crash = "destroy"
)";

TEST(XenGolden, ParsesTheKeysXlUses) {
  XenGolden g;
  Status s = ParseXenGolden(kGolden, "web.cfg", &g);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(g.name, "web");
  EXPECT_EQ(g.kernel, "/guest/vmlinux");
  EXPECT_EQ(g.ramdisk, "/guest/initrd.gz");
  EXPECT_EQ(g.cmdline, "console=hvc0 quiet");
  EXPECT_EQ(g.memory_mib, 64);
  EXPECT_EQ(g.maxmem_mib, 96);
  EXPECT_EQ(g.vcpus, 1);
  EXPECT_EQ(g.max_vcpus, 2);
}

TEST(XenGolden, DefaultsFollowMemoryAndVcpus) {
  XenGolden g;
  Status s = ParseXenGolden("name=\"db\"\nkernel=\"/k\"\nmemory=128\nvcpus=3\nextra=\"x=1\"\n", "db.cfg", &g);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(g.maxmem_mib, 128);
  EXPECT_EQ(g.max_vcpus, 3);
  EXPECT_EQ(g.cmdline, "x=1");
  EXPECT_TRUE(g.ramdisk.empty());
}

void ExpectError(const std::string& text, const std::string& needle) {
  XenGolden g;
  g.name = "untouched";
  Status s = ParseXenGolden(text, "bad.cfg", &g);
  ASSERT_FALSE(s.ok()) << text;
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("bad.cfg"), std::string::npos) << s.message();
  EXPECT_EQ(g.name, "untouched");
}

TEST(XenGolden, BadInputNamesFileAndKey) {
  const std::string base = "name=\"web\"\nkernel=\"/k\"\nmemory=64\n";
  ExpectError("name=\"web\"\nmemory=64\n", "kernel: missing");
  ExpectError("name=\"web\"\nkernel=\"/k\"\n", "memory: missing");
  ExpectError(base + "type=\"hvm\"\n", "type: 'hvm' is not supported");
  ExpectError(base + "disk=[\"phy:/dev/x,xvda,w\"]\n", "disk: not supported");
  ExpectError(base + "vif=[\"bridge=xenbr0\"]\n", "vif: not supported");
  ExpectError(base + "maxmem=32\n", "maxmem: 32 is below memory 64");
  ExpectError(base + "vcpus=4\nmaxvcpus=2\n", "maxvcpus: 2 is below vcpus 4");
  ExpectError(base + "vcpus=0\n", "vcpus: 0 is out of range");
  ExpectError("name=\"web\"\nkernel=\"/k\"\nmemory=\"lots\"\n", "memory: must be a whole number");
  ExpectError("name=\"a b\"\nkernel=\"/k\"\nmemory=64\n", "name: 'a b' is not");
  ExpectError("name=\"web\" kernel=\n", "not an xl config");
}

TEST(XenGolden, MissingFileIsNotFound) {
  XenGolden g;
  Status s = LoadXenGolden("/nonexistent/web.cfg", &g);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_NE(s.message().find("/nonexistent/web.cfg"), std::string::npos);
}

// Runs the CLI; returns its exit status, stdout+stderr in *out.
int Cli(const std::string& args, std::string* out) {
  std::string cmd = std::string(LULL_CLONE_CLI) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[512];
  out->clear();
  while (fgets(buf, sizeof buf, p)) *out += buf;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(XenCli, VerbsNeedXenAndSayWhyOffXen) {
  std::string out;
  EXPECT_EQ(1, Cli("activate web", &out));
  EXPECT_NE(out.find("needs --xen"), std::string::npos) << out;
  EXPECT_EQ(1, Cli("--xen serve", &out));
  EXPECT_NE(out.find("serve is the process pool's"), std::string::npos) << out;
  EXPECT_EQ(1, Cli("--xen clones", &out));
  EXPECT_NE(out.find("needs DOMAIN"), std::string::npos) << out;
  if (access("/proc/xen/capabilities", R_OK) == 0 || access("/dev/xen/privcmd", F_OK) == 0)
    GTEST_SKIP() << "this host runs on Xen; the off-Xen message is not what it prints";
  EXPECT_EQ(1, Cli("--xen memshr", &out));
  EXPECT_NE(out.find("not a Xen dom0"), std::string::npos) << out;
  EXPECT_EQ(1, Cli("--xen clones web", &out));
  EXPECT_NE(out.find("not a Xen dom0"), std::string::npos) << out;
}

}  // namespace
}  // namespace lull::clone

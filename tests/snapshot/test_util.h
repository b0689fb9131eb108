// Helpers for the snapshot tests: a scratch directory that is removed even when a test
// fails, and a process-backed guest memory holding the kv store.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dom0/snapshot/workload.h"

namespace lull::snapshot {

class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/lull-snapshot-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::vector<uint8_t> MakeKvGuest(uint64_t mib, uint64_t seed = 1) {
  std::vector<uint8_t> m(mib << 20);
  KvConfig kc;
  kc.seed = seed;
  Status s = KvBuild(m.data(), m.size(), kc, nullptr);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

inline void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

inline uint64_t FileSize(const std::string& path) {
  return std::filesystem::file_size(path);
}

}  // namespace lull::snapshot

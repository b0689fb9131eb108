// Shared set-up of the clone benchmarks: a work directory under /tmp with a golden
// config and its volume, removed at exit.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "dom0/clone/block_cache.h"
#include "dom0/clone/golden.h"
#include "dom0/clone/pool.h"

namespace lull::clone::bench {

// The golden image of the benchmarks and tests: "web", 2 vCPUs (max 8), a request holds a
// vCPU for service_us of which burn_us is CPU; cache and warm-up sizes in blocks.
inline GoldenConfig MakeGolden(int service_us, int burn_us, int cache_blocks, int warm_blocks) {
  GoldenConfig g;
  g.name = "web";
  g.vcpus = 2;
  g.max_vcpus = 8;
  g.service_us = service_us;
  g.burn_us = burn_us;
  g.cache_blocks = cache_blocks;
  g.warm_blocks = warm_blocks;
  return g;
}

class BenchDir {
 public:
  explicit BenchDir(const char* tag) {
    std::string t = std::string("/tmp/lull-clone-") + tag + "-XXXXXX";
    if (mkdtemp(t.data())) dir_ = t;
  }
  ~BenchDir() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return dir_; }
  // Writes golden.toml (volume beside it, 16 MiB) and fills *pc for a pool of `domain`.
  Status Prepare(GoldenConfig g, int shadow_vcpus, PoolConfig* pc) const {
    if (dir_.empty()) return Status::IoError("cannot create a work directory under /tmp");
    g.volume_path = dir_ + "/volume.img";
    Status s = EnsureVolume(g.volume_path, g.block_size, 16 * 1024 * 1024 / g.block_size);
    if (!s.ok()) return s;
    std::ofstream(dir_ + "/golden.toml") << g.ToToml();
    pc->domain = g.name;
    pc->dir = dir_;
    pc->golden_path = dir_ + "/golden.toml";
    pc->backend_path = LULL_CLONE_BACKEND;
    pc->shadow_vcpus = shadow_vcpus;
    return Status::Ok();
  }

 private:
  std::string dir_;
};

}  // namespace lull::clone::bench

// lull::clone::GoldenConfig - the golden image a shadow instance is built from.
//
// On Xen a golden image is a paused domain (or the primary, for xc_memshr_fork) plus
// its hardware profile; here it is the configuration a process-backed instance
// (lull-clone-backend) starts from. A TOML file:
//
//   [instance]
//   name = "web"          # [A-Za-z0-9_-]{1,32}
//   vcpus = 2             # vCPU slots at start; each serves one request at a time
//   max_vcpus = 8         # a shadow may be resized up to this (its hardware profile)
//   memory_mb = 512       # recorded profile; the process does not enforce it
//   service_us = 4000     # time a request holds a vCPU slot
//   burn_us = 200         # of which real CPU work (the rest models vCPU time: the host
//                         # has 2 cores shared by HAProxy, wrk and every instance)
//   [volume]
//   path = "volume.img"   # the shared volume; relative to the config file's folder
//   block_size = 4096
//   cache_blocks = 1024   # the block cache in front of the volume; 0 = none
//   warm_blocks = 256     # blocks read into the cache before the instance is "warm"
//
// Missing keys take these defaults; an unknown key, a wrong type or an out-of-range value
// is an InvalidArgument naming the file and the key.
#pragma once

#include <string>

#include "forecast/status.h"

namespace lull::clone {

struct GoldenConfig {
  std::string name = "web";
  int vcpus = 2;
  int max_vcpus = 8;
  int memory_mb = 512;
  int service_us = 4000;
  int burn_us = 200;
  std::string volume_path = "volume.img";
  int block_size = 4096;
  int cache_blocks = 1024;
  int warm_blocks = 256;

  // Requests per second one vCPU serves when saturated.
  double per_vcpu_rps() const { return 1e6 / service_us; }
  // Checks ranges and relations (vcpus <= max_vcpus, burn_us <= service_us, ...).
  Status Validate() const;
  // The TOML text of this config (volume path written as is).
  std::string ToToml() const;
};

// A domain or instance name: 1-32 characters of [A-Za-z0-9_-]. It is a single word in
// the control socket's text protocol and in shadow names ("web-s1"), so nothing else is.
bool ValidInstanceName(const std::string& name);

Status LoadGoldenConfig(const std::string& path, GoldenConfig* out);
Status ParseGoldenConfig(const std::string& text, const std::string& origin,
                         const std::string& base_dir, GoldenConfig* out);

}  // namespace lull::clone

#include "dom0/clone/golden.h"

#include <toml++/toml.h>

#include <fstream>
#include <set>
#include <sstream>

namespace lull::clone {

namespace {

Status Range(const std::string& key, long long v, long long lo, long long hi) {
  if (v < lo || v > hi) {
    return Status::InvalidArgument(key + " = " + std::to_string(v) + " is out of range [" +
                                   std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return Status::Ok();
}

}  // namespace

bool ValidInstanceName(const std::string& n) {
  if (n.empty() || n.size() > 32) return false;
  for (char c : n) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

Status GoldenConfig::Validate() const {
  if (!ValidInstanceName(name)) {
    return Status::InvalidArgument("instance.name '" + name +
                                   "' must be 1-32 characters of [A-Za-z0-9_-]");
  }
  Status s;
  if (!(s = Range("instance.vcpus", vcpus, 1, 64)).ok()) return s;
  if (!(s = Range("instance.max_vcpus", max_vcpus, 1, 64)).ok()) return s;
  if (vcpus > max_vcpus) {
    return Status::InvalidArgument("instance.vcpus = " + std::to_string(vcpus) +
                                   " exceeds instance.max_vcpus = " + std::to_string(max_vcpus));
  }
  if (!(s = Range("instance.memory_mb", memory_mb, 16, 1 << 20)).ok()) return s;
  if (!(s = Range("instance.service_us", service_us, 10, 10'000'000)).ok()) return s;
  if (!(s = Range("instance.burn_us", burn_us, 0, service_us)).ok()) return s;
  if (volume_path.empty()) return Status::InvalidArgument("volume.path is empty");
  if (!(s = Range("volume.block_size", block_size, 512, 1 << 20)).ok()) return s;
  if (!(s = Range("volume.cache_blocks", cache_blocks, 0, 1 << 22)).ok()) return s;
  if (!(s = Range("volume.warm_blocks", warm_blocks, 0, cache_blocks)).ok()) return s;
  return Status::Ok();
}

std::string GoldenConfig::ToToml() const {
  std::ostringstream o;
  o << "[instance]\nname = \"" << name << "\"\nvcpus = " << vcpus << "\nmax_vcpus = "
    << max_vcpus << "\nmemory_mb = " << memory_mb << "\nservice_us = " << service_us
    << "\nburn_us = " << burn_us << "\n[volume]\npath = \"" << volume_path
    << "\"\nblock_size = " << block_size << "\ncache_blocks = " << cache_blocks
    << "\nwarm_blocks = " << warm_blocks << "\n";
  return o.str();
}

Status ParseGoldenConfig(const std::string& text, const std::string& origin,
                         const std::string& base_dir, GoldenConfig* out) {
  // Debian's toml++ is a shared library built with exceptions: catch here, so none
  // crosses the module boundary.
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(origin + " line " + std::to_string(e.source().begin.line) +
                                   ": " + std::string(e.description()));
  }
  GoldenConfig c;
  static const std::set<std::string> kInstance = {"name", "vcpus", "max_vcpus", "memory_mb",
                                                  "service_us", "burn_us"};
  static const std::set<std::string> kVolume = {"path", "block_size", "cache_blocks",
                                                "warm_blocks"};
  for (const auto& [k, v] : root) {
    std::string key(k.str());
    const std::set<std::string>* allowed =
        key == "instance" ? &kInstance : key == "volume" ? &kVolume : nullptr;
    if (!allowed || !v.is_table()) {
      return Status::InvalidArgument(origin + ": unknown section '" + key +
                                     "' (expected [instance] and [volume])");
    }
    for (const auto& [k2, v2] : *v.as_table()) {
      std::string full = key + "." + std::string(k2.str());
      if (!allowed->count(std::string(k2.str()))) {
        return Status::InvalidArgument(origin + ": unknown key '" + full + "'");
      }
      if (full == "instance.name" || full == "volume.path") {
        if (!v2.is_string()) {
          return Status::InvalidArgument(origin + ": " + full + " must be a string");
        }
        std::string sv = std::string(*v2.value<std::string>());
        if (full == "instance.name") c.name = sv;
        else c.volume_path = (sv.empty() || sv[0] == '/' || base_dir.empty()) ? sv
                                                                             : base_dir + "/" + sv;
        continue;
      }
      if (!v2.is_integer()) {
        return Status::InvalidArgument(origin + ": " + full + " must be an integer");
      }
      long long iv = *v2.value<long long>();
      if (iv < -(1LL << 31) || iv > (1LL << 31) - 1) {
        return Status::InvalidArgument(origin + ": " + full + " = " + std::to_string(iv) +
                                       " does not fit in 32 bits");
      }
      int i = static_cast<int>(iv);
      if (full == "instance.vcpus") c.vcpus = i;
      else if (full == "instance.max_vcpus") c.max_vcpus = i;
      else if (full == "instance.memory_mb") c.memory_mb = i;
      else if (full == "instance.service_us") c.service_us = i;
      else if (full == "instance.burn_us") c.burn_us = i;
      else if (full == "volume.block_size") c.block_size = i;
      else if (full == "volume.cache_blocks") c.cache_blocks = i;
      else if (full == "volume.warm_blocks") c.warm_blocks = i;
    }
  }
  Status s = c.Validate();
  if (!s.ok()) return Status::InvalidArgument(origin + ": " + s.message());
  *out = c;
  return Status::Ok();
}

Status LoadGoldenConfig(const std::string& path, GoldenConfig* out) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("golden config " + path + " cannot be opened");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  return ParseGoldenConfig(ss.str(), path, dir, out);
}

}  // namespace lull::clone

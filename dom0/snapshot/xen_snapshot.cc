#include "dom0/snapshot/xen_snapshot.h"

#include <sys/stat.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace lull::snapshot {

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string PfnText(uint64_t p) {
  char b[32];
  std::snprintf(b, sizeof b, "pfn 0x%" PRIx64, p);
  return b;
}

}  // namespace

Status CaptureXen(xen::XenCalls* xc, uint32_t domid, const std::string& dir,
                  const WriteOptions& opt, XenCaptureReport* report) {
  *report = {};
  xen::DomainInfo info;
  if (Status s = xc->GetDomain(domid, &info); !s.ok()) return s;
  double t0 = Now();
  if (!info.paused) {
    if (Status s = xc->Pause(domid); !s.ok()) return s;
    report->paused_by_us = true;
  }
  std::unique_ptr<xen::DomainMemory> mem;
  Status st = xen::DomainMemory::Open(xc, domid, xen::DomainMemory::Access::kRead, &mem);
  if (st.ok()) {
    report->pages = mem->pages();
    report->present = mem->present_pages();
    st = WriteSnapshot(dir, mem->data(), mem->pages(), opt, &report->write);
  }
  mem.reset();
  if (report->paused_by_us) {
    Status u = xc->Unpause(domid);
    report->paused_seconds = Now() - t0;
    if (st.ok() && !u.ok()) st = u;
  }
  return st;
}

Status RestoreXen(xen::XenCalls* xc, const SnapshotChain& chain, uint32_t domid,
                  XenRestoreReport* report) {
  *report = {};
  const double t0 = Now();
  xen::DomainInfo info;
  if (Status s = xc->GetDomain(domid, &info); !s.ok()) return s;
  if (!info.paused)
    return Status::InvalidArgument("domain " + std::to_string(domid) +
                                   " is running; pause it first (xl pause) - its memory must not "
                                   "change under the restore");
  std::unique_ptr<xen::DomainMemory> mem;
  if (Status s = xen::DomainMemory::Open(xc, domid, xen::DomainMemory::Access::kWrite, &mem); !s.ok())
    return s;
  const uint64_t n = mem->pages();
  if (n != chain.guest_pages())
    return Status::InvalidArgument("domain " + std::to_string(domid) + " has " + std::to_string(n) +
                                   " pfns, the snapshot " + chain.newest().path + " holds " +
                                   std::to_string(chain.guest_pages()));
  report->pages = n;
  // 1. Stage and check everything before any write.
  std::vector<uint8_t> img(n * kPageBytes);
  for (uint64_t p = 0; p < n; ++p) {
    uint64_t rb = 0;
    uint8_t* page = img.data() + p * kPageBytes;
    if (Status s = chain.ReadPage(p, page, &rb); !s.ok()) return s;
    report->bytes_read += rb;
    if (!(PageHash(page) == chain.page_hash(p)))
      return Status::Corruption(chain.newest().path + ": page " + std::to_string(p) +
                                " does not match its manifest hash");
  }
  // 2. What cannot be written must already be right.
  for (uint64_t p = 0; p < n; ++p) {
    const uint8_t* want = img.data() + p * kPageBytes;
    if (!mem->present(p)) {
      if (!IsZeroPage(want))
        return Status::InvalidArgument("domain " + std::to_string(domid) + ": " + PfnText(p) +
                                       " has no frame, but the snapshot holds data for it");
      ++report->absent;
    } else if (!mem->writable(p)) {
      if (std::memcmp(mem->data() + p * kPageBytes, want, kPageBytes) != 0)
        return Status::Unavailable("domain " + std::to_string(domid) + ": " + PfnText(p) +
                                   " is a page Xen keeps read-only (a PV page table or descriptor "
                                   "table) and differs from the snapshot; restoring it needs MMU "
                                   "updates, which this backend does not do. Nothing was written.");
      ++report->read_only_same;
    }
  }
  // 3. Write.
  for (uint64_t p = 0; p < n; ++p) {
    if (!mem->present(p) || !mem->writable(p)) continue;
    const uint8_t* src = img.data() + p * kPageBytes;
    if (std::memcmp(mem->data() + p * kPageBytes, src, kPageBytes) != 0) ++report->changed;
    std::memcpy(mem->writable_data() + p * kPageBytes, src, kPageBytes);
    ++report->written;
  }
  // 4. Read back and verify.
  for (uint64_t p = 0; p < n; ++p) {
    if (!(PageHash(mem->data() + p * kPageBytes) == chain.page_hash(p)))
      return Status::Corruption("domain " + std::to_string(domid) + ": " + PfnText(p) +
                                " reads back with a different hash than the snapshot's after the restore");
    ++report->verified;
  }
  report->seconds = Now() - t0;
  return Status::Ok();
}

namespace {

int Usage(const char* why) {
  std::fprintf(stderr,
               "lull-snapshot: %s\n"
               "usage: lull-snapshot snapshot --xen DOMID [--dir D] [--base]\n"
               "       lull-snapshot restore FILE --xen DOMID\n",
               why);
  return 2;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "lull-snapshot: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

bool RunXenCommand(int argc, char** argv, int* exit_code) {
  std::vector<std::string> a(argv + 1, argv + argc);
  bool has_xen = false;
  for (const auto& x : a) has_xen |= x == "--xen";
  if (a.empty() || !has_xen || (a[0] != "snapshot" && a[0] != "restore")) return false;
  const bool snap = a[0] == "snapshot";
  std::string dom_text, dir, file;
  bool base = false;
  for (size_t i = 1; i < a.size(); ++i) {
    if (a[i] == "--xen" && i + 1 < a.size()) dom_text = a[++i];
    else if (snap && a[i] == "--dir" && i + 1 < a.size()) dir = a[++i];
    else if (snap && a[i] == "--base") base = true;
    else if (!snap && file.empty() && a[i][0] != '-') file = a[i];
    else return *exit_code = Usage(("unexpected argument '" + a[i] + "' with --xen").c_str()), true;
  }
  uint32_t domid = 0;
  if (Status s = xen::ParseDomid(dom_text, &domid); !s.ok())
    return *exit_code = Usage(s.message().c_str()), true;
  if (!snap && file.empty()) return *exit_code = Usage("restore: FILE is required"), true;
  std::unique_ptr<xen::XenCalls> xc;
  if (Status s = xen::OpenXen(&xc); !s.ok()) return *exit_code = Fail(s), true;
  if (snap) {
    if (dir.empty()) {
      dir = "/var/lib/lull/snapshot/xen-" + std::to_string(domid);
      ::mkdir("/var/lib/lull", 0755);
      ::mkdir("/var/lib/lull/snapshot", 0755);
    }
    WriteOptions wo;
    wo.force_base = base;
    XenCaptureReport r;
    if (Status s = CaptureXen(xc.get(), domid, dir, wo, &r); !s.ok()) return *exit_code = Fail(s), true;
    std::printf("%s: generation %llu (%s) of xen domain %u: %llu pages (%llu with a frame), "
                "%llu chunks written, %llu deduped, %llu zero, %.1f MiB on disk; guest paused %.3f s%s\n",
                r.write.path.c_str(), (unsigned long long)r.write.generation,
                r.write.base ? "base" : "increment", domid, (unsigned long long)r.pages,
                (unsigned long long)r.present, (unsigned long long)r.write.chunks_written,
                (unsigned long long)r.write.dedup_pages, (unsigned long long)r.write.zero_pages,
                double(r.write.file_bytes) / (1 << 20), r.paused_seconds,
                r.paused_by_us ? "" : " (was paused already)");
    *exit_code = 0;
    return true;
  }
  std::unique_ptr<SnapshotChain> chain;
  if (Status s = SnapshotChain::Open(file, &chain); !s.ok()) return *exit_code = Fail(s), true;
  XenRestoreReport r;
  if (Status s = RestoreXen(xc.get(), *chain, domid, &r); !s.ok()) return *exit_code = Fail(s), true;
  std::printf("restored %s into xen domain %u: %llu pages, %llu written (%llu changed), %llu read-only "
              "already equal, %llu without a frame, %llu verified, %.1f MiB read, %.3f s\n",
              file.c_str(), domid, (unsigned long long)r.pages, (unsigned long long)r.written,
              (unsigned long long)r.changed, (unsigned long long)r.read_only_same,
              (unsigned long long)r.absent, (unsigned long long)r.verified,
              double(r.bytes_read) / (1 << 20), r.seconds);
  *exit_code = 0;
  return true;
}

}  // namespace lull::snapshot

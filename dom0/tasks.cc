#include "dom0/tasks.h"

#include <algorithm>
#include <cmath>

namespace lull::dom0 {

const char* TaskKindName(TaskKind k) {
  switch (k) {
    case TaskKind::kBackup: return "backup";
    case TaskKind::kSnapshot: return "snapshot";
    case TaskKind::kMigration: return "migration";
    case TaskKind::kScrub: return "scrub";
  }
  return "?";
}

bool ParseTaskKind(const std::string& s, TaskKind* out) {
  if (s == "backup") *out = TaskKind::kBackup;
  else if (s == "snapshot") *out = TaskKind::kSnapshot;
  else if (s == "migration") *out = TaskKind::kMigration;
  else if (s == "scrub") *out = TaskKind::kScrub;
  else return false;
  return true;
}

Status TaskQueue::Add(Task t, uint64_t* id) {
  if (!(t.cpu_s > 0)) return Status::InvalidArgument("task cpu_s must be > 0");
  if (!(t.mem_gib >= 0)) return Status::InvalidArgument("task mem_gib must be >= 0");
  if (t.max_cpus < 1) return Status::InvalidArgument("task max_cpus must be >= 1");
  if (t.deadline_ns <= t.arrival_ns) return Status::InvalidArgument("task deadline must be after its arrival");
  if (t.id == 0) t.id = next_id_++;
  else next_id_ = std::max(next_id_, t.id + 1);
  if (index_.count(t.id)) return Status::AlreadyExists("task " + std::to_string(t.id) + " exists");
  if (id) *id = t.id;
  index_[t.id] = tasks_.size();
  tasks_.push_back(std::move(t));
  pending_dirty_ = true;
  return Status::Ok();
}

Status TaskQueue::Cancel(uint64_t id) {
  for (auto it = tasks_.begin(); it != tasks_.end(); ++it) {
    if (it->id != id) continue;
    if (it->leases > 0) return Status::Unavailable("task " + std::to_string(id) + " is running; revoke its leases first");
    tasks_.erase(it);
    index_.clear();
    for (size_t i = 0; i < tasks_.size(); ++i) index_[tasks_[i].id] = i;
    pending_dirty_ = true;
    return Status::Ok();
  }
  return Status::NotFound("task " + std::to_string(id) + " does not exist");
}

void TaskQueue::Reprioritize(uint64_t now_ns, double lendable_cpus) {
  for (auto& t : tasks_) {
    if (t.completed_ns) continue;
    double base = t.kind == TaskKind::kMigration ? 4 : t.kind == TaskKind::kSnapshot ? 3
                : t.kind == TaskKind::kBackup ? 2 : 1;
    double left_s = (static_cast<double>(t.deadline_ns) - static_cast<double>(now_ns)) / 1e9;
    double remaining = t.cpu_s - t.done_cpu_s;
    // Time this task needs at the rate it can get, against the time it has left.
    double rate = std::max(0.1, std::min<double>(t.max_cpus, lendable_cpus));
    double urgency = left_s <= 0 ? 10.0 : std::min(10.0, remaining / rate / left_s);
    t.priority = base * (1.0 + 3.0 * urgency);
  }
  pending_dirty_ = true;
}

const std::vector<Task*>& TaskQueue::Pending() {
  if (!pending_dirty_) return pending_;
  pending_.clear();
  for (auto& t : tasks_) if (!t.completed_ns) pending_.push_back(&t);
  std::stable_sort(pending_.begin(), pending_.end(), [](Task* a, Task* b) {
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->arrival_ns < b->arrival_ns;
  });
  pending_dirty_ = false;
  return pending_;
}

Task* TaskQueue::Find(uint64_t id) {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &tasks_[it->second];
}

bool TaskQueue::Credit(uint64_t id, double cpu_s, uint64_t now_ns) {
  Task* t = Find(id);
  if (!t || t->completed_ns) return false;
  t->done_cpu_s += cpu_s;
  if (t->done_cpu_s + 1e-9 >= t->cpu_s) {
    t->done_cpu_s = t->cpu_s;
    t->completed_ns = std::max<uint64_t>(now_ns, 1);
    pending_dirty_ = true;
    return true;
  }
  return false;
}

size_t TaskQueue::pending_count() const {
  size_t n = 0;
  for (auto& t : tasks_) n += t.completed_ns == 0;
  return n;
}

void GenerateTasks(int guests, double duration_s, uint64_t seed, std::vector<Task>* out) {
  out->clear();
  uint64_t s = seed * 0x2545F4914F6CDD1DULL + 77;
  auto uni = [&s]() {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    return (s >> 11) * (1.0 / 9007199254740992.0);
  };
  const uint64_t kS = 1000000000ULL;
  auto at = [&](double t) { return static_cast<uint64_t>(t * 1e9); };
  for (int g = 0; g < guests; ++g) {
    std::string name = "guest" + std::to_string(g + 1);
    // Nightly backup: a full copy with compression and checksums (CPU-heavy).
    double t = std::fmod(uni() * 21600.0, std::max(1.0, duration_s));
    for (; t < duration_s; t += 86400) {
      Task b; b.kind = TaskKind::kBackup; b.target = name;
      b.cpu_s = 3600 + uni() * 7200; b.mem_gib = 0.5; b.max_cpus = 2;
      b.arrival_ns = at(t); b.deadline_ns = at(t) + 12 * 3600 * kS;
      out->push_back(b);
    }
    // Snapshots every 4 hours.
    for (double ts = uni() * 14400; ts < duration_s; ts += 14400) {
      Task sn; sn.kind = TaskKind::kSnapshot; sn.target = name;
      sn.cpu_s = 300 + uni() * 300; sn.mem_gib = 1.0; sn.max_cpus = 1;
      sn.arrival_ns = at(ts); sn.deadline_ns = at(ts) + 2 * 3600 * kS;
      out->push_back(sn);
    }
  }
  // Migrations (rebalancing), memory-hungry.
  for (double t = 0; t < duration_s; t += 7200) {
    Task m; m.kind = TaskKind::kMigration; m.target = "guest" + std::to_string(1 + static_cast<int>(uni() * guests));
    m.cpu_s = 1200 + uni() * 1200; m.mem_gib = 2.0; m.max_cpus = 2;
    m.arrival_ns = at(t + uni() * 3600); m.deadline_ns = m.arrival_ns + 4 * 3600 * kS;
    out->push_back(m);
  }
  // Host memory scrub: a long background job every half hour.
  for (double t = 0; t < duration_s; t += 1800) {
    Task sc; sc.kind = TaskKind::kScrub; sc.target = "host";
    sc.cpu_s = 7200; sc.mem_gib = 0.25; sc.max_cpus = 4;
    sc.arrival_ns = at(t); sc.deadline_ns = at(t) + 8 * 3600 * kS;
    out->push_back(sc);
  }
  std::stable_sort(out->begin(), out->end(), [](const Task& a, const Task& b) { return a.arrival_ns < b.arrival_ns; });
}

}  // namespace lull::dom0

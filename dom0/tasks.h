// lull::dom0::TaskQueue - management work waiting for lent capacity.
//
// Real kinds of work (backup copy, snapshot, migration, memory scrub), each with the
// CPU-seconds it needs, the memory it holds while running, how many CPUs it can use at
// once, and a deadline. The queue is re-prioritised every control period from the kind's
// base priority and its urgency: the remaining work against the time left and the
// capacity predicted to be lendable; a task past its deadline outranks everything of its
// kind. Not thread-safe; the engine owns it.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "forecast/status.h"

namespace lull::dom0 {

enum class TaskKind { kBackup, kSnapshot, kMigration, kScrub };
const char* TaskKindName(TaskKind k);
bool ParseTaskKind(const std::string& s, TaskKind* out);

struct Task {
  uint64_t id = 0;
  TaskKind kind = TaskKind::kBackup;
  std::string target;          // which guest or resource it works on
  double cpu_s = 0;            // total work
  double mem_gib = 0;          // held while running
  int max_cpus = 1;            // parallelism
  uint64_t arrival_ns = 0, deadline_ns = 0;
  // State.
  double done_cpu_s = 0;
  double priority = 0;
  int leases = 0;              // active leases feeding it
  uint64_t completed_ns = 0;   // 0 = not done
};

class TaskQueue {
 public:
  // Validates (cpu_s > 0, mem >= 0, max_cpus >= 1, deadline after arrival) and assigns an
  // id when task.id == 0.
  Status Add(Task task, uint64_t* id = nullptr);
  Status Cancel(uint64_t id);
  // `lendable_cpus`: what the engine predicts it can lend over the coming window.
  void Reprioritize(uint64_t now_ns, double lendable_cpus);
  // Pending (not completed) tasks, highest priority first. Cached: rebuilt only after
  // Add, Cancel, Reprioritize or a completion, so the engine may call it every poll.
  // The reference (and the pointers) stay valid until the next of those.
  const std::vector<Task*>& Pending();
  Task* Find(uint64_t id);  // O(1): the engine credits every lease every poll
  // Credits work and marks completion; returns true when the task just completed.
  bool Credit(uint64_t id, double cpu_s, uint64_t now_ns);

  const std::vector<Task>& all() const { return tasks_; }
  size_t pending_count() const;

 private:
  std::vector<Task> tasks_;
  std::unordered_map<uint64_t, size_t> index_;  // id -> tasks_ slot
  std::vector<Task*> pending_;
  bool pending_dirty_ = true;
  uint64_t next_id_ = 1;
};

// The simulated host's management workload: a nightly backup per guest, snapshots every
// few hours, a few migrations, periodic host memory scrubs. Deterministic for a seed.
void GenerateTasks(int guests, double duration_s, uint64_t seed, std::vector<Task>* out);

}  // namespace lull::dom0

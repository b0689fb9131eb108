// lull::dom0::DeriveHostPressure - host-wide pressure on a real host, from what the
// hypervisor counts: physical CPU idle time and free host memory.
//
// The simulated host raises PressureKind::kHost when guests wait for CPU while leases
// are active (dom0/sim_host.h). A real host sees the same thing as pCPUs with no idle
// time left (xc_getcpuinfo's idletime barely moves over a sample interval) while guests
// other than the lenders and the borrower are runnable but not running: the capacity
// lent away is what they wait for. Memory: free host memory (xc_physinfo free_pages)
// below a reserve while leases are active means a lender's balloon could not be
// refilled; nothing is revoked for it (that frees no host memory) but no new lease is
// granted until the host's next close.
//
// Contract: a pure function of one sample interval. The CPU condition must hold for
// `sustain` consecutive samples before it raises (one busy interval is noise, above all
// under emulation); shortfall = CPUs the waiting guests miss, at most what is lent.
#pragma once

#include <cstdint>

namespace lull::dom0 {

struct HostLoadSample {
  int pcpus = 1;
  uint64_t interval_ns = 0;    // since the previous sample (0: first sample)
  uint64_t idle_ns = 0;        // sum over pCPUs of idle time in the interval
  double free_mem_gib = 0;
  double waiting_cpus = 0;     // CPUs non-lender, non-borrower guests were runnable, not running
  double lent_cpus = 0;        // in active leases
  bool mem_lent = false;       // some lease ballooned memory out of a lender
};

struct HostPressureConfig {
  double idle_reserve_cpus = 0.25;  // below this many idle pCPUs, the host is saturated
  double min_waiting_cpus = 0.25;   // waiting below this is scheduling noise
  double mem_reserve_gib = 0.0625;  // free host memory kept for balloons to refill
  int sustain = 3;                  // consecutive saturated samples before raising; 0: never
};

struct HostPressure {
  double busy_cpus = 0, idle_cpus = 0;  // pCPUs, averaged over the interval
  double free_mem_gib = 0;
  bool saturated = false;          // this interval: no idle left and guests wait
  int saturated_run = 0;           // consecutive saturated intervals, this one included
  bool cpu = false;                // raise kHost for CPU: shortfall below
  double cpu_shortfall = 0;
  bool mem = false;                // free memory below the reserve with memory lent
};

// `saturated_before`: saturated_run of the previous sample (0 at start).
HostPressure DeriveHostPressure(const HostLoadSample& s, const HostPressureConfig& c, int saturated_before);

}  // namespace lull::dom0

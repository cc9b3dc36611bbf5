// An estimate of the core clock while busy, for the ops-per-cycle figures of
// the benchmark (clock.cc).
#pragma once

#include <cstdint>
#include <optional>

namespace iqk {

// Cycles per second, from a timed chain of dependent integer register adds:
// each add waits for the one before it, and an add has a latency of one
// cycle on every x86-64 and AArch64 core, so a chain of n adds takes n
// cycles. The fastest of `runs` runs of `iterations` x 16 adds: interruptions
// only slow a run down. Many short runs rather than a few long ones: on a
// shared core a run longer than the scheduler's time slice is rarely left
// alone. Unlike the "cpu MHz" of /proc/cpuinfo (under a hypervisor often the
// nominal TSC frequency) this sees the boost clock.
// nullopt where the chain is not written for the architecture, or for
// runs < 1 or iterations < 1.
std::optional<double> estimate_clock_hz(int runs, int64_t iterations);

}  // namespace iqk

#include "runtime/clock.h"

#include <chrono>
#include <cmath>
#include <limits>

namespace iqk {

namespace {

#define IQK_REPEAT4(s) s s s s
#define IQK_REPEAT16(s) IQK_REPEAT4(IQK_REPEAT4(s))

// Register operands on purpose: some cores fold chains of add-immediates at
// rename, which would break the one-add-per-cycle count. The loop counter is
// a second, independent chain that runs alongside.
#if defined(__x86_64__)
constexpr bool kHasChain = true;
uint64_t add_chain(uint64_t iterations) {
  uint64_t acc = 0, one = 1, n = iterations;
  __asm__ volatile(
      "1:\n\t" IQK_REPEAT16("add %[one], %[acc]\n\t") "dec %[n]\n\t"
      "jnz 1b\n\t"
      : [acc] "+r"(acc), [n] "+r"(n)
      : [one] "r"(one)
      : "cc");
  return acc;
}
#elif defined(__aarch64__)
constexpr bool kHasChain = true;
uint64_t add_chain(uint64_t iterations) {
  uint64_t acc = 0, one = 1, n = iterations;
  __asm__ volatile(
      "1:\n\t" IQK_REPEAT16("add %x[acc], %x[acc], %x[one]\n\t") "subs %x[n], %x[n], #1\n\t"
      "b.ne 1b\n\t"
      : [acc] "+r"(acc), [n] "+r"(n)
      : [one] "r"(one)
      : "cc");
  return acc;
}
#else
constexpr bool kHasChain = false;
uint64_t add_chain(uint64_t) { return 0; }
#endif

#undef IQK_REPEAT16
#undef IQK_REPEAT4

constexpr int kAddsPerIteration = 16;

}  // namespace

std::optional<double> estimate_clock_hz(int runs, int64_t iterations) {
  if (!kHasChain || runs < 1 || iterations < 1) return std::nullopt;
  using Clock = std::chrono::steady_clock;
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < runs; ++r) {
    const auto start = Clock::now();
    add_chain(static_cast<uint64_t>(iterations));
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (seconds > 0 && seconds < best) best = seconds;
  }
  if (!std::isfinite(best)) return std::nullopt;
  return static_cast<double>(kAddsPerIteration) * static_cast<double>(iterations) / best;
}

}  // namespace iqk

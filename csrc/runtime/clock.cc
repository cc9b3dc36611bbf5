#include "runtime/clock.h"

#include <chrono>
#include <cmath>
#include <limits>

namespace iqk {

namespace {

// One add of the chain, and the loop around it. Register operands on
// purpose: some cores fold chains of add-immediates at rename, which would
// break the one-add-per-cycle count. The loop counter is a second,
// independent chain that runs alongside.
#if defined(__x86_64__)
#define IQK_CHAIN_ADD "add %[one], %[acc]\n\t"
#define IQK_CHAIN_LOOP "dec %[n]\n\tjnz 1b\n\t"
#elif defined(__aarch64__)
#define IQK_CHAIN_ADD "add %x[acc], %x[acc], %x[one]\n\t"
#define IQK_CHAIN_LOOP "subs %x[n], %x[n], #1\n\tb.ne 1b\n\t"
#endif

#if defined(IQK_CHAIN_ADD)
#define IQK_REPEAT4(s) s s s s
constexpr bool kHasChain = true;
void add_chain(uint64_t iterations) {
  uint64_t acc = 0, one = 1, n = iterations;
  __asm__ volatile("1:\n\t" IQK_REPEAT4(IQK_REPEAT4(IQK_CHAIN_ADD)) IQK_CHAIN_LOOP
                   : [acc] "+r"(acc), [n] "+r"(n)
                   : [one] "r"(one)
                   : "cc");
}
#undef IQK_REPEAT4
#undef IQK_CHAIN_ADD
#undef IQK_CHAIN_LOOP
#else
constexpr bool kHasChain = false;
void add_chain(uint64_t) {}
#endif

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

// Per-kernel call counters, so that callers (and the tests) can see which
// kernel really ran. Each kernel body counts itself on entry: one relaxed
// atomic add per call, negligible beside the work of a call.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace iqk {

class KernelCounter {
 public:
  explicit KernelCounter(const char* name);
  void hit() { calls_.fetch_add(1, std::memory_order_relaxed); }
  const char* name() const { return name_; }
  uint64_t calls() const { return calls_.load(std::memory_order_relaxed); }

 private:
  const char* name_;
  std::atomic<uint64_t> calls_{0};
};

// Every counter created so far, with its count.
std::vector<std::pair<std::string, uint64_t>> kernel_call_counts();

}  // namespace iqk

// Put at the top of every kernel body. `name` must be a string literal or
// another pointer that lives for the whole program.
#define IQK_KERNEL_ENTRY(name)                      \
  do {                                              \
    static ::iqk::KernelCounter iqk_counter_(name); \
    iqk_counter_.hit();                             \
  } while (0)

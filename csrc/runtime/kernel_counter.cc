#include "runtime/kernel_counter.h"

#include <mutex>

namespace iqk {

namespace {
struct Registry {
  std::mutex mu;
  std::vector<KernelCounter*> counters;
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: counters outlive static teardown
  return *r;
}
}  // namespace

KernelCounter::KernelCounter(const char* name) : name_(name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.counters.push_back(this);
}

std::vector<std::pair<std::string, uint64_t>> kernel_call_counts() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::pair<std::string, uint64_t>> out;
  out.reserve(r.counters.size());
  for (const KernelCounter* c : r.counters) out.emplace_back(c->name(), c->calls());
  return out;
}

}  // namespace iqk

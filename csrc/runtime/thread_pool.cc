#include "runtime/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

namespace iqk {

int default_num_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

namespace {

std::atomic<int> g_num_threads{0};  // 0: not yet initialised

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  // Caller must hold busy_.
  void run(size_t n_tasks, int n_threads, const std::function<void(size_t)>& task) {
    ensure_workers(n_threads - 1);
    std::atomic<size_t> next{0};
    std::exception_ptr error;
    std::mutex error_mu;
    const std::function<void()> drain = [&] {
      for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n_tasks;) {
        try {
          task(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mu);
          if (!error) error = std::current_exception();
        }
      }
    };
    const int helpers = n_threads - 1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &drain;
      wanted_ = helpers;
      pending_ = helpers;
      ++generation_;
    }
    cv_.notify_all();
    drain();
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [&] { return pending_ == 0; });
      job_ = nullptr;
    }
    if (error) std::rethrow_exception(error);
  }

  std::mutex busy_;

 private:
  void ensure_workers(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      const int index = static_cast<int>(workers_.size());
      workers_.emplace_back([this, index] { loop(index); });
    }
  }

  void loop(int index) {
    unsigned long long seen = 0;
    for (;;) {
      const std::function<void()>* job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (index >= wanted_) continue;  // not needed for this call
        job = job_;
      }
      (*job)();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (--pending_ == 0) done_cv_.notify_one();
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void()>* job_ = nullptr;
  int wanted_ = 0, pending_ = 0;
  unsigned long long generation_ = 0;
  bool stop_ = false;
};

Pool& pool() {
  // Leaked on purpose: joining threads during interpreter teardown can hang.
  static Pool* p = new Pool;
  return *p;
}

}  // namespace

int get_num_threads() {
  int n = g_num_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    n = default_num_threads();
    g_num_threads.store(n, std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("number of threads must be >= 1");
  g_num_threads.store(n, std::memory_order_relaxed);
}

namespace {
std::atomic<uint64_t> parallel_runs_{0};
}  // namespace

size_t threads_for(double ns, double min_ns) {
  return ns < min_ns ? 1 : static_cast<size_t>(get_num_threads());
}

void parallel_for(size_t n_tasks, const std::function<void(size_t)>& task, size_t max_threads) {
  const int threads = static_cast<int>(std::min({static_cast<size_t>(get_num_threads()), n_tasks, max_threads}));
  if (threads <= 1) {
    for (size_t i = 0; i < n_tasks; ++i) task(i);
    return;
  }
  Pool& p = pool();
  std::unique_lock<std::mutex> busy(p.busy_, std::try_to_lock);
  if (!busy.owns_lock()) {
    for (size_t i = 0; i < n_tasks; ++i) task(i);
    return;
  }
  parallel_runs_.fetch_add(1, std::memory_order_relaxed);
  p.run(n_tasks, threads, task);
}

uint64_t parallel_runs() { return parallel_runs_.load(std::memory_order_relaxed); }

}  // namespace iqk

// A small persistent pool for splitting one kernel call over cores. The calling
// thread takes part in the work. If the pool is already busy (another Python
// thread is inside a kernel with the GIL released), the call runs on the
// caller alone: correct, never a deadlock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace iqk {

// Threads used by kernels; default: the cores available to the process
// (sched_getaffinity), or INTQUANT_NUM_THREADS handled at the Python layer.
int get_num_threads();
void set_num_threads(int n);  // n >= 1
int default_num_threads();

// Runs task(i) for every i in [0, n_tasks), spread over up to
// min(get_num_threads(), max_threads) threads. Returns when all are done. An
// exception thrown by a task is rethrown here (the first one).
void parallel_for(size_t n_tasks, const std::function<void(size_t)>& task, size_t max_threads = SIZE_MAX);

// The threads worth using for a call that would take about `ns` nanoseconds
// on one thread: handing work to the pool and waiting for it costs
// microseconds, so calls shorter than `min_ns` run on the calling thread
// alone (docs/design.md has the measurement).
size_t threads_for(double ns, double min_ns = 50e3);

// How many parallel_for calls have run on more than one thread, so that
// callers (and the tests) can see that work was really shared.
uint64_t parallel_runs();

}  // namespace iqk

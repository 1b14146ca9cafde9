// Host-side clocks: the same CLOCK_MONOTONIC that Python's time.monotonic_ns() and
// time.perf_counter_ns() read on Linux, so native and Python timestamps can be mixed.
#pragma once
#include <cstdint>
#include <ctime>

namespace edgebench {

inline int64_t clock_ns(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}
inline int64_t now_ns() { return clock_ns(CLOCK_MONOTONIC); }
inline int64_t process_cpu_ns() { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }
inline int64_t thread_cpu_ns() { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

}  // namespace edgebench

// CUDA side of the probe: device facts, memory, a preallocated CUDA-event pool and device
// micro-benchmarks. Compiled only when the build found a CUDA toolkit (EDGEBENCH_WITH_CUDA).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace edgebench::cuda {

struct DeviceInfo {
  int index;
  std::string name;
  int cc_major, cc_minor, sm_count;
  uint64_t total_bytes;
  bool integrated;  // unified memory with the host (Jetson)
  int mem_clock_khz, mem_bus_bits;
  double theoretical_bw_bytes_per_s;  // 2 (DDR) * clock * bus width; 0 where the driver reports no clock
  std::string pci_bus_id;
  int l2_bytes;
};

// Throws std::runtime_error("...no device...") with the CUDA error string when there is none.
int device_count();
DeviceInfo device_info(int index);
std::pair<uint64_t, uint64_t> mem_get_info(int index);  // (free, total) bytes
int driver_version();
int runtime_version();

// Events from a pool created up front. mark() only records the next event on the pool's stream:
// no allocation, no synchronisation. resolve() synchronises once, on the last mark.
class EventTimer {
 public:
  EventTimer(size_t capacity, uint64_t stream, int device, bool blocking_sync);
  ~EventTimer();
  void mark();
  void set_stream(uint64_t stream) { stream_ = stream; }
  size_t count() const { return used_; }
  size_t capacity() const { return events_.size(); }
  void reset() { used_ = 0; }
  void synchronize();
  double elapsed_ms(size_t i, size_t j);
  std::vector<double> intervals_ms();  // between consecutive marks
  std::vector<double> pairs_ms();      // (0,1), (2,3), ...

 private:
  std::vector<void*> events_;
  size_t used_ = 0;
  uint64_t stream_;
  int device_;
};

struct LaunchStats { double host_us_per_launch, device_us_per_launch, roundtrip_us; };
LaunchStats launch_latency(int device, int launches);
double copy_bandwidth_bytes_per_s(int device, uint64_t bytes, int reps);  // read + write counted
double event_resolution_us(int device, int pairs);
void sleep_kernel(uint64_t stream, int64_t cycles);  // busy device work of a known length for tests

}  // namespace edgebench::cuda

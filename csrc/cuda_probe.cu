#include "cuda_probe.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "host.hpp"

namespace edgebench::cuda {
namespace {

void check(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) {
    cudaGetLastError();  // clear sticky-free errors so the next call starts clean
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(rc));
  }
}

__global__ void empty_kernel() {}

__global__ void spin_kernel(int64_t cycles) {
  int64_t start = clock64();
  while (clock64() - start < cycles) {
  }
}

struct DeviceGuard {
  int prev = -1;
  explicit DeviceGuard(int dev) {
    check(cudaGetDevice(&prev), "cudaGetDevice");
    if (prev != dev) check(cudaSetDevice(dev), "cudaSetDevice");
  }
  ~DeviceGuard() { if (prev >= 0) cudaSetDevice(prev); }
};

}  // namespace

int device_count() {
  int n = 0;
  cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc == cudaErrorNoDevice || rc == cudaErrorInsufficientDriver) return 0;
  check(rc, "cudaGetDeviceCount (no usable device or driver)");
  return n;
}

int driver_version() { int v = 0; cudaDriverGetVersion(&v); return v; }
int runtime_version() { int v = 0; cudaRuntimeGetVersion(&v); return v; }

DeviceInfo device_info(int index) {
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, index), "cudaGetDeviceProperties");
  DeviceInfo d{};
  d.index = index;
  d.name = p.name;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.sm_count = p.multiProcessorCount;
  d.total_bytes = p.totalGlobalMem;
  d.integrated = p.integrated != 0;
  d.mem_bus_bits = p.memoryBusWidth;
  d.l2_bytes = p.l2CacheSize;
  // cudaDeviceProp::memoryClockRate is gone in CUDA 13; the attribute still answers.
  cudaDeviceGetAttribute(&d.mem_clock_khz, cudaDevAttrMemoryClockRate, index);
  d.theoretical_bw_bytes_per_s = 2.0 * d.mem_clock_khz * 1e3 * (d.mem_bus_bits / 8.0);
  char bus[32] = {0};
  if (cudaDeviceGetPCIBusId(bus, sizeof(bus), index) == cudaSuccess) d.pci_bus_id = bus;
  cudaGetLastError();
  return d;
}

std::pair<uint64_t, uint64_t> mem_get_info(int index) {
  DeviceGuard g(index);
  size_t free_b = 0, total_b = 0;
  check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  return {free_b, total_b};
}

EventTimer::EventTimer(size_t capacity, uint64_t stream, int device, bool blocking_sync)
    : stream_(stream), device_(device) {
  if (capacity < 2) throw std::invalid_argument("EventTimer capacity must be >= 2");
  DeviceGuard g(device);
  unsigned flags = blocking_sync ? cudaEventBlockingSync : cudaEventDefault;
  events_.resize(capacity, nullptr);
  for (auto& e : events_) {
    cudaEvent_t ev;
    check(cudaEventCreateWithFlags(&ev, flags), "cudaEventCreate");
    e = ev;
  }
}

EventTimer::~EventTimer() {
  for (void* e : events_) if (e) cudaEventDestroy(static_cast<cudaEvent_t>(e));
}

void EventTimer::mark() {
  if (used_ == events_.size()) throw std::out_of_range("EventTimer pool exhausted: create it with a larger capacity");
  check(cudaEventRecord(static_cast<cudaEvent_t>(events_[used_]), reinterpret_cast<cudaStream_t>(stream_)),
        "cudaEventRecord");
  ++used_;
}

void EventTimer::synchronize() {
  if (used_ == 0) return;
  check(cudaEventSynchronize(static_cast<cudaEvent_t>(events_[used_ - 1])), "cudaEventSynchronize");
}

double EventTimer::elapsed_ms(size_t i, size_t j) {
  if (i >= used_ || j >= used_) throw std::out_of_range("EventTimer: mark index out of range");
  float ms = 0.f;
  check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(events_[i]), static_cast<cudaEvent_t>(events_[j])),
        "cudaEventElapsedTime");
  return ms;
}

std::vector<double> EventTimer::intervals_ms() {
  synchronize();
  std::vector<double> out;
  for (size_t i = 1; i < used_; ++i) out.push_back(elapsed_ms(i - 1, i));
  return out;
}

std::vector<double> EventTimer::pairs_ms() {
  synchronize();
  std::vector<double> out;
  for (size_t i = 0; i + 1 < used_; i += 2) out.push_back(elapsed_ms(i, i + 1));
  return out;
}

LaunchStats launch_latency(int device, int launches) {
  DeviceGuard g(device);
  cudaStream_t s;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  cudaEvent_t e0, e1;
  check(cudaEventCreate(&e0), "cudaEventCreate");
  check(cudaEventCreate(&e1), "cudaEventCreate");
  for (int i = 0; i < 100; ++i) empty_kernel<<<1, 1, 0, s>>>();  // warm up: module load, first launch
  check(cudaStreamSynchronize(s), "warm-up");
  check(cudaEventRecord(e0, s), "cudaEventRecord");
  int64_t t0 = now_ns();
  for (int i = 0; i < launches; ++i) empty_kernel<<<1, 1, 0, s>>>();
  int64_t t1 = now_ns();
  check(cudaEventRecord(e1, s), "cudaEventRecord");
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  check(cudaGetLastError(), "empty kernel launch");
  float dev_ms = 0.f;
  check(cudaEventElapsedTime(&dev_ms, e0, e1), "cudaEventElapsedTime");
  int rt = std::max(10, launches / 100);
  int64_t r0 = now_ns();
  for (int i = 0; i < rt; ++i) { empty_kernel<<<1, 1, 0, s>>>(); cudaStreamSynchronize(s); }
  int64_t r1 = now_ns();
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaStreamDestroy(s);
  return {(t1 - t0) / 1e3 / launches, dev_ms * 1e3 / launches, (r1 - r0) / 1e3 / rt};
}

double copy_bandwidth_bytes_per_s(int device, uint64_t bytes, int reps) {
  DeviceGuard g(device);
  void *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, bytes), "cudaMalloc (copy benchmark)");
  cudaError_t rc = cudaMalloc(&b, bytes);
  if (rc != cudaSuccess) { cudaFree(a); check(rc, "cudaMalloc (copy benchmark)"); }
  cudaMemset(a, 1, bytes);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0);  // warm up
  float best_ms = 1e30f;
  for (int r = 0; r < reps; ++r) {
    cudaEventRecord(e0, 0);
    cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, 0);
    cudaEventRecord(e1, 0);
    cudaEventSynchronize(e1);
    float ms = 0.f;
    cudaEventElapsedTime(&ms, e0, e1);
    best_ms = std::min(best_ms, ms);
  }
  rc = cudaGetLastError();
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  check(rc, "copy benchmark");
  return 2.0 * bytes / (best_ms * 1e-3);
}

double event_resolution_us(int device, int pairs) {
  DeviceGuard g(device);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  // Back-to-back events with no work between them read a tiny, quantised gap; the smallest step
  // between distinct readings is the timer's granularity.
  std::vector<float> seen;
  for (int i = 0; i < pairs; ++i) {
    cudaEventRecord(e0, 0);
    if (i % 2) empty_kernel<<<1, 1>>>();  // vary the gap so several quanta show up
    cudaEventRecord(e1, 0);
    cudaEventSynchronize(e1);
    float ms = 0.f;
    cudaEventElapsedTime(&ms, e0, e1);
    seen.push_back(ms);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  check(cudaGetLastError(), "event resolution benchmark");
  std::sort(seen.begin(), seen.end());
  float step = 1e30f;
  for (size_t i = 1; i < seen.size(); ++i) {
    float d = seen[i] - seen[i - 1];
    if (d > 1e-5f) step = std::min(step, d);  // ignore float rounding between equal quanta
  }
  if (seen.front() > 0.f) step = std::min(step, seen.front());
  return step >= 1e29f ? 0.0 : step * 1e3;
}

void sleep_kernel(uint64_t stream, int64_t cycles) {
  spin_kernel<<<1, 1, 0, reinterpret_cast<cudaStream_t>(stream)>>>(cycles);
  check(cudaGetLastError(), "spin kernel launch");
}

}  // namespace edgebench::cuda

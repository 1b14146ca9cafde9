// A power sampler thread: reads each channel at a fixed rate into a ring buffer, timestamps on the
// same CLOCK_MONOTONIC as the timers, so energy can be split by phase afterwards. The thread never
// touches Python, so it runs without the GIL.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace edgebench {

struct Channel {
  std::string kind;  // "nvml": power of NVML device `device`; "vi": file_a * file_b; "p": file_a
  int device = 0;
  std::string path_a, path_b;
  double scale = 1.0;  // multiplies the raw reading into mW
};

class PowerSampler {
 public:
  PowerSampler(std::vector<Channel> channels, double rate_hz, size_t capacity);
  ~PowerSampler();
  void start();
  void stop();
  bool running() const { return running_.load(); }
  // Samples in time order: timestamps (ns) and, per sample, one mW value per channel (NaN = failed read).
  void samples(std::vector<int64_t>* t_ns, std::vector<double>* mw) const;
  size_t channel_count() const { return channels_.size(); }
  uint64_t dropped() const { return dropped_.load(); }
  double rate_hz() const { return rate_hz_; }
  int64_t thread_cpu_ns() const { return thread_cpu_ns_.load(); }

 private:
  void loop();
  double read_channel(size_t k);

  std::vector<Channel> channels_;
  std::vector<int> fd_a_, fd_b_;
  double rate_hz_;
  size_t capacity_;
  std::vector<int64_t> t_;
  std::vector<double> v_;
  size_t head_ = 0, count_ = 0;
  mutable std::mutex mu_;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<int64_t> thread_cpu_ns_{0};
  std::thread thread_;
};

}  // namespace edgebench

#include "sampler.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "host.hpp"
#include "nvml.hpp"

namespace edgebench {
namespace {

// sysfs attributes are regenerated on every read at offset 0, so one open fd and pread() is enough.
double read_int_file(int fd) {
  if (fd < 0) return NAN;
  char buf[64];
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return NAN;
  buf[n] = 0;
  char* end = nullptr;
  double v = std::strtod(buf, &end);
  return end == buf ? NAN : v;
}

int open_or_throw(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open power sensor file " + path);
  return fd;
}

}  // namespace

PowerSampler::PowerSampler(std::vector<Channel> channels, double rate_hz, size_t capacity)
    : channels_(std::move(channels)), rate_hz_(rate_hz), capacity_(capacity) {
  if (channels_.empty()) throw std::invalid_argument("PowerSampler needs at least one channel");
  if (!(rate_hz > 0.0) || rate_hz > 100000.0) throw std::invalid_argument("rate_hz must be in (0, 100000]");
  if (capacity_ < 2) throw std::invalid_argument("capacity must be >= 2");
  for (const Channel& c : channels_) {
    if (c.kind == "nvml") {
      fd_a_.push_back(-1);
      fd_b_.push_back(-1);
      if (!nvml::init_error().empty()) throw std::runtime_error(nvml::init_error());
    } else if (c.kind == "vi") {
      fd_a_.push_back(open_or_throw(c.path_a));
      fd_b_.push_back(open_or_throw(c.path_b));
    } else if (c.kind == "p") {
      fd_a_.push_back(open_or_throw(c.path_a));
      fd_b_.push_back(-1);
    } else {
      throw std::invalid_argument("unknown channel kind '" + c.kind + "' (use nvml, vi or p)");
    }
  }
  t_.resize(capacity_);
  v_.resize(capacity_ * channels_.size());
}

PowerSampler::~PowerSampler() {
  stop();
  for (int fd : fd_a_) if (fd >= 0) ::close(fd);
  for (int fd : fd_b_) if (fd >= 0) ::close(fd);
}

double PowerSampler::read_channel(size_t k) {
  const Channel& c = channels_[k];
  if (c.kind == "nvml") {
    nvml::Reading r = nvml::power_mw(c.device);
    return r.value ? static_cast<double>(*r.value) * c.scale : NAN;
  }
  double a = read_int_file(fd_a_[k]);
  if (c.kind == "p") return a * c.scale;
  return a * read_int_file(fd_b_[k]) * c.scale;
}

void PowerSampler::start() {
  if (running_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    head_ = count_ = 0;
    dropped_ = 0;
  }
  thread_ = std::thread(&PowerSampler::loop, this);
}

void PowerSampler::stop() {
  if (!running_.exchange(false)) return;
  if (thread_.joinable()) thread_.join();
}

void PowerSampler::loop() {
  using clock = std::chrono::steady_clock;
  const auto period = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / rate_hz_));
  const size_t nch = channels_.size();
  std::vector<double> row(nch);
  auto next = clock::now();
  while (running_.load(std::memory_order_relaxed)) {
    int64_t t = now_ns();
    for (size_t k = 0; k < nch; ++k) row[k] = read_channel(k);
    {
      std::lock_guard<std::mutex> lock(mu_);
      t_[head_] = t;
      for (size_t k = 0; k < nch; ++k) v_[head_ * nch + k] = row[k];
      head_ = (head_ + 1) % capacity_;
      if (count_ < capacity_) ++count_; else dropped_.fetch_add(1, std::memory_order_relaxed);
    }
    next += period;
    auto now = clock::now();
    if (next < now) next = now;  // fell behind (slow sensor): do not burst to catch up
    std::this_thread::sleep_until(next);
  }
  thread_cpu_ns_.store(edgebench::thread_cpu_ns());
}

void PowerSampler::samples(std::vector<int64_t>* t_ns, std::vector<double>* mw) const {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t nch = channels_.size();
  t_ns->resize(count_);
  mw->resize(count_ * nch);
  size_t start = (head_ + capacity_ - count_) % capacity_;
  for (size_t i = 0; i < count_; ++i) {
    size_t j = (start + i) % capacity_;
    (*t_ns)[i] = t_[j];
    for (size_t k = 0; k < nch; ++k) (*mw)[i * nch + k] = v_[j * nch + k];
  }
}

}  // namespace edgebench

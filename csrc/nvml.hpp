// NVML opened with dlopen("libnvidia-ml.so.1") inside one process-wide singleton: never linked, so the
// module loads on machines without the driver. Every query reports NVML's own error string when it
// fails (NOT_SUPPORTED on Jetson for power/energy/memory), never a silent zero.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace edgebench::nvml {

// Empty string when NVML is usable, else why not. Safe to call repeatedly (initialises once).
const std::string& init_error();
int device_count();

struct Reading {
  std::optional<uint64_t> value;
  std::string why;  // empty when value is set
};

// Power in mW: NVML's instant reading (NVML_FI_DEV_POWER_INSTANT) where the driver gives it, else
// nvmlDeviceGetPowerUsage, which on Ampere and later is a trailing 1 s average (too slow for
// phases of a second or less). The first call per device decides; power_source says which.
Reading power_mw(int index);
Reading power_average_mw(int index);
Reading power_instant_mw(int index);
std::string power_source(int index);  // "instant" | "average"
Reading energy_mj(int index);
Reading mem_total_bytes(int index);
Reading mem_used_bytes(int index);
Reading sm_clock_mhz(int index);
Reading mem_clock_mhz(int index);
Reading gpu_temp_c(int index);
Reading throttle_reasons(int index);
Reading process_memory_bytes(int index, unsigned int pid);
std::string name(int index, std::string* why);
std::string pci_bus_id(int index, std::string* why);

}  // namespace edgebench::nvml

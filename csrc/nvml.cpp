#include "nvml.hpp"

#include <dlfcn.h>

#include <atomic>
#include <mutex>

namespace edgebench::nvml {
namespace {

// The subset of nvml.h this module uses; layouts match NVML 11+ (r450 and later).
using nvmlReturn_t = int;
using nvmlDevice_t = void*;
constexpr nvmlReturn_t kSuccess = 0;
constexpr nvmlReturn_t kInsufficientSize = 7;
struct nvmlMemory_t { unsigned long long total, free, used; };
struct nvmlPciInfo_t {
  char busIdLegacy[16];
  unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
};
struct nvmlProcessInfo_t {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId, computeInstanceId;
};
enum { kClockSm = 1, kClockMem = 2, kTempGpu = 0 };
// nvmlFieldValue_t of nvml.h (NVML 10+); only the instant-power field is asked for.
union nvmlValue_t {
  double dVal; int siVal; unsigned int uiVal; unsigned long ulVal; unsigned long long ullVal;
  long long sllVal; unsigned short usVal;
};
struct nvmlFieldValue_t {
  unsigned int fieldId, scopeId;
  long long timestamp, latencyUsec;
  int valueType;
  nvmlReturn_t nvmlReturn;
  nvmlValue_t value;
};
static_assert(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t layout");
constexpr unsigned int kFieldPowerInstant = 186;  // NVML_FI_DEV_POWER_INSTANT (mW)
enum { kValDouble = 0, kValUInt = 1, kValULong = 2, kValULongLong = 3, kValSLongLong = 4, kValSInt = 5,
       kValUShort = 6 };

struct Api {
  void* lib = nullptr;
  std::string error;
  nvmlReturn_t (*Init)() = nullptr;
  const char* (*ErrorString)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*GetCount)(unsigned int*) = nullptr;
  nvmlReturn_t (*GetHandle)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*GetName)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*GetPci)(nvmlDevice_t, nvmlPciInfo_t*) = nullptr;
  nvmlReturn_t (*GetPower)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*GetEnergy)(nvmlDevice_t, unsigned long long*) = nullptr;
  nvmlReturn_t (*GetMemory)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*GetClock)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*GetTemp)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*GetReasons)(nvmlDevice_t, unsigned long long*) = nullptr;
  nvmlReturn_t (*GetProcs)(nvmlDevice_t, unsigned int*, nvmlProcessInfo_t*) = nullptr;
  nvmlReturn_t (*GetFields)(nvmlDevice_t, int, nvmlFieldValue_t*) = nullptr;
};

template <typename F>
void bind(Api& api, F& fn, const char* name, const char* fallback = nullptr) {
  void* sym = dlsym(api.lib, name);
  if (!sym && fallback) sym = dlsym(api.lib, fallback);
  fn = reinterpret_cast<F>(sym);
}

Api& api() {
  static Api a;
  static std::once_flag once;
  std::call_once(once, [] {
    a.lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!a.lib) {
      const char* e = dlerror();
      a.error = std::string("libnvidia-ml.so.1 could not be loaded (no NVIDIA driver?): ") + (e ? e : "");
      return;
    }
    bind(a, a.Init, "nvmlInit_v2");
    bind(a, a.ErrorString, "nvmlErrorString");
    bind(a, a.GetCount, "nvmlDeviceGetCount_v2");
    bind(a, a.GetHandle, "nvmlDeviceGetHandleByIndex_v2");
    bind(a, a.GetName, "nvmlDeviceGetName");
    bind(a, a.GetPci, "nvmlDeviceGetPciInfo_v3");
    bind(a, a.GetPower, "nvmlDeviceGetPowerUsage");
    bind(a, a.GetEnergy, "nvmlDeviceGetTotalEnergyConsumption");
    bind(a, a.GetMemory, "nvmlDeviceGetMemoryInfo");
    bind(a, a.GetClock, "nvmlDeviceGetClockInfo");
    bind(a, a.GetTemp, "nvmlDeviceGetTemperature");
    bind(a, a.GetReasons, "nvmlDeviceGetCurrentClocksEventReasons",
         "nvmlDeviceGetCurrentClocksThrottleReasons");
    bind(a, a.GetProcs, "nvmlDeviceGetComputeRunningProcesses_v3");
    bind(a, a.GetFields, "nvmlDeviceGetFieldValues");
    if (!a.Init || !a.GetCount || !a.GetHandle) {
      a.error = "libnvidia-ml.so.1 lacks nvmlInit_v2/nvmlDeviceGetCount_v2 (driver too old)";
      return;
    }
    nvmlReturn_t rc = a.Init();
    if (rc != kSuccess) {
      a.error = std::string("nvmlInit failed: ") + (a.ErrorString ? a.ErrorString(rc) : std::to_string(rc));
    }
  });
  return a;
}

std::string err(nvmlReturn_t rc) {
  Api& a = api();
  return std::string("NVML: ") + (a.ErrorString ? a.ErrorString(rc) : std::to_string(rc));
}

// Resolves the handle or explains why not; returns nullptr on failure with *why set.
nvmlDevice_t handle(int index, std::string* why) {
  Api& a = api();
  if (!a.error.empty()) { *why = a.error; return nullptr; }
  nvmlDevice_t dev = nullptr;
  nvmlReturn_t rc = a.GetHandle(static_cast<unsigned int>(index), &dev);
  if (rc != kSuccess) { *why = err(rc); return nullptr; }
  return dev;
}

template <typename T, typename Call>
Reading read(int index, void* fn, Call call) {
  Reading r;
  nvmlDevice_t dev = handle(index, &r.why);
  if (!dev) return r;
  if (!fn) { r.why = "NVML: function not present in this driver"; return r; }
  T v{};
  nvmlReturn_t rc = call(dev, &v);
  if (rc != kSuccess) { r.why = err(rc); return r; }
  r.value = static_cast<uint64_t>(v);
  return r;
}

}  // namespace

const std::string& init_error() { return api().error; }

int device_count() {
  Api& a = api();
  if (!a.error.empty()) return 0;
  unsigned int n = 0;
  return a.GetCount(&n) == kSuccess ? static_cast<int>(n) : 0;
}

Reading power_average_mw(int i) {
  Api& a = api();
  return read<unsigned int>(i, (void*)a.GetPower, [&](nvmlDevice_t d, unsigned int* v) { return a.GetPower(d, v); });
}

Reading power_instant_mw(int i) {
  Api& a = api();
  Reading r;
  nvmlDevice_t dev = handle(i, &r.why);
  if (!dev) return r;
  if (!a.GetFields) { r.why = "NVML: nvmlDeviceGetFieldValues not present in this driver"; return r; }
  nvmlFieldValue_t fv{};
  fv.fieldId = kFieldPowerInstant;
  nvmlReturn_t rc = a.GetFields(dev, 1, &fv);
  if (rc == kSuccess) rc = fv.nvmlReturn;
  if (rc != kSuccess) { r.why = err(rc); return r; }
  switch (fv.valueType) {
    case kValUInt: r.value = fv.value.uiVal; break;
    case kValULong: r.value = fv.value.ulVal; break;
    case kValULongLong: r.value = fv.value.ullVal; break;
    case kValSLongLong: if (fv.value.sllVal >= 0) r.value = static_cast<uint64_t>(fv.value.sllVal); break;
    case kValSInt: if (fv.value.siVal >= 0) r.value = static_cast<uint64_t>(fv.value.siVal); break;
    case kValUShort: r.value = fv.value.usVal; break;
    case kValDouble: if (fv.value.dVal >= 0) r.value = static_cast<uint64_t>(fv.value.dVal); break;
    default: break;
  }
  if (!r.value) r.why = "NVML: instant power came back with value type " + std::to_string(fv.valueType);
  return r;
}

namespace {
// Per device: 0 not yet tried, 1 the instant field answers, 2 it does not (use the average).
std::atomic<int> g_instant[64];
}

Reading power_mw(int i) {
  std::atomic<int>* state = (i >= 0 && i < 64) ? &g_instant[i] : nullptr;
  if (state && state->load(std::memory_order_relaxed) != 2) {
    Reading r = power_instant_mw(i);
    if (r.value) { state->store(1, std::memory_order_relaxed); return r; }
    if (state->load(std::memory_order_relaxed) == 0) state->store(2, std::memory_order_relaxed);
  }
  return power_average_mw(i);
}

std::string power_source(int i) {
  if (i < 0 || i >= 64) return "average";
  if (g_instant[i].load() == 0) power_mw(i);
  return g_instant[i].load() == 1 ? "instant" : "average";
}
Reading energy_mj(int i) {
  Api& a = api();
  return read<unsigned long long>(i, (void*)a.GetEnergy, [&](nvmlDevice_t d, unsigned long long* v) { return a.GetEnergy(d, v); });
}
static Reading memory_field(int i, bool total) {
  Api& a = api();
  Reading r;
  nvmlDevice_t dev = handle(i, &r.why);
  if (!dev) return r;
  if (!a.GetMemory) { r.why = "NVML: function not present in this driver"; return r; }
  nvmlMemory_t m{};
  nvmlReturn_t rc = a.GetMemory(dev, &m);
  if (rc != kSuccess) { r.why = err(rc); return r; }
  r.value = total ? m.total : m.used;
  return r;
}
Reading mem_total_bytes(int i) { return memory_field(i, true); }
Reading mem_used_bytes(int i) { return memory_field(i, false); }
Reading sm_clock_mhz(int i) {
  Api& a = api();
  return read<unsigned int>(i, (void*)a.GetClock, [&](nvmlDevice_t d, unsigned int* v) { return a.GetClock(d, kClockSm, v); });
}
Reading mem_clock_mhz(int i) {
  Api& a = api();
  return read<unsigned int>(i, (void*)a.GetClock, [&](nvmlDevice_t d, unsigned int* v) { return a.GetClock(d, kClockMem, v); });
}
Reading gpu_temp_c(int i) {
  Api& a = api();
  return read<unsigned int>(i, (void*)a.GetTemp, [&](nvmlDevice_t d, unsigned int* v) { return a.GetTemp(d, kTempGpu, v); });
}
Reading throttle_reasons(int i) {
  Api& a = api();
  return read<unsigned long long>(i, (void*)a.GetReasons, [&](nvmlDevice_t d, unsigned long long* v) { return a.GetReasons(d, v); });
}

Reading process_memory_bytes(int i, unsigned int pid) {
  Api& a = api();
  Reading r;
  nvmlDevice_t dev = handle(i, &r.why);
  if (!dev) return r;
  if (!a.GetProcs) { r.why = "NVML: nvmlDeviceGetComputeRunningProcesses_v3 not present in this driver"; return r; }
  std::vector<nvmlProcessInfo_t> procs(64);
  unsigned int n = static_cast<unsigned int>(procs.size());
  nvmlReturn_t rc = a.GetProcs(dev, &n, procs.data());
  if (rc == kInsufficientSize) {
    procs.resize(n + 16);
    n = static_cast<unsigned int>(procs.size());
    rc = a.GetProcs(dev, &n, procs.data());
  }
  if (rc != kSuccess) { r.why = err(rc); return r; }
  for (unsigned int k = 0; k < n; ++k) {
    if (procs[k].pid == pid) {
      // NVML reports NVML_VALUE_NOT_AVAILABLE (all ones) where it cannot attribute memory (e.g. in a
      // container without access to the host PID namespace).
      if (procs[k].usedGpuMemory == ~0ULL) { r.why = "NVML: per-process memory not available"; return r; }
      r.value = procs[k].usedGpuMemory;
      return r;
    }
  }
  r.why = "NVML: process not listed on this GPU (PID namespace of a container, or no CUDA context yet)";
  return r;
}

std::string name(int i, std::string* why) {
  Api& a = api();
  nvmlDevice_t dev = handle(i, why);
  if (!dev || !a.GetName) return "";
  char buf[96] = {0};
  nvmlReturn_t rc = a.GetName(dev, buf, sizeof(buf));
  if (rc != kSuccess) { *why = err(rc); return ""; }
  return buf;
}

std::string pci_bus_id(int i, std::string* why) {
  Api& a = api();
  nvmlDevice_t dev = handle(i, why);
  if (!dev || !a.GetPci) return "";
  nvmlPciInfo_t p{};
  nvmlReturn_t rc = a.GetPci(dev, &p);
  if (rc != kSuccess) { *why = err(rc); return ""; }
  return p.busId;
}

}  // namespace edgebench::nvml

// edgebench._probe: the native probe. Used only through edgebench/probe.py.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>

#include "host.hpp"
#include "nvml.hpp"
#include "sampler.hpp"
#ifdef EDGEBENCH_WITH_CUDA
#include "cuda_probe.hpp"
#endif

namespace py = pybind11;
using namespace edgebench;

namespace {

py::object opt(const nvml::Reading& r) {
  return r.value ? py::object(py::int_(*r.value)) : py::object(py::none());
}

py::dict nvml_query(int index) {
  py::dict d;
  std::string why;
  std::string name = nvml::name(index, &why);
  d["name"] = name.empty() ? py::object(py::none()) : py::object(py::str(name));
  if (name.empty()) d["name_why"] = why;
  why.clear();
  std::string bus = nvml::pci_bus_id(index, &why);
  d["pci_bus_id"] = bus.empty() ? py::object(py::none()) : py::object(py::str(bus));
  if (bus.empty()) d["pci_bus_id_why"] = why;
  auto put = [&](const char* key, const nvml::Reading& r) {
    d[key] = opt(r);
    if (!r.value) d[(std::string(key) + "_why").c_str()] = r.why;
  };
  put("power_mw", nvml::power_mw(index));
  put("energy_mj", nvml::energy_mj(index));
  put("mem_total_bytes", nvml::mem_total_bytes(index));
  put("mem_used_bytes", nvml::mem_used_bytes(index));
  put("sm_clock_mhz", nvml::sm_clock_mhz(index));
  put("mem_clock_mhz", nvml::mem_clock_mhz(index));
  put("gpu_temp_c", nvml::gpu_temp_c(index));
  put("throttle_reasons", nvml::throttle_reasons(index));
  return d;
}

}  // namespace

PYBIND11_MODULE(_probe, m) {
  m.doc() = "edgebench native probe: clocks, CUDA events, device facts, micro-benchmarks, NVML, power sampler";

  m.def("now_ns", &now_ns, "CLOCK_MONOTONIC in ns (same clock as time.monotonic_ns)");
  m.def("process_cpu_ns", &process_cpu_ns, "CPU time of this process in ns");
  m.def("thread_cpu_ns", &thread_cpu_ns, "CPU time of the calling thread in ns");

  m.def("nvml_init", [] { return nvml::init_error(); }, "'' when NVML is usable, else why not");
  m.def("nvml_device_count", &nvml::device_count);
  m.def("nvml_query", &nvml_query, py::arg("index"));
  m.def("nvml_energy_mj", [](int i) { return opt(nvml::energy_mj(i)); }, py::arg("index"));
  m.def("nvml_power_mw", [](int i) { return opt(nvml::power_mw(i)); }, py::arg("index"));
  m.def("nvml_power_source", &nvml::power_source, py::arg("index"),
        "'instant' when NVML's instant power field answers for this device, else 'average'");
  m.def("nvml_process_memory_bytes",
        [](int i, unsigned int pid) { return opt(nvml::process_memory_bytes(i, pid)); },
        py::arg("index"), py::arg("pid"));

  py::class_<PowerSampler>(m, "PowerSampler")
      .def(py::init([](const std::vector<std::tuple<std::string, int, std::string, std::string, double>>& chans,
                       double rate_hz, size_t capacity) {
             std::vector<Channel> cs;
             for (const auto& [kind, dev, a, b, scale] : chans) cs.push_back(Channel{kind, dev, a, b, scale});
             return new PowerSampler(std::move(cs), rate_hz, capacity);
           }),
           py::arg("channels"), py::arg("rate_hz") = 50.0, py::arg("capacity") = 1 << 16)
      .def("start", &PowerSampler::start, py::call_guard<py::gil_scoped_release>())
      .def("stop", &PowerSampler::stop, py::call_guard<py::gil_scoped_release>())
      .def("samples", [](const PowerSampler& s) {
        std::vector<int64_t> t;
        std::vector<double> v;
        s.samples(&t, &v);
        size_t nch = s.channel_count();
        std::vector<std::vector<double>> rows(t.size(), std::vector<double>(nch));
        for (size_t i = 0; i < t.size(); ++i)
          for (size_t k = 0; k < nch; ++k) rows[i][k] = v[i * nch + k];
        return py::make_tuple(t, rows);
      })
      .def_property_readonly("running", &PowerSampler::running)
      .def_property_readonly("dropped", &PowerSampler::dropped)
      .def_property_readonly("rate_hz", &PowerSampler::rate_hz)
      .def_property_readonly("thread_cpu_ns", &PowerSampler::thread_cpu_ns);

#ifdef EDGEBENCH_WITH_CUDA
  m.attr("has_cuda") = true;
  m.def("cuda_device_count", &cuda::device_count);
  m.def("cuda_driver_version", &cuda::driver_version);
  m.def("cuda_runtime_version", &cuda::runtime_version);
  m.def("device_info", [](int i) {
    cuda::DeviceInfo d = cuda::device_info(i);
    py::dict o;
    o["index"] = d.index;
    o["name"] = d.name;
    o["compute_capability"] = std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor);
    o["sm_count"] = d.sm_count;
    o["total_bytes"] = d.total_bytes;
    o["integrated"] = d.integrated;
    o["mem_clock_khz"] = d.mem_clock_khz;
    o["mem_bus_bits"] = d.mem_bus_bits;
    o["theoretical_bw_bytes_per_s"] = d.theoretical_bw_bytes_per_s > 0 ? py::object(py::float_(d.theoretical_bw_bytes_per_s)) : py::object(py::none());
    o["pci_bus_id"] = d.pci_bus_id;
    o["l2_bytes"] = d.l2_bytes;
    return o;
  }, py::arg("index") = 0);
  m.def("mem_get_info", &cuda::mem_get_info, py::arg("index") = 0, "(free, total) bytes from cudaMemGetInfo");

  py::class_<cuda::EventTimer>(m, "EventTimer")
      .def(py::init<size_t, uint64_t, int, bool>(), py::arg("capacity") = 4096, py::arg("stream") = 0,
           py::arg("device") = 0, py::arg("blocking_sync") = false)
      .def("mark", &cuda::EventTimer::mark, "record the next pooled event on the timer's stream")
      .def("set_stream", &cuda::EventTimer::set_stream)
      .def("reset", &cuda::EventTimer::reset)
      .def("synchronize", &cuda::EventTimer::synchronize, py::call_guard<py::gil_scoped_release>())
      .def("elapsed_ms", &cuda::EventTimer::elapsed_ms)
      .def("intervals_ms", &cuda::EventTimer::intervals_ms, py::call_guard<py::gil_scoped_release>())
      .def("pairs_ms", &cuda::EventTimer::pairs_ms, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("count", &cuda::EventTimer::count)
      .def_property_readonly("capacity", &cuda::EventTimer::capacity);

  // Python objects are built only after the benchmark, with the GIL held again.
  m.def("launch_latency", [](int device, int launches) {
    cuda::LaunchStats s;
    {
      py::gil_scoped_release nogil;
      s = cuda::launch_latency(device, launches);
    }
    py::dict o;
    o["host_us_per_launch"] = s.host_us_per_launch;
    o["device_us_per_launch"] = s.device_us_per_launch;
    o["roundtrip_us"] = s.roundtrip_us;
    return o;
  }, py::arg("device") = 0, py::arg("launches") = 10000);
  m.def("copy_bandwidth_bytes_per_s", &cuda::copy_bandwidth_bytes_per_s, py::arg("device") = 0,
        py::arg("bytes") = 1ULL << 30, py::arg("reps") = 20, py::call_guard<py::gil_scoped_release>());
  m.def("event_resolution_us", &cuda::event_resolution_us, py::arg("device") = 0, py::arg("pairs") = 2000,
        py::call_guard<py::gil_scoped_release>());
  m.def("sleep_kernel", &cuda::sleep_kernel, py::arg("stream"), py::arg("cycles"));
#else
  m.attr("has_cuda") = false;
#endif
}

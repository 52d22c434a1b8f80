#include "sysinfo/mux.h"

namespace gpuhook {

namespace {
struct Known {
  const char* name;
  const char* path;
  const char* meaning;
};
// Each needs a reboot to take effect (the firmware sets the MUX at boot).
const Known kVendor[] = {
    {"asus gpu_mux_mode", "/sys/devices/platform/asus-nb-wmi/gpu_mux_mode", "0 = dGPU only, 1 = hybrid (Optimus)"},
    {"asus gpu_mux_mode", "/sys/bus/platform/devices/asus-nb-wmi/gpu_mux_mode", "0 = dGPU only, 1 = hybrid (Optimus)"},
    {"hp gpu_mux_mode", "/sys/devices/platform/hp-wmi/gpu_mux_mode", "hybrid or discrete"},
    {"lenovo legion gsync", "/sys/bus/platform/drivers/legion/PNP0C09:00/gsync", "1 = dGPU only, 0 = hybrid"},
    {"lenovo legion hybrid_graphics", "/proc/sys/kernel/lenovo_legion_wmi/hybrid_graphics", "1 = hybrid, 0 = dGPU only"},
};
}  // namespace

std::string MuxInfo::summary() const {
  std::string s;
  if (switcheroo) s += "vga_switcheroo (runtime)";
  if (acpi_call) s += std::string(s.empty() ? "" : ", ") + "acpi_call (runtime, needs the ACPI path)";
  for (const auto& v : reboot_only) s += (s.empty() ? "" : ", ") + v.name + " (reboot only)";
  return s.empty() ? "no MUX switch found" : s;
}

MuxInfo detect_mux(Fs& fs) {
  MuxInfo m;
  const std::string sw = "/sys/kernel/debug/vgaswitcheroo/switch";
  if (fs.exists(sw)) {
    m.switcheroo = true;
    auto r = fs.read(sw);
    if (r) {
      std::string t = trim(*r);
      for (auto& c : t)
        if (c == '\n') c = ';';
      m.switcheroo_state = t;
    }
  }
  m.acpi_call = fs.exists("/proc/acpi/call");
  for (const auto& k : kVendor) {
    if (!fs.exists(k.path)) continue;
    bool dup = false;
    for (const auto& v : m.reboot_only) dup |= v.name == k.name;
    if (dup) continue;
    m.reboot_only.push_back({k.name, k.path, read_attr(fs, k.path, "?"), k.meaning});
  }
  return m;
}

}  // namespace gpuhook

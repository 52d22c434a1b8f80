// The panel MUX switches a machine offers, read from sysfs/procfs. Runtime switches can move the
// panel while the host runs (vga_switcheroo's MDIS/MIGD, ACPI MXDS through acpi_call); vendor
// switches (ASUS/HP gpu_mux_mode, Lenovo Legion gsync / hybrid_graphics) only take effect after a
// reboot: they are reported, never written by gpuhook.
#pragma once
#include <string>
#include <vector>

#include "host/fs.h"

namespace gpuhook {

struct VendorMux {
  std::string name;    // "asus gpu_mux_mode"
  std::string path;    // where it lives
  std::string value;   // what it reads now
  std::string meaning; // "0 = dGPU only, 1 = hybrid (Optimus)"
};

struct MuxInfo {
  bool switcheroo = false;         // /sys/kernel/debug/vgaswitcheroo/switch
  std::string switcheroo_state;    // its content, lines joined with "; "
  bool acpi_call = false;          // /proc/acpi/call (the acpi_call module)
  std::vector<VendorMux> reboot_only;
  bool any_runtime() const { return switcheroo || acpi_call; }
  std::string summary() const;     // one line for messages
};

MuxInfo detect_mux(Fs& fs);

}  // namespace gpuhook

// Every display-class PCI device (class 03xx: VGA 0300, 3D 0302, Display 0380, ...) and what
// matters for passing it through: integrated or discrete, its IOMMU group, whether the group is
// clean, and what its class says about outputs. Shared by `doctor` and `check`. Read-only.
//
// Integrated or discrete, from the sysfs topology (the device's place under /sys/devices):
//   1. on a root bus (no bridge above it): integrated. Intel's iGPU is 0000:00:02.0, older AMD
//      APUs' 0000:00:01.0; Debian's intel_iommu "intgpu_off" uses the same rule.
//   2. its slot also holds functions of another vendor: integrated. An AMD APU's GPU sits behind an
//      internal bridge on a non-zero bus, but shares its slot with the processor's own functions
//      (PSP, USB, audio of vendor 1022) - so "bus 0" alone is not enough.
//   3. two or more bridges above it: discrete (a card's own switch, or a chipset port).
//   4. behind a bridge with other functions of its own vendor only (HDMI audio, USB-C): discrete.
//   5. an NVIDIA GPU behind a bridge: discrete (NVIDIA makes no x86 integrated GPUs today).
//   6. otherwise (alone in its slot behind one bridge): discrete, but not certain - an APU's GPU
//      would look the same if the other functions of its slot were hidden. Said so in the output.
// Isolation: every endpoint of its IOMMU group is a function of its own slot. PCI-to-PCI bridges in
// the group are not endpoints (they stay on pcieport); anything else of another slot blocks.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "host/fs.h"
#include "sysinfo/pci.h"

namespace gpuhook {

enum class Outputs { none, wired, unknown };
const char* to_string(Outputs o);  // "none", "wired", "unknown"

struct DisplayAnalysis {
  PciDevice dev;
  bool discrete = false;
  bool certain = true;                  // false: the placement rule could not tell for sure
  std::string placement_reason;         // one sentence
  int bridges_above = -1;               // -1: unknown
  std::vector<PciDevice> group_others;  // other members of its IOMMU group, sorted
  std::vector<std::string> functions;   // endpoints of its own slot that go along, itself included
  bool isolated = false;                // false also when it has no IOMMU group
  std::vector<std::string> blockers;    // endpoints of other slots in its group
  Outputs outputs = Outputs::unknown;
  std::string outputs_text;             // what its class says, one sentence
};

// Every display-class device, sorted by address.
std::vector<DisplayAnalysis> analyse_displays(Fs& fs);
// One device (any class); nullopt when it does not exist.
std::optional<DisplayAnalysis> analyse_display(Fs& fs, const std::string& address);

}  // namespace gpuhook

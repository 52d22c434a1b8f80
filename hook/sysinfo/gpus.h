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
// BMC displays (a server's management controller: ASPEED 1a03:2000, Matrox G200e 102b:0522/0532/
// 0533/0534/0536/0538, or any display function behind an ASPEED bridge) are not discrete: they
// drive the server's remote console and are no GPU to pass through.
//
// The card, not the slot (card_of): the functions of a GPU are the endpoints of its slot and every
// endpoint below the card's own PCIe switch (an upstream port of the GPU's vendor directly above
// the GPU's downstream port, itself below a root port): an Intel Arc A310 has its VGA at 09:00.0
// and its HDMI audio at 0a:00.0, each behind a downstream port of the card's switch. They belong
// to the card in whatever IOMMU group they are (an ACS override splits a slot into groups).
// Isolation: every endpoint of the card's groups is a function of the card, or a PCI-to-PCI bridge
// (stays on pcieport), or a bridge-class device (06xx: host, ISA) without a driver, which VFIO
// leaves unassigned. Anything else blocks (blocks_group).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "host/fs.h"
#include "sysinfo/pci.h"

namespace gpuhook {

enum class Outputs { none, wired, unknown };
const char* to_string(Outputs o);  // "none", "wired", "unknown"

// Whether a member of a card's IOMMU group that is not a function of the card keeps VFIO from
// using the group: an endpoint with a driver; also a driverless one unless it is of a bridge class
// (06xx: a host or ISA bridge has nothing to bind; a USB, SATA or network controller without a
// driver gets one at the next module load or boot, or its driver is only not shown in a listing).
bool blocks_group(const PciDevice& d);

// A display device that is a server's BMC display; the reason in `why` ("ASPEED 1a03:2000 ...").
bool is_bmc_display(Fs& fs, const PciDevice& d, std::string* why = nullptr);

struct Card {
  std::vector<std::string> functions;  // the card's endpoints, the GPU included, sorted
  std::string switch_port;             // upstream port of the card's own switch, "" when none
  std::vector<int> groups;             // IOMMU groups of the functions, sorted (empty: IOMMU off)
  std::vector<PciDevice> others;       // members of those groups that are not functions, sorted
  std::vector<std::string> blockers;   // those of them that keep VFIO from using a group
  std::vector<std::string> left_alone; // driverless bridge-class endpoints (06xx): VFIO accepts them
  bool isolated() const { return !groups.empty() && blockers.empty(); }
};

// The card of a device (any class); `all` is PciSysfs::addresses().
Card card_of(Fs& fs, PciSysfs& pci, const PciDevice& gpu, const std::vector<std::string>& all);

struct DisplayAnalysis {
  PciDevice dev;
  bool discrete = false;
  bool certain = true;                  // false: the placement rule could not tell for sure
  std::string placement_reason;         // one sentence
  int bridges_above = -1;               // -1: unknown
  std::vector<PciDevice> group_others;  // other members of its IOMMU group, sorted
  std::vector<std::string> functions;   // the card's functions (card_of), itself included
  std::vector<int> groups;              // IOMMU groups of those functions
  bool isolated = false;                // false also when it has no IOMMU group
  std::vector<std::string> blockers;    // members of the card's groups that block (blocks_group)
  std::vector<PciDevice> blocker_devices;
  std::string bmc;                      // why it is a BMC's display, "" when it is not
  Outputs outputs = Outputs::unknown;
  std::string outputs_text;             // what its class says, one sentence
};

// Bridges between the device and its root bus (0: on the root bus), -1 when unknown.
int bridges_above_device(Fs& fs, const std::string& address);

// Every display-class device, sorted by address.
std::vector<DisplayAnalysis> analyse_displays(Fs& fs);
// One device (any class); nullopt when it does not exist.
std::optional<DisplayAnalysis> analyse_display(Fs& fs, const std::string& address);

}  // namespace gpuhook

// PCI devices and IOMMU groups as sysfs shows them. Read-only; every read goes through Fs.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/fs.h"

namespace gpuhook {

// "0000:01:00.0"; also accepts "01:00.0" (domain 0). Always formatted in full, lowercase.
struct PciAddress {
  unsigned domain = 0, bus = 0, slot = 0, function = 0;
  static std::optional<PciAddress> parse(std::string_view s);
  std::string str() const;
  std::string slot_str() const;  // "0000:01:00"
  bool same_slot(const PciAddress& o) const {
    return domain == o.domain && bus == o.bus && slot == o.slot;
  }
  auto operator<=>(const PciAddress&) const = default;
};

inline const char* kPciDevices = "/sys/bus/pci/devices";
inline const char* kPciDrivers = "/sys/bus/pci/drivers";
inline const char* kIommuGroups = "/sys/kernel/iommu_groups";

struct PciDevice {
  std::string address;           // "0000:01:00.0"
  std::string vendor, device;    // "10de", "2191"
  std::string subsystem_vendor, subsystem_device;  // "" when sysfs has none
  std::string class_code;        // "030000" (class, subclass, prog-if)
  std::string driver;            // "" when unbound
  std::string driver_override;   // "" when (null)
  std::optional<int> iommu_group;
  bool boot_vga = false;
  std::string class4() const { return class_code.substr(0, 4); }      // "0300"
  bool is_display() const { return class_code.rfind("03", 0) == 0; }
  bool is_audio() const { return class_code.rfind("0403", 0) == 0; }
  // PCI-to-PCI bridges only (0604, semi-transparent 0609, CardBus 0607): what sits between a root
  // bus and an endpoint. Host (0600) and ISA (0601) bridges are endpoints for the IOMMU.
  bool is_pci_bridge() const {
    std::string c = class4();
    return c == "0604" || c == "0609" || c == "0607";
  }
  std::string class_name() const;  // "VGA compatible controller", "3D controller", ...
};

class PciSysfs {
 public:
  // memo: each device's attributes are read once and then remembered, for a reader that asks
  // about the same devices again while nothing changes them (the planner: its stages used to
  // read every function of the card five times over). Never for code that changes drivers.
  enum class Memo { off, on };
  explicit PciSysfs(Fs& fs, Memo memo = Memo::off) : fs_(fs), memo_(memo == Memo::on) {}
  bool exists(const std::string& addr);
  std::optional<PciDevice> device(const std::string& addr);
  std::vector<std::string> addresses();              // sorted
  std::vector<int> groups();                          // sorted numerically
  std::vector<std::string> group_members(int group);  // sorted
  bool iommu_enabled() { return !groups().empty(); }
  std::string device_path(const std::string& addr) const { return std::string(kPciDevices) + "/" + addr; }

 private:
  std::optional<PciDevice> read_device(const std::string& addr);
  Fs& fs_;
  bool memo_;
  std::map<std::string, std::optional<PciDevice>> seen_;
};

// "nvidia (pid)" style descriptions: "0000:01:00.1 Audio device [0403] on snd_hda_intel".
std::string describe_device(const PciDevice& d);
std::string hex4(unsigned v);

}  // namespace gpuhook

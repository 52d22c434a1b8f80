#include "sysinfo/pci.h"

#include <algorithm>
#include <cstdio>

namespace gpuhook {
namespace {

bool parse_hex(std::string_view s, unsigned max, unsigned& out) {
  if (s.empty() || s.size() > 4) return false;
  unsigned v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    v = v * 16 + static_cast<unsigned>(d);
  }
  if (v > max) return false;
  out = v;
  return true;
}

// "0x10de\n" -> "10de"
std::string id_attr(Fs& fs, const std::string& path) {
  std::string v = read_attr(fs, path);
  if (v.rfind("0x", 0) == 0) v = v.substr(2);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v;
}

}  // namespace

std::optional<PciAddress> PciAddress::parse(std::string_view s) {
  // [DDDD:]BB:SS.F
  PciAddress a;
  auto dot = s.rfind('.');
  if (dot == std::string_view::npos || dot + 2 != s.size()) return std::nullopt;
  if (!parse_hex(s.substr(dot + 1), 7, a.function)) return std::nullopt;
  std::string_view head = s.substr(0, dot);
  auto c2 = head.rfind(':');
  if (c2 == std::string_view::npos) return std::nullopt;
  std::string_view slot = head.substr(c2 + 1);
  if (slot.size() != 2 || !parse_hex(slot, 0x1f, a.slot)) return std::nullopt;
  head = head.substr(0, c2);
  auto c1 = head.rfind(':');
  std::string_view bus = c1 == std::string_view::npos ? head : head.substr(c1 + 1);
  if (bus.size() != 2 || !parse_hex(bus, 0xff, a.bus)) return std::nullopt;
  if (c1 != std::string_view::npos) {
    std::string_view dom = head.substr(0, c1);
    if (dom.size() != 4 || !parse_hex(dom, 0xffff, a.domain)) return std::nullopt;
  }
  return a;
}

std::string PciAddress::str() const {
  char b[16];
  std::snprintf(b, sizeof b, "%04x:%02x:%02x.%x", domain, bus, slot, function);
  return b;
}

std::string PciAddress::slot_str() const {
  char b[16];
  std::snprintf(b, sizeof b, "%04x:%02x:%02x", domain, bus, slot);
  return b;
}

std::string hex4(unsigned v) {
  char b[8];
  std::snprintf(b, sizeof b, "%04x", v & 0xffff);
  return b;
}

std::string PciDevice::class_name() const {
  std::string c = class4();
  if (c == "0300") return "VGA compatible controller";
  if (c == "0302") return "3D controller";
  if (c == "0380") return "Display controller";
  if (c == "0403") return "Audio device";
  if (c == "0c03") return "USB controller";
  if (c == "0c80") return "Serial bus controller";
  if (c == "0200") return "Ethernet controller";
  if (c == "0280") return "Network controller";
  if (c == "0604") return "PCI bridge";
  if (c == "0600") return "Host bridge";
  if (c == "0601") return "ISA bridge";
  if (c == "0c05") return "SMBus";
  if (c == "0106") return "SATA controller";
  if (c == "0880") return "System peripheral";
  if (c == "1180") return "Signal processing controller";
  if (c == "0780") return "Communication controller";
  if (c == "0108") return "Non-Volatile memory controller";
  return "Device";
}

bool PciSysfs::exists(const std::string& addr) { return fs_.exists(device_path(addr)); }

std::optional<PciDevice> PciSysfs::device(const std::string& addr) {
  if (!memo_) return read_device(addr);
  auto it = seen_.find(addr);
  if (it == seen_.end()) it = seen_.emplace(addr, read_device(addr)).first;
  return it->second;
}

std::optional<PciDevice> PciSysfs::read_device(const std::string& addr) {
  std::string p = device_path(addr);
  if (!fs_.exists(p)) return std::nullopt;
  PciDevice d;
  d.address = addr;
  d.vendor = id_attr(fs_, p + "/vendor");
  d.device = id_attr(fs_, p + "/device");
  d.subsystem_vendor = id_attr(fs_, p + "/subsystem_vendor");
  d.subsystem_device = id_attr(fs_, p + "/subsystem_device");
  d.class_code = id_attr(fs_, p + "/class");
  d.driver = link_name(fs_, p + "/driver");
  std::string ov = read_attr(fs_, p + "/driver_override");
  d.driver_override = (ov == "(null)") ? "" : ov;
  std::string g = link_name(fs_, p + "/iommu_group");
  if (!g.empty() && g.find_first_not_of("0123456789") == std::string::npos && g.size() < 9) d.iommu_group = std::stoi(g);
  d.boot_vga = read_attr(fs_, p + "/boot_vga") == "1";
  return d;
}

namespace {
// The PCI addresses named by the entries of a directory, normalised and sorted.
std::vector<std::string> addresses_in(Fs& fs, const std::string& dir) {
  auto r = fs.list(dir);
  if (!r) return {};
  std::vector<std::string> v;
  for (auto& n : *r)
    if (auto a = PciAddress::parse(n)) v.push_back(a->str());
  std::sort(v.begin(), v.end());
  return v;
}
}  // namespace

std::vector<std::string> PciSysfs::addresses() { return addresses_in(fs_, kPciDevices); }

std::vector<int> PciSysfs::groups() {
  auto r = fs_.list(kIommuGroups);
  if (!r) return {};
  std::vector<int> v;
  for (auto& n : *r)
    if (!n.empty() && n.size() < 9 && n.find_first_not_of("0123456789") == std::string::npos) v.push_back(std::stoi(n));
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::string> PciSysfs::group_members(int group) {
  return addresses_in(fs_, std::string(kIommuGroups) + "/" + std::to_string(group) + "/devices");
}

std::string describe_device(const PciDevice& d) {
  std::string s = d.address + " " + d.class_name() + " [" + d.class4() + "] " + d.vendor + ":" + d.device;
  s += d.driver.empty() ? " (no driver)" : " on " + d.driver;
  return s;
}

}  // namespace gpuhook

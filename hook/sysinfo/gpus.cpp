#include "sysinfo/gpus.h"

#include <algorithm>

namespace gpuhook {
namespace {

bool is_root_bus_dir(const std::string& name) {
  // "pci0000:00": the host bridge directory of a root bus.
  return name.size() == 10 && name.compare(0, 3, "pci") == 0 && name[7] == ':';
}

// Number of directories between the root bus directory and the device, or -1 when the device's
// place under /sys/devices cannot be read.
int bridges_above(Fs& fs, const std::string& address) {
  auto c = fs.canonical(std::string(kPciDevices) + "/" + address);
  const std::string top = "/sys/devices/";
  // RealFs strips an absolute --root off the resolved path, not a relative one: look for the
  // sysfs part in what came back.
  size_t at = c ? c->rfind(top) : std::string::npos;
  if (at == std::string::npos) return -1;
  std::vector<std::string> parts;
  std::string rest = c->substr(at + top.size());
  for (size_t b = 0; b < rest.size();) {
    size_t e = rest.find('/', b);
    if (e == std::string::npos) e = rest.size();
    if (e > b) parts.push_back(rest.substr(b, e - b));
    b = e + 1;
  }
  if (parts.size() < 2 || !is_root_bus_dir(parts.front()) || parts.back() != address) return -1;
  return static_cast<int>(parts.size()) - 2;
}

void place(DisplayAnalysis& a, const std::vector<PciDevice>& slot_others) {
  const PciDevice& d = a.dev;
  auto addr = PciAddress::parse(d.address);
  if (a.bridges_above == 0) {
    a.discrete = false;
    a.placement_reason = "integrated: it sits on the root bus with no bridge above it, where integrated GPUs are";
    return;
  }
  for (const auto& o : slot_others)
    if (!o.vendor.empty() && o.vendor != d.vendor) {
      a.discrete = false;
      a.placement_reason = "integrated: its slot also holds " + o.address + " (" + o.class_name() + ", vendor " +
                           o.vendor + "), a processor function as on AMD APUs";
      return;
    }
  if (a.bridges_above < 0) {
    // No topology: fall back on the bus number, and say it is a guess.
    a.certain = false;
    a.discrete = addr && addr->bus != 0;
    a.placement_reason = std::string(a.discrete ? "discrete" : "integrated") +
                         " (a guess from its bus number: its place under /sys/devices could not be read)";
    return;
  }
  a.discrete = true;
  if (a.bridges_above >= 2) {
    a.placement_reason = "discrete: " + std::to_string(a.bridges_above) +
                         " bridges above it (a card's own switch or a chipset port); integrated GPUs sit higher";
  } else if (!slot_others.empty()) {
    a.placement_reason = "discrete: behind a bridge, its slot holds only its own vendor's functions (" +
                         slot_others.front().class_name() + (slot_others.size() > 1 ? ", ..." : "") + ")";
  } else if (d.vendor == "10de") {
    a.placement_reason = "discrete: an NVIDIA GPU behind a bridge";
  } else {
    a.certain = false;
    a.placement_reason = "probably discrete: behind one bridge and alone in its slot; an AMD APU's GPU looks the same "
                         "when the other functions of its slot are hidden";
  }
}

void outputs(DisplayAnalysis& a) {
  std::string c = a.dev.class4();
  if (c == "0300") {
    a.outputs = Outputs::wired;
    a.outputs_text = "class VGA [0300]: at least one output is wired to it; that alone does not prove a panel MUX";
  } else if (c == "0302") {
    a.outputs = Outputs::none;
    a.outputs_text = "class 3D [0302]: no display outputs; the VM's picture needs another way (Looking Glass, a "
                     "streaming client or a virtual display in the guest)";
  } else if (c == "0380") {
    a.outputs = Outputs::unknown;
    a.outputs_text = "class Display [0380]: the class does not say whether outputs are wired (AMD reports it for "
                     "laptop dGPUs, which usually have none)";
  } else {
    a.outputs = Outputs::unknown;
    a.outputs_text = "class [" + c + "]: says nothing about outputs";
  }
}

DisplayAnalysis analyse(Fs& fs, PciSysfs& pci, const PciDevice& d, const std::vector<std::string>& all) {
  DisplayAnalysis a;
  a.dev = d;
  auto self = *PciAddress::parse(d.address);
  std::vector<PciDevice> slot_others;
  for (const auto& addr : all) {
    auto p = PciAddress::parse(addr);
    if (!p || addr == d.address || !p->same_slot(self)) continue;
    if (auto o = pci.device(addr)) slot_others.push_back(*o);
  }
  a.bridges_above = bridges_above(fs, d.address);
  place(a, slot_others);
  outputs(a);
  a.functions.push_back(d.address);
  if (!d.iommu_group) {
    for (const auto& o : slot_others)
      if (!o.is_pci_bridge()) a.functions.push_back(o.address);
  } else {
    for (const auto& m : pci.group_members(*d.iommu_group)) {
      if (m == d.address) continue;
      auto o = pci.device(m);
      PciDevice od;
      if (o) od = *o;
      else od.address = m;  // listed in the group, attributes unreadable: counts as an endpoint
      a.group_others.push_back(od);
      if (o && o->is_pci_bridge()) continue;
      if (PciAddress::parse(m)->same_slot(self)) a.functions.push_back(m);
      else a.blockers.push_back(m);
    }
    a.isolated = a.blockers.empty();
  }
  std::sort(a.functions.begin(), a.functions.end());
  return a;
}

}  // namespace

const char* to_string(Outputs o) {
  switch (o) {
    case Outputs::none: return "none";
    case Outputs::wired: return "wired";
    case Outputs::unknown: break;
  }
  return "unknown";
}

std::vector<DisplayAnalysis> analyse_displays(Fs& fs) {
  PciSysfs pci(fs);
  auto all = pci.addresses();
  std::vector<DisplayAnalysis> out;
  for (const auto& addr : all) {
    auto d = pci.device(addr);
    if (d && d->is_display()) out.push_back(analyse(fs, pci, *d, all));
  }
  return out;
}

std::optional<DisplayAnalysis> analyse_display(Fs& fs, const std::string& address) {
  PciSysfs pci(fs);
  auto d = pci.device(address);
  if (!d) return std::nullopt;
  return analyse(fs, pci, *d, pci.addresses());
}

}  // namespace gpuhook

#include "sysinfo/gpus.h"

#include <algorithm>

namespace gpuhook {
namespace {

bool is_root_bus_dir(const std::string& name) {
  // "pci0000:00": the host bridge directory of a root bus.
  return name.size() == 10 && name.compare(0, 3, "pci") == 0 && name[7] == ':';
}

// The directories between the root bus directory and the device (the bridges above it, the top
// first), or nullopt when the device's place under /sys/devices cannot be read.
std::optional<std::vector<std::string>> chain_of(Fs& fs, const std::string& address) {
  auto c = fs.canonical(std::string(kPciDevices) + "/" + address);
  const std::string top = "/sys/devices/";
  // RealFs strips an absolute --root off the resolved path, not a relative one: look for the
  // sysfs part in what came back.
  size_t at = c ? c->rfind(top) : std::string::npos;
  if (at == std::string::npos) return std::nullopt;
  std::vector<std::string> parts;
  std::string rest = c->substr(at + top.size());
  for (size_t b = 0; b < rest.size();) {
    size_t e = rest.find('/', b);
    if (e == std::string::npos) e = rest.size();
    if (e > b) parts.push_back(rest.substr(b, e - b));
    b = e + 1;
  }
  if (parts.size() < 2 || !is_root_bus_dir(parts.front()) || parts.back() != address) return std::nullopt;
  return std::vector<std::string>(parts.begin() + 1, parts.end() - 1);
}

int bridges_above(Fs& fs, const std::string& address) {
  auto c = chain_of(fs, address);
  return c ? static_cast<int>(c->size()) : -1;
}

void place(DisplayAnalysis& a, const std::vector<PciDevice>& slot_others) {
  const PciDevice& d = a.dev;
  auto addr = PciAddress::parse(d.address);
  if (!a.bmc.empty()) {
    a.discrete = false;
    a.placement_reason = "not a GPU to pass through: " + a.bmc;
    return;
  }
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
  is_bmc_display(fs, d, &a.bmc);
  place(a, slot_others);
  outputs(a);
  Card c = card_of(fs, pci, d, all);
  a.functions = c.functions;
  a.groups = c.groups;
  a.blockers = c.blockers;
  for (const auto& o : c.others)
    if (std::find(c.blockers.begin(), c.blockers.end(), o.address) != c.blockers.end()) a.blocker_devices.push_back(o);
  a.isolated = c.isolated();
  if (d.iommu_group)
    for (const auto& m : pci.group_members(*d.iommu_group)) {
      if (m == d.address) continue;
      auto o = pci.device(m);
      PciDevice od;
      if (o) od = *o;
      else od.address = m;  // listed in the group, attributes unreadable: counts as an endpoint
      a.group_others.push_back(od);
    }
  return a;
}

}  // namespace

int bridges_above_device(Fs& fs, const std::string& address) { return bridges_above(fs, address); }

bool blocks_group(const PciDevice& d) {
  if (d.is_pci_bridge()) return false;
  if (!d.driver.empty()) return true;
  return d.class_code.rfind("06", 0) != 0;  // unreadable class ("") blocks too
}

bool is_bmc_display(Fs& fs, const PciDevice& d, std::string* why) {
  std::string ids = d.vendor + ":" + d.device;
  std::string w;
  if (ids == "1a03:2000") w = "ASPEED " + ids + " is a server's BMC display (its remote console)";
  else if (d.vendor == "102b" && (d.device == "0522" || d.device == "0532" || d.device == "0533" || d.device == "0534" ||
                                  d.device == "0536" || d.device == "0538"))
    w = "Matrox G200e " + ids + " is a server's BMC display (its remote console)";
  else if (d.is_display()) {
    if (auto chain = chain_of(fs, d.address))
      for (const auto& b : *chain)
        if (auto bd = PciSysfs(fs).device(b); bd && bd->vendor == "1a03") {
          w = "it sits behind " + b + " (ASPEED " + bd->vendor + ":" + bd->device + "), a BMC's own bridge";
          break;
        }
  }
  if (why) *why = w;
  return !w.empty();
}

Card card_of(Fs& fs, PciSysfs& pci, const PciDevice& gpu, const std::vector<std::string>& all) {
  Card c;
  auto self = *PciAddress::parse(gpu.address);
  // The card's own switch: the GPU's bridge and the one above it are both of the GPU's vendor, and
  // a bridge (a root port or a chipset port) sits above those: the upper one is the switch's
  // upstream port. A root port of the GPU's vendor (Intel) is never taken for the card's.
  auto chain = chain_of(fs, gpu.address);
  if (chain && chain->size() >= 3) {
    auto down = pci.device((*chain)[chain->size() - 1]);
    auto up = pci.device((*chain)[chain->size() - 2]);
    if (down && up && down->is_pci_bridge() && up->is_pci_bridge() && down->vendor == gpu.vendor && up->vendor == gpu.vendor)
      c.switch_port = up->address;
  }
  for (const auto& addr : all) {
    auto p = PciAddress::parse(addr);
    if (!p) continue;
    bool mine = addr == gpu.address;
    if (!mine && p->same_slot(self)) {
      auto d = pci.device(addr);
      mine = d && !d->is_pci_bridge();
    }
    if (!mine && !c.switch_port.empty()) {
      auto d = pci.device(addr);
      if (d && !d->is_pci_bridge()) {
        auto ch = chain_of(fs, addr);
        mine = ch && std::find(ch->begin(), ch->end(), c.switch_port) != ch->end();
      }
    }
    if (mine) c.functions.push_back(addr);
  }
  std::sort(c.functions.begin(), c.functions.end());
  for (const auto& f : c.functions)
    if (auto d = pci.device(f); d && d->iommu_group) c.groups.push_back(*d->iommu_group);
  std::sort(c.groups.begin(), c.groups.end());
  c.groups.erase(std::unique(c.groups.begin(), c.groups.end()), c.groups.end());
  for (int g : c.groups)
    for (const auto& m : pci.group_members(g)) {
      if (std::find(c.functions.begin(), c.functions.end(), m) != c.functions.end()) continue;
      auto o = pci.device(m);
      PciDevice od;
      if (o) od = *o;
      else od.address = m;  // listed in the group, attributes unreadable: counts as an endpoint
      c.others.push_back(od);
      if (blocks_group(od)) c.blockers.push_back(m);
      else if (!od.is_pci_bridge()) c.left_alone.push_back(m);
    }
  std::sort(c.others.begin(), c.others.end(), [](const PciDevice& x, const PciDevice& y) { return x.address < y.address; });
  std::sort(c.blockers.begin(), c.blockers.end());
  std::sort(c.left_alone.begin(), c.left_alone.end());
  return c;
}

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

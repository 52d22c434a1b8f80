#include "support/sysfs_tree.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "fake/fake_host.h"

namespace gpuhook::fixtures {
namespace {

std::vector<std::string> components(const std::string& p) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b < p.size()) {
    size_t e = p.find('/', b);
    if (e == std::string::npos) e = p.size();
    if (e > b) out.push_back(p.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

std::string hex2(unsigned v) {
  char b[4];
  std::snprintf(b, sizeof b, "%02x", v & 0xff);
  return b;
}

std::string root_dir(unsigned domain) {
  char b[32];
  std::snprintf(b, sizeof b, "/sys/devices/pci%04x:00", domain & 0xffff);
  return b;
}

using Bus = std::pair<unsigned, unsigned>;  // domain, bus

Error fail(std::string what, std::string why, int code = 0) {
  Error e;
  e.what = std::move(what);
  e.why = std::move(why);
  e.code = code;
  return e;
}

struct Builder {
  const Listing& l;
  Tree t;
  std::set<std::string> made;  // directories already in entries

  explicit Builder(const Listing& listing) : l(listing) {}

  void dir(const std::string& p) {
    if (p.empty() || p == "/" || made.count(p)) return;
    dir(dirname_of(p));
    made.insert(p);
    t.entries.push_back({TreeEntry::Kind::dir, p, ""});
  }
  void file(const std::string& p, std::string data) {
    dir(dirname_of(p));
    t.entries.push_back({TreeEntry::Kind::file, p, std::move(data)});
  }
  void link(const std::string& p, const std::string& target) {
    dir(dirname_of(p));
    t.entries.push_back({TreeEntry::Kind::link, p, relative_link(dirname_of(p), target)});
  }

  // Which groups hold an endpoint (anything but a PCI bridge).
  std::set<int> groups_with_endpoints() const {
    std::set<int> g;
    for (const auto& d : l.devices)
      if (d.group && !d.is_pci_bridge()) g.insert(*d.group);
    return g;
  }

  // The directory of every device, choosing a bridge above each bus (see sysfs_tree.h).
  std::map<std::string, std::string> place() {
    std::map<Bus, std::vector<const ListedDevice*>> buses;
    for (const auto& d : l.devices) buses[{d.address.domain, d.address.bus}].push_back(&d);
    std::vector<const ListedDevice*> bridges;
    for (const auto& d : l.devices)
      if (d.is_pci_bridge()) bridges.push_back(&d);
    std::set<int> busy = groups_with_endpoints();
    std::set<std::string> used;
    std::map<std::string, std::string> dir_of;
    for (const auto& [bus, devs] : buses) {
      std::string parent;
      if (bus.second == 0) {
        parent = root_dir(bus.first);
      } else {
        std::set<int> groups;
        for (const auto* d : devs)
          if (d->group) groups.insert(*d->group);
        auto below = [&](const ListedDevice* b) { return b->address.domain == bus.first && b->address.bus < bus.second; };
        const ListedDevice* pick = nullptr;
        auto better = [&](const ListedDevice* c) {  // highest bus, then unused, then lowest address
          if (!pick) return true;
          if (c->address.bus != pick->address.bus) return c->address.bus > pick->address.bus;
          bool cu = used.count(c->address.str()), pu = used.count(pick->address.str());
          if (cu != pu) return !cu;
          return c->address < pick->address;
        };
        for (const auto* b : bridges)
          if (below(b) && b->group && groups.count(*b->group) && better(b)) pick = b;
        if (pick) {
          t.notes.push_back("bus " + hex2(bus.second) + " placed behind " + pick->address.str() + " (same IOMMU group)");
        } else {
          for (const auto* b : bridges)
            if (below(b) && !used.count(b->address.str()) && (!b->group || !busy.count(*b->group)) && better(b)) pick = b;
          if (pick)
            t.notes.push_back("bus " + hex2(bus.second) + " placed behind " + pick->address.str() +
                              (pick->group ? " (an unused bridge whose group holds no endpoint)"
                                           : " (an unused bridge on a lower bus; the listing has no groups)"));
        }
        if (pick) {
          used.insert(pick->address.str());
          parent = dir_of.at(pick->address.str());
        } else {
          parent = root_dir(bus.first) + "/bridge-to-bus-" + hex2(bus.second);
          t.notes.push_back("bus " + hex2(bus.second) + ": no bridge for it in the listing; " + parent +
                            " stands for one (not a PCI device)");
        }
      }
      for (const auto* d : devs) dir_of[d->address.str()] = parent + "/" + d->address.str();
    }
    return dir_of;
  }

  std::string boot_vga() const {
    bool laptop = false;
    if (auto it = l.header.find("kind"); it != l.header.end()) laptop = it->second.find("laptop") != std::string::npos;
    std::string first;
    for (const auto& d : l.devices) {
      if (d.class4 != "0300") continue;
      if (d.address.bus == 0) return d.address.str();
      if (first.empty()) first = d.address.str();
    }
    return laptop ? "" : first;
  }

  Tree build() {
    dir("/sys/bus/pci/devices");
    dir("/sys/bus/pci/drivers");
    dir("/sys/kernel/iommu_groups");
    std::set<unsigned> domains;
    for (const auto& d : l.devices) domains.insert(d.address.domain);
    for (unsigned dm : domains) dir(root_dir(dm));
    auto dirs = place();
    std::string vga = boot_vga();
    if (!vga.empty()) t.notes.push_back("boot_vga = 1 on " + vga + " (the listing does not say which device booted)");
    // Parents before children: create device directories in path order.
    std::vector<std::pair<std::string, const ListedDevice*>> order;
    for (const auto& d : l.devices) order.emplace_back(dirs.at(d.address.str()), &d);
    std::sort(order.begin(), order.end());
    for (const auto& [p, d] : order) {
      std::string a = d->address.str();
      dir(p);
      file(p + "/vendor", "0x" + d->vendor + "\n");
      file(p + "/device", "0x" + d->device + "\n");
      file(p + "/class", "0x" + d->class4 + "00\n");
      if (!d->subsystem_vendor.empty()) {
        file(p + "/subsystem_vendor", "0x" + d->subsystem_vendor + "\n");
        file(p + "/subsystem_device", "0x" + d->subsystem_device + "\n");
      }
      file(p + "/driver_override", "(null)\n");
      if (d->class4 == "0300") file(p + "/boot_vga", a == vga ? "1\n" : "0\n");
      link("/sys/bus/pci/devices/" + a, p);
      if (!d->driver.empty()) {
        std::string drv = "/sys/bus/pci/drivers/" + d->driver;
        link(p + "/driver", drv);
        link(drv + "/" + a, p);
      }
      if (d->group) {
        std::string g = "/sys/kernel/iommu_groups/" + std::to_string(*d->group);
        link(p + "/iommu_group", g);
        link(g + "/devices/" + a, p);
      }
    }
    if (!l.cmdline.empty()) file("/proc/cmdline", l.cmdline + "\n");
    if (auto it = l.header.find("kind"); it != l.header.end()) {
      if (it->second.find("laptop") != std::string::npos) file("/sys/class/dmi/id/chassis_type", "10\n");
      else if (it->second.rfind("desktop", 0) == 0) file("/sys/class/dmi/id/chassis_type", "3\n");
    }
    return t;
  }
};

}  // namespace

std::string relative_link(const std::string& from_dir, const std::string& target) {
  auto f = components(from_dir), g = components(target);
  size_t common = 0;
  while (common < f.size() && common < g.size() && f[common] == g[common]) ++common;
  std::string r;
  for (size_t i = common; i < f.size(); ++i) r += "../";
  for (size_t i = common; i < g.size(); ++i) r += g[i] + (i + 1 < g.size() ? "/" : "");
  if (!r.empty() && r.back() == '/') r.pop_back();
  return r.empty() ? "." : r;
}

Tree build_sysfs_tree(const Listing& l) { return Builder(l).build(); }

void write_tree(FakeFs& fs, const Tree& t) {
  for (const auto& e : t.entries) {
    switch (e.kind) {
      case TreeEntry::Kind::dir: fs.put_dir(e.path); break;
      case TreeEntry::Kind::file: fs.put_file(e.path, e.data, 0644); break;
      case TreeEntry::Kind::link: fs.put_link(e.path, e.data); break;
    }
  }
}

Status write_tree_dir(const std::string& root, const Tree& t) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(root, ec) && !fs::is_empty(root, ec))
    return fail("cannot write a sysfs tree into " + root, "the directory is not empty; give a new or empty one");
  fs::create_directories(root, ec);
  if (ec) return fail("cannot create " + root, ec.message(), ec.value());
  for (const auto& e : t.entries) {
    std::string p = root + e.path;
    switch (e.kind) {
      case TreeEntry::Kind::dir:
        fs::create_directories(p, ec);
        break;
      case TreeEntry::Kind::file: {
        std::ofstream out(p, std::ios::binary);
        out << e.data;
        if (!out) return fail("cannot write " + p, "write failed");
        break;
      }
      case TreeEntry::Kind::link:
        fs::create_symlink(e.data, p, ec);
        break;
    }
    if (ec) return fail("cannot create " + p, ec.message(), ec.value());
  }
  return Status::success();
}

}  // namespace gpuhook::fixtures

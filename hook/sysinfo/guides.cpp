#include "sysinfo/guides.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

namespace gpuhook {
namespace {

std::string hex(unsigned v) { return hex4(v); }

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// The kernel's vsscanf "%x" at `p`: leading blanks, an optional 0x, then hex digits (at least one).
bool scan_hex(const std::string& s, size_t& p, unsigned& out) {
  size_t q = p;
  while (q < s.size() && std::isspace(static_cast<unsigned char>(s[q]))) ++q;
  if (q + 1 < s.size() && s[q] == '0' && (s[q + 1] == 'x' || s[q + 1] == 'X') && q + 2 < s.size() && is_hex(s[q + 2])) q += 2;
  if (q >= s.size() || !is_hex(s[q])) return false;
  unsigned long v = 0;
  while (q < s.size() && is_hex(s[q])) {
    v = v * 16 + static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(s[q])) ? s[q] - '0' : (std::tolower(s[q]) - 'a' + 10));
    v &= 0xffffffffUL;
    ++q;
  }
  out = static_cast<unsigned>(v);
  p = q;
  return true;
}

std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

bool starts(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

std::vector<std::string> split(const std::string& s, char c) {
  std::vector<std::string> v;
  size_t b = 0;
  for (;;) {
    size_t e = s.find(c, b);
    v.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  return v;
}

std::string entry_ids(const VfioIdEntry& e) {
  std::string s = hex(e.vendor);
  s.append(":").append(hex(e.device));
  if (e.subvendor) s.append(":").append(hex(*e.subvendor));
  if (e.subdevice) s.append(":").append(hex(*e.subdevice));
  return s;
}

bool matches(const VfioIdEntry& e, const PciDevice& d) {
  if (!e.valid) return false;
  // A sysfs id that is not 1-4 hex digits matches nothing (0x1ffff is no 16-bit id).
  auto h = [](const std::string& x) {
    if (x.empty() || x.size() > 4 || x.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) return 0x1ffffu;
    return static_cast<unsigned>(std::strtoul(x.c_str(), nullptr, 16));
  };
  if (d.vendor.empty() || d.device.empty()) return false;
  if (h(d.vendor) != e.vendor || h(d.device) != e.device) return false;
  if (e.subvendor && *e.subvendor != 0xffffffffu && h(d.subsystem_vendor) != *e.subvendor) return false;
  if (e.subdevice && *e.subdevice != 0xffffffffu && h(d.subsystem_device) != *e.subdevice) return false;
  return true;
}

// The ids a person meant in the part the kernel did not read (".10de:1aed" -> "10de:1aed").
std::vector<std::string> lost_ids(const std::string& rest) {
  std::vector<std::string> out;
  for (size_t i = 0; i + 9 <= rest.size(); ++i) {
    if (i > 0 && is_hex(rest[i - 1])) continue;
    bool ok = true;
    for (size_t k = 0; k < 9 && ok; ++k) ok = k == 4 ? rest[i + k] == ':' : is_hex(rest[i + k]);
    if (ok && (i + 9 == rest.size() || !is_hex(rest[i + 9]))) {
      std::string id = rest.substr(i, 9);
      std::transform(id.begin(), id.end(), id.begin(), [](unsigned char c) { return std::tolower(c); });
      out.push_back(id);
      i += 8;
    }
  }
  return out;
}

}  // namespace

std::vector<VfioIdEntry> parse_vfio_ids(const std::string& list) {
  std::vector<VfioIdEntry> out;
  for (const auto& id : split(list, ',')) {
    if (id.empty()) continue;  // the kernel skips empty entries
    VfioIdEntry e;
    e.text = id;
    unsigned v[6] = {0, 0, 0, 0, 0, 0};
    int fields = 0;
    size_t p = 0;
    while (fields < 6) {
      if (fields > 0) {
        if (p >= id.size() || id[p] != ':') break;
        ++p;
      }
      size_t q = p;
      if (!scan_hex(id, q, v[fields])) {
        if (fields > 0) --p;  // the ':' was read, the field was not: stop before it
        break;
      }
      p = q;
      ++fields;
    }
    e.valid = fields >= 2;
    e.vendor = v[0], e.device = v[1];
    if (fields >= 3) e.subvendor = v[2];
    if (fields >= 4) e.subdevice = v[3];
    if (p < id.size()) e.rest = id.substr(p);
    out.push_back(e);
  }
  return out;
}

std::vector<VfioIdsSource> static_vfio_ids(Fs& fs) {
  std::vector<VfioIdsSource> out;
  // modprobe's order: a file name in an earlier directory hides the same name in a later one.
  std::map<std::string, std::string> files;  // name -> path
  for (const char* dir : {"/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"}) {
    auto l = fs.list(dir);
    if (!l) continue;
    for (const auto& n : *l)
      if (n.size() > 5 && n.substr(n.size() - 5) == ".conf" && !files.count(n)) files[n] = std::string(dir) + "/" + n;
  }
  for (const auto& [name, path] : files) {
    auto text = fs.read(path);
    if (!text) continue;
    std::istringstream in(*text);
    std::string raw;
    int no = 0;
    while (std::getline(in, raw)) {
      ++no;
      std::string line = trim(raw);
      if (line.empty() || line[0] == '#') continue;
      std::istringstream words(line);
      std::string w, module;
      words >> w >> module;
      std::replace(module.begin(), module.end(), '-', '_');
      if (w != "options" || module != "vfio_pci") continue;
      while (words >> w) {
        if (!starts(w, "ids=")) continue;
        std::string v = w.substr(4);
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
        out.push_back({path + ":" + std::to_string(no), line, parse_vfio_ids(v)});
      }
    }
  }
  if (auto c = fs.read("/proc/cmdline")) {
    std::istringstream in(*c);
    std::string arg;
    while (in >> arg)
      if (starts(arg, "vfio-pci.ids=") || starts(arg, "vfio_pci.ids="))
        out.push_back({"/proc/cmdline", arg, parse_vfio_ids(arg.substr(arg.find('=') + 1))});
  }
  return out;
}

std::vector<Issue> cmdline_issues(const IommuInfo& info) {
  std::vector<Issue> out;
  if (!info.cmdline_known) return out;
  static const std::set<std::string> iommu_words = {"off", "force", "noforce", "biomerge", "panic", "nopanic", "merge",
                                                    "nomerge", "forcesac", "allowdac", "nodac", "usedac", "soft", "pt",
                                                    "nopt", "fullflush", "nofullflush", "noagp", "noaperture", "memaper"};
  static const std::set<std::string> intel_words = {"on", "off", "igfx_off", "forcedac", "strict", "sp_off", "sm_on", "sm_off", "tboot_noforce"};
  static const std::set<std::string> amd_words = {"fullflush", "force_enable", "off", "force_isolation", "pgtbl_v1", "pgtbl_v2",
                                                  "irtcachedis", "nohugepages", "v2_pgsizes_only"};
  bool intel = info.cpu_vendor == "intel" || (info.cpu_vendor.empty() && info.dmar == Known::yes);
  bool amd = info.cpu_vendor == "amd" || (info.cpu_vendor.empty() && info.ivrs == Known::yes);
  std::string grub = " (GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub, then update-grub, and reboot)";
  for (const auto& arg : info.cmdline_args) {
    std::string key = arg.substr(0, arg.find('='));
    if (key != "iommu" && key != "intel_iommu" && key != "amd_iommu") continue;
    std::string value = arg.substr(arg.find('=') + 1);
    const auto& known = key == "iommu" ? iommu_words : key == "intel_iommu" ? intel_words : amd_words;
    std::vector<std::string> unknown;
    for (const auto& w : split(value, ',')) {
      std::string word = w.substr(0, w.find('='));  // memaper=2
      if (!word.empty() && !known.count(word == w || key != "iommu" ? w : word)) unknown.push_back(w);
    }
    if (unknown.empty()) continue;
    std::string fix;
    bool has_pt = value.find("pt") != std::string::npos;
    if (key == "amd_iommu")
      fix = "remove " + arg + ": AMD-Vi is on by default when the firmware enables it" + (has_pt ? "" : "") + grub;
    else if (key == "iommu" && std::any_of(unknown.begin(), unknown.end(), [](const std::string& u) { return starts(u, "iommu=") || starts(u, "intel_iommu=") || starts(u, "amd_iommu="); }))
      fix = "write each option on its own, separated by a space: " + std::string(intel ? "intel_iommu=on " : "") + "iommu=pt" + grub;
    else if (key == "iommu")
      fix = std::string("replace ") + arg + " with " + (intel ? "intel_iommu=on" : amd ? "nothing (AMD-Vi is on by default)" : "intel_iommu=on (Intel) or nothing (AMD)") +
            (has_pt ? " iommu=pt" : "") + grub;
    else
      fix = "use intel_iommu=on" + grub;
    std::string vals = key == "iommu" ? "off, force, noforce, pt, nopt, soft, ..." : key == "intel_iommu" ? "on, off, igfx_off, sm_on, ..." : "off, fullflush, force_isolation, ...";
    std::vector<std::string> quoted;
    for (const auto& u : unknown) quoted.push_back("'" + u + "'");
    out.push_back({"cmdline-iommu-value", info.enabled() ? "warning" : "error",
                   "the kernel command line has " + arg + ": " + key + "= has no value " + join(quoted) +
                       "; the kernel ignores it (it knows " + vals + ")" +
                       (key == "iommu" && !has_pt ? ", so it does not turn the IOMMU on" : ""),
                   fix});
  }
  if (!info.enabled() && intel && !amd && !info.cmdline_enables && info.intel_default == "off")
    out.push_back({"cmdline-intel-iommu-missing", "error",
                   "the kernel " + info.kernel_release + " turns the Intel IOMMU off by default (CONFIG_INTEL_IOMMU_DEFAULT_ON is not set) and the "
                   "command line has no intel_iommu=on",
                   "add intel_iommu=on to the kernel command line" + grub});
  return out;
}

std::vector<Issue> vfio_ids_issues(Fs& fs, const std::vector<std::vector<std::string>>& cards,
                                   const std::vector<std::string>& dynamic) {
  std::vector<Issue> out;
  auto sources = static_vfio_ids(fs);
  if (sources.empty()) return out;
  PciSysfs pci(fs);
  std::vector<PciDevice> devs;
  for (const auto& a : pci.addresses())
    if (auto d = pci.device(a)) devs.push_back(*d);
  auto in_card = [&](const std::string& a) {
    for (const auto& c : cards)
      if (std::find(c.begin(), c.end(), a) != c.end()) return true;
    return false;
  };
  std::set<std::string> matched;  // every address some valid entry binds
  for (const auto& s : sources) {
    for (const auto& e : s.entries) {
      if (!e.valid) {
        out.push_back({"vfio-ids-invalid", "error",
                       s.where + ": the vfio-pci id '" + e.text + "' in `" + s.line + "` is not vendor:device in hex: the kernel ignores it",
                       "write it as vendor:device, e.g. 10de:1aed (`gpuhook ids ADDRESS` prints them), or remove it"});
        continue;
      }
      if (!e.rest.empty()) {
        auto lost = lost_ids(e.rest);
        std::string message = s.where + ": the kernel reads the vfio-pci id '" + e.text + "' as " + entry_ids(e) + " and ignores '" + e.rest + "'";
        std::string fix = "separate the ids with commas: ids=" + entry_ids(e);
        if (!lost.empty()) {
          message.append(": ").append(join(lost)).append(" is not bound to vfio-pci and stays on its host driver, so its IOMMU group is not viable");
          fix.append(",").append(join(lost, ","));
        }
        out.push_back({"vfio-ids-misread", "error", message, fix});
      }
      std::vector<std::string> bridges, outside;
      for (const auto& d : devs) {
        if (!matches(e, d)) continue;
        matched.insert(d.address);
        if (d.is_pci_bridge()) bridges.push_back(d.address + " (" + d.class_name() + ")");
        else if (!in_card(d.address)) outside.push_back(d.address + " (" + d.class_name() + (d.driver.empty() ? "" : " on " + d.driver) + ")");
      }
      if (!bridges.empty())
        out.push_back({"vfio-ids-bridge", "error",
                       s.where + ": the vfio-pci id " + entry_ids(e) + " is the id of " + join(bridges) +
                           ": vfio-pci refuses bridges (a root port stays on pcieport), and the GPU's functions are the endpoints below it",
                       "remove " + entry_ids(e) + " from `" + s.line + "`"});
      if (!outside.empty())
        out.push_back({"vfio-ids-shared", outside.size() > 1 ? "error" : "warning",
                       s.where + ": the vfio-pci id " + entry_ids(e) + " matches " + join(outside) +
                           (outside.size() > 1 ? ", devices" : ", a device") + " outside the GPU's card: vfio-pci takes " +
                           (outside.size() > 1 ? "every one of them" : "it") + " from the host at boot",
                       "remove " + entry_ids(e) + " from `" + s.line + "`; give one device to a VM by its address (a <hostdev>), not by its id"});
    }
  }
  // A card whose functions are only partly listed: the rest stays on its host drivers.
  for (const auto& c : cards) {
    std::vector<std::string> in, missing;
    for (const auto& a : c) {
      if (matched.count(a)) in.push_back(a);
      else if (auto d = pci.device(a)) missing.push_back(a + " (" + d->vendor + ":" + d->device + ", " + d->class_name() + ")");
    }
    if (in.empty() || missing.empty()) continue;
    out.push_back({"vfio-ids-partial", "error",
                   "the static vfio-pci ids bind " + join(in) + " of the card " + c.front() + " but not " + join(missing) +
                       ": that function stays on its host driver and the card's IOMMU group is not viable",
                   "add its id to the ids= list, or remove the static binding and let gpuhook bind the whole card at VM start"});
  }
  // Static and dynamic binding of the same card.
  std::vector<std::string> both;
  for (const auto& a : dynamic)
    if (matched.count(a)) both.push_back(a);
  if (!both.empty()) {
    std::vector<std::string> lines;
    for (const auto& s : sources) lines.push_back(s.where + " `" + s.line + "`");
    out.push_back({"vfio-ids-static", "warning",
                   join(both) + " are bound to vfio-pci at boot by static ids, and gpuhook binds them again at each VM start "
                                "and gives them back to the host at each stop: two owners; the host never gets the card",
                   "choose one: for gpuhook's dynamic binding remove " + join(lines, "; ") +
                       " (then update-initramfs -u and, for /proc/cmdline, update-grub) and reboot; or keep them and remove the profile"});
  }
  return out;
}

std::vector<Issue> reset_issues(Fs& fs, const PciDevice& gpu) {
  std::vector<Issue> out;
  std::string path = std::string(kPciDevices) + "/" + gpu.address + "/reset_method";
  if (fs.exists(path) && read_attr(fs, path).empty())
    out.push_back({"gpu-reset-none", "warning",
                   gpu.address + " offers no reset method (" + path + " is empty): after the VM stops, the card may stay in the "
                   "state the guest left it in, and a second start may fail or hang",
                   "update the card's firmware if its maker offers one; test a VM start, stop and start again before relying on it"});
  if (gpu.vendor == "1002") {
    static const std::map<std::string, const char*> families = {
        {"67c0", "Polaris 10"}, {"67c1", "Polaris 10"}, {"67c2", "Polaris 10"}, {"67c4", "Polaris 10"}, {"67c7", "Polaris 10"},
        {"67c8", "Polaris 10"}, {"67c9", "Polaris 10"}, {"67ca", "Polaris 10"}, {"67cc", "Polaris 10"}, {"67cf", "Polaris 10"},
        {"67d0", "Polaris 10"}, {"67df", "Polaris 10"}, {"6fdf", "Polaris 10"}, {"67e0", "Polaris 11"}, {"67e1", "Polaris 11"},
        {"67e3", "Polaris 11"}, {"67e7", "Polaris 11"}, {"67e8", "Polaris 11"}, {"67e9", "Polaris 11"}, {"67eb", "Polaris 11"},
        {"67ef", "Polaris 11"}, {"67ff", "Polaris 11"}, {"6980", "Polaris 12"}, {"6981", "Polaris 12"}, {"6985", "Polaris 12"},
        {"6986", "Polaris 12"}, {"6987", "Polaris 12"}, {"6995", "Polaris 12"}, {"6997", "Polaris 12"}, {"699f", "Polaris 12"},
        {"6860", "Vega 10"}, {"6861", "Vega 10"}, {"6862", "Vega 10"}, {"6863", "Vega 10"}, {"6864", "Vega 10"},
        {"6867", "Vega 10"}, {"6868", "Vega 10"}, {"6869", "Vega 10"}, {"686a", "Vega 10"}, {"686b", "Vega 10"},
        {"686c", "Vega 10"}, {"686d", "Vega 10"}, {"686e", "Vega 10"}, {"687f", "Vega 10"}, {"66a0", "Vega 20"},
        {"66a1", "Vega 20"}, {"66a2", "Vega 20"}, {"66a3", "Vega 20"}, {"66a7", "Vega 20"}, {"66af", "Vega 20"},
        {"7310", "Navi 10"}, {"7312", "Navi 10"}, {"7318", "Navi 10"}, {"7319", "Navi 10"}, {"731a", "Navi 10"},
        {"731b", "Navi 10"}, {"731e", "Navi 10"}, {"731f", "Navi 10"}, {"7360", "Navi 12"}, {"7362", "Navi 12"},
        {"7340", "Navi 14"}, {"7341", "Navi 14"}, {"7347", "Navi 14"}, {"734f", "Navi 14"}};
    auto f = families.find(gpu.device);
    if (f != families.end() && !fs.is_dir("/sys/module/vendor_reset"))
      out.push_back({"gpu-reset-bug", "warning",
                     gpu.address + " (1002:" + gpu.device + ") is an AMD " + f->second + " GPU, a family with the known reset bug, "
                     "and the vendor-reset module is not loaded: after the VM stops, the card often cannot be reset, and the "
                     "next VM start or the host's driver fails until the host reboots",
                     "install vendor-reset (github.com/gnif/vendor-reset, DKMS) and load it at boot (echo vendor-reset > "
                     "/etc/modules-load.d/vendor-reset.conf)"});
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> host_critical_devices(Fs& fs) {
  std::vector<std::pair<std::string, std::string>> out;
  // The last PCI address in a device's place under /sys/devices.
  auto pci_of = [&](const std::string& link) -> std::string {
    auto c = fs.canonical(link);
    if (!c) return "";
    std::string found;
    for (const auto& part : split(*c, '/'))
      if (auto a = PciAddress::parse(part); a && part.size() == 12) found = a->str();
    return found;
  };
  // The root file system's block device: mountinfo's major:minor, else /proc/mounts' /dev name.
  if (auto mi = fs.read("/proc/self/mountinfo")) {
    std::istringstream in(*mi);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream w(line);
      std::string id, parent, majmin, root, mnt;
      if (!(w >> id >> parent >> majmin >> root >> mnt) || mnt != "/") continue;
      std::string a = pci_of("/sys/dev/block/" + majmin);
      if (!a.empty()) {
        out.push_back({a, "the controller of the host's root file system (block device " + majmin + " on /)"});
      }
    }
  }
  bool root_found = !out.empty();
  if (auto m = root_found ? Result<std::string>(std::string()) : fs.read("/proc/mounts")) {
    std::istringstream in(*m);
    std::string src, mnt, rest;
    while (in >> src >> mnt && std::getline(in, rest)) {
      if (mnt != "/" || !starts(src, "/dev/")) continue;
      std::string name = src.substr(5);
      if (name.find('/') != std::string::npos) {  // /dev/mapper/x: its slaves would say; not followed
        continue;
      }
      std::string a = pci_of("/sys/class/block/" + name);
      if (!a.empty()) out.push_back({a, "the controller of the host's root file system (" + src + " on /)"});
    }
  }
  if (auto r = fs.read("/proc/net/route")) {
    std::istringstream in(*r);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream w(line);
      std::string iface, dest;
      w >> iface >> dest;
      if (dest != "00000000") continue;
      std::string a = pci_of("/sys/class/net/" + iface);
      if (!a.empty()) out.push_back({a, "the network device of the host's default route (" + iface + ")"});
    }
  }
  return out;
}

}  // namespace gpuhook

#include "sysinfo/kmod.h"

#include <algorithm>
#include <sstream>

namespace gpuhook {
std::string module_name(std::string_view v) {
  std::string m(v);
  std::replace(m.begin(), m.end(), '-', '_');
  return m;
}

namespace {

std::string normal(std::string m) { return module_name(m); }

// "kernel/drivers/vfio/pci/vfio-pci.ko.xz" -> "vfio_pci"
std::string module_of_path(std::string_view p) {
  std::string b = basename_of(p);
  auto ko = b.find(".ko");
  if (ko != std::string::npos) b.resize(ko);
  return normal(b);
}

// Whether a modules.builtin / modules.dep style file lists the module (first field of each line).
bool lists(const std::string& text, const std::string& want) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    std::string path = trim(colon == std::string::npos ? line : line.substr(0, colon));
    if (!path.empty() && module_of_path(path) == want) return true;
  }
  return false;
}

}  // namespace

const char* to_string(ModuleState s) {
  switch (s) {
    case ModuleState::loaded: return "loaded";
    case ModuleState::builtin: return "builtin";
    case ModuleState::available: return "available";
    case ModuleState::missing: return "missing";
    case ModuleState::unknown: break;
  }
  return "unknown";
}

ModuleInfo module_info(Fs& fs, const std::string& name, std::string release) {
  ModuleInfo m;
  m.name = name;
  const std::string n = normal(name);
  const std::string sys = "/sys/module/" + n;
  if (read_attr(fs, sys + "/initstate") == "live") {
    m.state = ModuleState::loaded;
    m.evidence = sys + "/initstate";
    return m;
  }
  if (fs.is_dir(sys) && !fs.exists(sys + "/initstate")) {
    m.state = ModuleState::builtin;
    m.evidence = sys + " (no initstate)";
    return m;
  }
  if (release.empty()) release = read_attr(fs, "/proc/sys/kernel/osrelease");
  if (release.empty()) {
    m.evidence = "/proc/sys/kernel/osrelease unreadable";
    return m;
  }
  const std::string dir = "/lib/modules/" + release;
  auto builtin = fs.read(dir + "/modules.builtin");
  if (builtin && lists(*builtin, n)) {
    m.state = ModuleState::builtin;
    m.evidence = dir + "/modules.builtin";
    return m;
  }
  auto dep = fs.read(dir + "/modules.dep");
  if (dep && lists(*dep, n)) {
    m.state = ModuleState::available;
    m.evidence = dir + "/modules.dep";
    return m;
  }
  if (!builtin && !dep) {
    m.evidence = dir + "/modules.dep unreadable";
    return m;
  }
  m.state = ModuleState::missing;
  m.evidence = "not in " + dir + "/modules.dep nor modules.builtin";
  return m;
}

}  // namespace gpuhook

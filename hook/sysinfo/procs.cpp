#include "sysinfo/procs.h"

#include <sstream>

namespace gpuhook {

std::string unit_of_process(Fs& fs, int pid) {
  auto c = fs.read("/proc/" + std::to_string(pid) + "/cgroup");
  if (!c) return "";
  std::istringstream in(*c);
  std::string line, path;
  while (std::getline(in, line)) {
    // cgroup v2: "0::/path"; v1 hybrid: "1:name=systemd:/path" is the same hierarchy.
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
    else if (line.find(":name=systemd:") != std::string::npos && path.empty()) path = line.substr(line.rfind(':') + 1);
  }
  // The innermost component that is a unit (".service", ".scope"): a service's own sub-cgroups
  // ("init.scope" of user@.service, "app.slice/...") are walked from the end.
  std::string best;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t n = path.find('/', pos);
    if (n == std::string::npos) n = path.size();
    std::string comp = path.substr(pos, n - pos);
    auto ends = [&](const char* suf) {
      std::string s = suf;
      return comp.size() > s.size() && comp.compare(comp.size() - s.size(), s.size(), s) == 0;
    };
    if (ends(".service") || ends(".scope")) best = comp;
    pos = n + 1;
  }
  return best;
}

std::string unit_alias_target(Fs& fs, const std::string& unit) {
  for (const char* dir : {"/etc/systemd/system/", "/run/systemd/system/"}) {
    auto t = fs.readlink(dir + unit);
    if (t) {
      std::string b = basename_of(*t);
      if (!b.empty() && b != "null") return b;
    }
  }
  return unit;
}

std::string nvidia_node_of(Fs& fs, const std::string& address) {
  auto info = fs.read("/proc/driver/nvidia/gpus/" + address + "/information");
  if (!info) return "";
  std::istringstream in(*info);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Device Minor:", 0) != 0) continue;
    std::string v = trim(line.substr(13));
    if (v.empty() || v.size() > 3 || v.find_first_not_of("0123456789") != std::string::npos) return "";
    return "/dev/nvidia" + v;
  }
  return "";
}

}  // namespace gpuhook

#include "sysinfo/tuning_facts.h"

#include <algorithm>
#include <cstdlib>

namespace gpuhook {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    size_t c = s.find(sep, pos);
    out.push_back(s.substr(pos, c == std::string::npos ? std::string::npos : c - pos));
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  return out;
}

bool to_uint(const std::string& s, unsigned long long max, unsigned long long& out) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  out = std::strtoull(s.c_str(), nullptr, 10);
  return out <= max;
}

}  // namespace

std::optional<UserInfo> lookup_user(Fs& fs, const std::string& name) {
  auto passwd = fs.read("/etc/passwd");
  if (!passwd || name.empty()) return std::nullopt;
  std::optional<UserInfo> u;
  for (const auto& line : split(*passwd, '\n')) {
    auto f = split(line, ':');
    unsigned long long uid = 0, gid = 0;
    if (f.size() < 7 || f[0] != name || !to_uint(f[2], 0xfffffffe, uid) || !to_uint(f[3], 0xfffffffe, gid)) continue;
    u = UserInfo{name, static_cast<unsigned>(uid), static_cast<unsigned>(gid), f[5], f[6], {static_cast<unsigned>(gid)}};
    break;
  }
  if (!u) return u;
  if (auto group = fs.read("/etc/group"))
    for (const auto& line : split(*group, '\n')) {
      auto f = split(line, ':');
      unsigned long long gid = 0;
      if (f.size() < 4 || !to_uint(f[2], 0xfffffffe, gid)) continue;
      auto members = split(f[3], ',');
      if (std::find(members.begin(), members.end(), name) != members.end() &&
          std::find(u->groups.begin(), u->groups.end(), gid) == u->groups.end())
        u->groups.push_back(static_cast<unsigned>(gid));
    }
  return u;
}

std::optional<unsigned> lookup_group(Fs& fs, const std::string& name) {
  auto group = fs.read("/etc/group");
  if (!group) return std::nullopt;
  for (const auto& line : split(*group, '\n')) {
    auto f = split(line, ':');
    unsigned long long gid = 0;
    if (f.size() >= 3 && f[0] == name && to_uint(f[2], 0xfffffffe, gid)) return static_cast<unsigned>(gid);
  }
  return std::nullopt;
}

std::string qemu_group_name(Fs& fs) {
  std::string g = "kvm";
  auto conf = fs.read("/etc/libvirt/qemu.conf");
  if (!conf) return g;
  for (auto line : split(*conf, '\n')) {
    line = trim(line);
    if (line.rfind("group", 0) != 0) continue;
    std::string rest = trim(line.substr(5));
    if (rest.empty() || rest[0] != '=') continue;
    rest = trim(rest.substr(1));
    if (rest.size() >= 2 && rest.front() == '"' && rest.find('"', 1) != std::string::npos) g = rest.substr(1, rest.find('"', 1) - 1);
  }
  return g;
}

std::optional<std::set<int>> parse_cpu_list(const std::string& in) {
  std::set<int> on, off;
  std::string s = trim(in);
  if (s.empty()) return on;
  for (const auto& part : split(s, ',')) {
    std::string p = trim(part);
    bool neg = !p.empty() && p[0] == '^';
    if (neg) p = p.substr(1);
    auto dash = p.find('-');
    unsigned long long a = 0, b = 0;
    if (dash == std::string::npos) {
      if (!to_uint(p, 8191, a)) return std::nullopt;
      b = a;
    } else if (!to_uint(p.substr(0, dash), 8191, a) || !to_uint(p.substr(dash + 1), 8191, b) || b < a) {
      return std::nullopt;
    }
    for (auto i = a; i <= b; ++i) (neg ? off : on).insert(static_cast<int>(i));
  }
  for (int c : off) on.erase(c);
  return on;
}

std::string format_cpu_list(const std::set<int>& cpus) {
  std::string out;
  for (auto it = cpus.begin(); it != cpus.end();) {
    int a = *it, b = a;
    auto next = std::next(it);
    while (next != cpus.end() && *next == b + 1) b = *next++;
    out += (out.empty() ? "" : ",") + std::to_string(a) + (b > a ? "-" + std::to_string(b) : "");
    it = next;
  }
  return out;
}

std::set<int> online_cpus(Fs& fs) {
  auto s = parse_cpu_list(read_attr(fs, "/sys/devices/system/cpu/online"));
  return s ? *s : std::set<int>{};
}

std::string hugepage_dir(long long size_kib, int node) {
  std::string leaf = "hugepages/hugepages-" + std::to_string(size_kib) + "kB";
  if (node < 0) return "/sys/kernel/mm/" + leaf;
  return "/sys/devices/system/node/node" + std::to_string(node) + "/" + leaf;
}

long long meminfo_kib(Fs& fs, const std::string& key) {
  auto m = fs.read("/proc/meminfo");
  if (!m) return -1;
  for (const auto& line : split(*m, '\n')) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::string v = trim(line.substr(key.size() + 1));
    v = v.substr(0, v.find(' '));
    unsigned long long n = 0;
    if (to_uint(v, 1ull << 50, n)) return static_cast<long long>(n);
  }
  return -1;
}

long long default_hugepage_kib(Fs& fs) {
  long long v = meminfo_kib(fs, "Hugepagesize");
  return v > 0 ? v : 0;
}

std::vector<std::string> session_environment(Fs& fs, unsigned uid, int* from_pid) {
  static const char* keep[] = {"WAYLAND_DISPLAY", "DISPLAY", "XDG_RUNTIME_DIR", "XAUTHORITY", "DBUS_SESSION_BUS_ADDRESS",
                               "XDG_SESSION_TYPE"};
  auto procs = fs.list("/proc");
  if (!procs) return {};
  std::vector<int> pids;
  for (const auto& p : *procs) {
    unsigned long long v = 0;
    if (to_uint(p, 1u << 30, v)) pids.push_back(static_cast<int>(v));
  }
  std::sort(pids.begin(), pids.end());
  for (int pid : pids) {
    std::string dir = "/proc/" + std::to_string(pid);
    FileInfo fi = fs.stat(dir);
    if (fi.type != FileType::directory || fi.uid != uid) continue;
    auto env = fs.read(dir + "/environ");
    if (!env) continue;
    std::vector<std::string> out;
    bool display = false;
    for (const auto& kv : split(*env, '\0')) {
      for (const char* k : keep) {
        std::string pre = std::string(k) + "=";
        if (kv.rfind(pre, 0) != 0 || kv.size() > 4096) continue;
        out.push_back(kv);
        display |= pre == "WAYLAND_DISPLAY=" || pre == "DISPLAY=";
      }
    }
    if (!display) continue;
    if (from_pid) *from_pid = pid;
    return out;
  }
  return {};
}

bool is_power_of_two(long long v) { return v > 0 && (v & (v - 1)) == 0; }

long long looking_glass_min_size(int width, int height) {
  long long need = static_cast<long long>(width) * height * 4 * 2 + (10ll << 20);
  long long p = 1;
  while (p < need) p <<= 1;
  return p;
}

}  // namespace gpuhook

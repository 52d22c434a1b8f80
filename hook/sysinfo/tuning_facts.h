// Read-only facts for tuning and Looking Glass (issues 13, 16): users and groups (from
// /etc/passwd and /etc/group through Fs, so --root and the fake host work), the group QEMU runs
// as, CPU lists, online CPUs, huge page pools, cpufreq, desktop sessions.
#pragma once
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "host/fs.h"

namespace gpuhook {

struct UserInfo {
  std::string name;
  unsigned uid = 0, gid = 0;
  std::string home, shell;
  std::vector<unsigned> groups;  // primary first, then every /etc/group membership
};
std::optional<UserInfo> lookup_user(Fs& fs, const std::string& name);
std::optional<unsigned> lookup_group(Fs& fs, const std::string& name);
// The group QEMU runs as: `group = "..."` of /etc/libvirt/qemu.conf, else "kvm".
std::string qemu_group_name(Fs& fs);

// "0-3,8,^2" -> {0,1,3,8}; nullopt when malformed (or a CPU above 8191).
std::optional<std::set<int>> parse_cpu_list(const std::string& s);
// {0,1,2,5} -> "0-2,5"
std::string format_cpu_list(const std::set<int>& cpus);
// /sys/devices/system/cpu/online
std::set<int> online_cpus(Fs& fs);

// The huge page pool of one size, system-wide (node < 0) or of one NUMA node.
std::string hugepage_dir(long long size_kib, int node);
// /proc/meminfo "Hugepagesize:" in KiB (2048 on x86), 0 unknown.
long long default_hugepage_kib(Fs& fs);
// MemFree / MemAvailable of /proc/meminfo in KiB, -1 unknown.
long long meminfo_kib(Fs& fs, const std::string& key);

// Environment of a user's graphical session: WAYLAND_DISPLAY, DISPLAY, XDG_RUNTIME_DIR, XAUTHORITY,
// DBUS_SESSION_BUS_ADDRESS, XDG_SESSION_TYPE, taken from a process of that user that has
// WAYLAND_DISPLAY or DISPLAY (its session's programs all do; works with logind, elogind or
// none). Empty when the user has no such process (not logged in graphically).
std::vector<std::string> session_environment(Fs& fs, unsigned uid, int* from_pid = nullptr);

// Looking Glass's shared memory for a resolution: width*height*4*2 + 10 MiB, rounded up to a
// power of two (its documentation's rule), in bytes.
long long looking_glass_min_size(int width, int height);
bool is_power_of_two(long long v);

}  // namespace gpuhook

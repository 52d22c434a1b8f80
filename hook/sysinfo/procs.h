// Processes, read-only through Fs: which systemd unit or session a process belongs to (from
// /proc/<pid>/cgroup), and the per-GPU device node of NVIDIA's driver.
#pragma once
#include <string>
#include <vector>

#include "host/fs.h"

namespace gpuhook {

// The innermost unit of a process's cgroup (v2 line "0::/system.slice/gdm.service" ->
// "gdm.service"; ".../session-2.scope" -> "session-2.scope"); "" when unknown.
std::string unit_of_process(Fs& fs, int pid);

// The name a unit file alias stands for (/etc/systemd/system/display-manager.service ->
// gdm.service), or the name itself.
std::string unit_alias_target(Fs& fs, const std::string& unit);

// NVIDIA's per-GPU node of the GPU at `address`: /dev/nvidia<minor>, the minor from
// /proc/driver/nvidia/gpus/<address>/information ("Device Minor: 0"). "" when the file is absent
// or says no minor (the caller then falls back to every /dev/nvidia<N>).
std::string nvidia_node_of(Fs& fs, const std::string& address);

}  // namespace gpuhook

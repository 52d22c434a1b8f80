#include "fake/fake_host.h"

#include <signal.h>

namespace gpuhook {

Result<RunResult> FakeRunner::run(const std::vector<std::string>& argv, const Deadline& d) {
  if (argv.empty()) return sys_error("cannot run an empty command", "argv", EINVAL);
  std::string line = format_argv(argv);
  calls.push_back(line);
  // An absolute path must be registered as such, except the system tools the kernel model provides.
  auto it = programs.find(argv[0]);
  if (it == programs.end()) {
    std::string base = basename_of(argv[0]);
    bool system_tool = base == "systemctl" || base == "modprobe" || base == "ddcutil";
    if (argv[0].find('/') == std::string::npos || system_tool) it = programs.find(base);
  }
  if (it == programs.end()) {
    Error e;
    e.what = "cannot run " + argv[0];
    e.why = "not found";
    e.code = ENOENT;
    return e;
  }
  RunResult r;
  if (d.expired()) {  // as ProcessRunner: no time left, nothing is started
    r.timed_out = true;
    return r;
  }
  if (fault_check && fault_check(line, d, r)) return r;
  return it->second(argv, d);
}

Result<int> FakeRunner::spawn_detached(const DetachedSpec& spec) {
  if (spec.argv.empty() || !kernel) return Error{"cannot start a detached program", "no kernel", "", EINVAL, false, false, 0, false, ""};
  std::string line = "spawn-detached " + format_argv(spec.argv);
  calls.push_back(line);
  if (!programs.count(spec.argv.front())) {
    Error e;
    e.what = "cannot start " + spec.argv.front();
    e.why = "exec: No such file or directory";
    e.code = ENOENT;
    return e;
  }
  RunResult r;
  if (fault_check && fault_check(line, Deadline(*clock, 0), r)) {
    Error e;
    e.what = "cannot start " + spec.argv.front();
    e.why = "exec: " + r.summary();
    return e;
  }
  return kernel->spawn(spec);
}

bool FakeRunner::has_program(const std::string& name) {
  return programs.count(name) > 0 || programs.count(basename_of(name)) > 0;
}

Status FakeSignals::kill(int pid, int sig) {
  if (pid <= 1) return sys_error("refusing to signal pid " + std::to_string(pid), "kill", EPERM);
  if (kernel) kernel->kill(pid, sig);
  return Status::success();
}

Result<bool> FakeSignals::signal_process(int pid, const std::string& start_time, int sig) {
  if (pid <= 1) return sys_error("refusing to signal pid " + std::to_string(pid), "kill", EPERM);
  if (start_time.empty()) {
    Error e = sys_error("refusing to signal process " + std::to_string(pid), "kill", EINVAL);
    e.why = "its start time is unknown, so a reused pid could not be told apart";
    return e;
  }
  if (!kernel || kernel->start_time(pid) != start_time) return false;
  kernel->kill(pid, sig);
  return true;
}

namespace {
class FakeLock : public LockHandle {
 public:
  FakeLock(std::set<std::string>& held, std::string p) : held_(held), p_(std::move(p)) {}
  ~FakeLock() override { held_.erase(p_); }

 private:
  std::set<std::string>& held_;
  std::string p_;
};
}  // namespace

Result<std::unique_ptr<LockHandle>> FakeLocker::lock(const std::string& path, const Deadline& d) {
  if (held.count(path)) {
    d.clock().sleep_ms(d.remaining() + 1);  // nobody releases it while we wait in-process
    Error e;
    e.what = "lock " + path + " is held by another gpuhook";
    e.timed_out = true;
    return e;
  }
  held.insert(path);
  return std::unique_ptr<LockHandle>(new FakeLock(held, path));
}

FakeHost::FakeHost() : kernel(fs, clock, runner) {
  signals.kernel = &kernel;
  runner.kernel = &kernel;
  runner.clock = &clock;
  runner.fault_check = [this](const std::string& line, const Deadline& d, RunResult& out) {
    return kernel.command_fault(line, d, out);
  };
}

void put_profile(FakeHost& h, const std::string& vm, const std::string& toml) {
  h.fs.put_dir("/etc/gpuhook", 0755);
  h.fs.put_dir("/etc/gpuhook/vms", 0755);
  h.fs.put_file("/etc/gpuhook/vms/" + vm + ".toml", toml, 0644, 0);
}

namespace {
void common_modules(FakeHost& h) {
  auto& k = h.kernel;
  k.add_module({"pcieport", {}, "pcieport", true, false});
  // Debian 12's graph (modules.dep, vfio's "softdep post: vfio_iommu_type1"). The order makes
  // `modprobe -r vfio_pci` leave what the real one leaves (vfio, vfio_iommu_type1, vfio_virqfd,
  // irqbypass): seen on Debian's 6.1 kernel under tests/realkernel.
  k.add_module({"irqbypass", {}, "", false, false});
  k.add_module({"vfio", {}, "", false, false});
  k.add_softdep_post("vfio", "vfio_iommu_type1");
  k.add_module({"vfio_iommu_type1", {"vfio"}, "", false, false});
  k.add_module({"vfio_virqfd", {}, "", false, false});
  k.add_module({"vfio_pci_core", {"irqbypass", "vfio_virqfd", "vfio"}, "", false, false});
  k.add_module({"vfio_pci", {"irqbypass", "vfio_virqfd", "vfio", "vfio_pci_core"}, "vfio-pci", false, false});
  k.add_module({"snd_hda_intel", {}, "snd_hda_intel", false, true});
  k.add_module({"xhci_pci", {}, "xhci_hcd", false, true});
}
void systemd_with(FakeHost& h) {
  h.kernel.enable_systemd(true);
  h.runner.programs["systemctl"] = [&h](const std::vector<std::string>& a, const Deadline&) {
    return h.kernel.systemctl(a);
  };
}
}  // namespace

void build_reference_laptop(FakeHost& h) {
  auto& k = h.kernel;
  common_modules(h);
  k.add_module({"i915", {}, "i915", false, true});
  k.add_module({"nvidia", {}, "nvidia", false, true});
  k.add_module({"nvidia_modeset", {"nvidia"}, "", false, true});
  k.add_module({"nvidia_uvm", {"nvidia"}, "", false, true});
  k.add_module({"nvidia_drm", {"nvidia_modeset", "nvidia"}, "", false, true});
  k.add_module({"i2c_nvidia_gpu", {}, "nvidia-gpu", false, true});
  FakePci host_bridge{"0000:00:00.0", "8086", "3ec4", "1558", "8550", "060000", "", "", 0};
  k.add_pci(host_bridge);
  k.add_bridge("0000:00:01.0", 1);
  const std::string rp = "/sys/devices/pci0000:00/0000:00:01.0";
  k.add_pci({"0000:00:02.0", "8086", "3e9b", "1558", "8550", "030000", "i915", "i915", 2, true});
  k.add_pci({"0000:00:1f.3", "8086", "a348", "1558", "8550", "040380", "snd_hda_intel", "snd_hda_intel", 3});
  k.add_pci({"0000:01:00.0", "10de", "2191", "1558", "8550", "030000", "nvidia", "nvidia", 1, false, rp});
  k.add_pci({"0000:01:00.1", "10de", "1aeb", "1558", "8550", "040300", "snd_hda_intel", "snd_hda_intel", 1, false, rp});
  k.add_pci({"0000:01:00.2", "10de", "1aec", "1558", "8550", "0c0330", "xhci_hcd", "xhci_hcd", 1, false, rp});
  k.add_pci({"0000:01:00.3", "10de", "1aed", "1558", "8550", "0c8000", "nvidia-gpu", "nvidia-gpu", 1, false, rp});
  k.add_drm_node("card0", "0000:00:02.0");
  k.add_drm_node("renderD128", "0000:00:02.0");
  k.add_drm_node("card1", "0000:01:00.0");
  k.add_drm_node("renderD129", "0000:01:00.0");
  k.add_sound_node("controlC0", "0000:00:1f.3");
  k.add_sound_node("controlC1", "0000:01:00.1");
  k.add_sound_node("pcmC1D3p", "0000:01:00.1");
  h.fs.put_dir("/sys/devices/pci0000:00/0000:00:02.0/graphics/fb0");
  h.fs.put_link("/sys/class/graphics/fb0", "/sys/devices/pci0000:00/0000:00:02.0/graphics/fb0");
  k.add_vtcon("vtcon0", "(S) dummy device", false);
  k.add_vtcon("vtcon1", "(M) frame buffer device", true);
  systemd_with(h);
  k.add_process({1000, "Xorg", {"/dev/dri/card0"}, false, "display-manager.service"});
  k.add_process({900, "nvidia-persistenced", {"/dev/nvidiactl", "/dev/nvidia0"}, false, "nvidia-persistenced.service"});
  k.add_unit("display-manager.service", true);
  k.add_unit("nvidia-persistenced.service", true);
  k.add_process({1, "systemd", {}, false, ""});
  k.set_monitor_input(4, 0x11);
}

void add_tuning_host(FakeHost& h, bool user_manager) {
  auto& fs = h.fs;
  auto& k = h.kernel;
  fs.put_file("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n");
  fs.put_file("/etc/group", "root:x:0:\nkvm:x:994:alice\nalice:x:1000:\n");
  fs.put_dir("/home/alice", 0755, 1000);
  fs.put_dir("/dev/shm", 01777);
  fs.put_file("/sys/devices/system/cpu/online", "0-7\n");
  for (int c = 0; c < 8; ++c) {
    std::string d = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/cpufreq";
    fs.put_file(d + "/scaling_governor", "powersave\n");
    fs.put_file(d + "/scaling_available_governors", "performance powersave\n");
  }
  for (auto [kib, cap] : {std::pair{2048LL, 2048LL}, std::pair{1048576LL, 2LL}}) {
    std::string d = "/sys/kernel/mm/hugepages/hugepages-" + std::to_string(kib) + "kB";
    fs.put_file(d + "/nr_hugepages", "0\n");
    fs.put_file(d + "/free_hugepages", "0\n");
    k.set_hugepage_capacity(d, cap);
  }
  fs.put_file("/proc/meminfo", "MemTotal:       16318412 kB\nMemFree:         4194304 kB\nHugepagesize:       2048 kB\n");
  fs.put_file("/proc/sys/vm/drop_caches", "0\n", 0200);
  fs.put_file("/proc/sys/vm/compact_memory", "", 0200);
  fs.put_file("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
  fs.put_file("/sys/fs/cgroup/cpuset.cpus.effective", "0-7\n");
  bool systemd = fs.is_dir("/run/systemd/system");
  for (const char* g : systemd ? std::vector<const char*>{"system.slice", "user.slice", "init.scope", "machine.slice"}
                               : std::vector<const char*>{"services", "users", "machine"})
    fs.put_file(std::string("/sys/fs/cgroup/") + g + "/cpuset.cpus", "\n"),
        fs.put_file(std::string("/sys/fs/cgroup/") + g + "/cgroup.procs", "2000\n");  // populated: cannot be emptied
  fs.put_dir("/run/user/1000", 0700, 1000);
  if (user_manager) {  // with dbus-user-session and the system bus, as a desktop has them
    fs.put_file("/run/user/1000/systemd/private", "", 0600, 1000);
    fs.put_file("/run/user/1000/bus", "", 0666, 1000);
    fs.put_file("/run/dbus/system_bus_socket", "", 0666);
  }
  k.add_user_process({2000, "gnome-shell", {}, false, ""}, 1000,
                     {"HOME=/home/alice", "WAYLAND_DISPLAY=wayland-0", "XDG_RUNTIME_DIR=/run/user/1000", "XDG_SESSION_TYPE=wayland"});
  h.runner.programs["/usr/local/bin/looking-glass-client"] = [](const std::vector<std::string>&, const Deadline&) {
    return RunResult{0, false, false, "", ""};
  };
  h.runner.programs["systemd-run"] = [&h](const std::vector<std::string>& a, const Deadline&) { return h.kernel.systemd_run(a); };
}

void build_single_gpu_desktop(FakeHost& h) {
  auto& k = h.kernel;
  common_modules(h);
  k.add_drm_driver("amdgpu", true);
  k.add_module({"amdgpu", {}, "amdgpu", false, true});
  k.add_vtcon("vtcon0", "(S) dummy device", false);
  k.enable_fbcon();
  k.add_bridge("0000:00:03.1", 12);
  const std::string rp = "/sys/devices/pci0000:00/0000:00:03.1";
  // amdgpu binds the card: its fbdev registers fb0 and fbcon takes the console (vtcon1). The
  // firmware framebuffer it replaced at boot is gone (sysfb), as on the real kernel.
  k.add_pci({"0000:0b:00.0", "1002", "67df", "1da2", "e366", "030000", "amdgpu", "amdgpu", 12, true, rp});
  k.add_pci({"0000:0b:00.1", "1002", "aaf0", "1da2", "aaf0", "040300", "snd_hda_intel", "snd_hda_intel", 12, false, rp});
  k.add_pci({"0000:00:14.0", "8086", "a36d", "1458", "5007", "0c0330", "xhci_hcd", "xhci_hcd", 3});
  k.add_drm_node("card0", "0000:0b:00.0");
  k.add_drm_node("renderD128", "0000:0b:00.0");
  k.add_sound_node("controlC1", "0000:0b:00.1");
  systemd_with(h);
  k.add_process({1000, "Xorg", {"/dev/dri/card0"}, false, "display-manager.service"});
  k.add_process({1200, "pipewire", {"/dev/snd/controlC1"}, false, ""});
  k.add_unit("display-manager.service", true);
}

void build_single_gpu_efifb_desktop(FakeHost& h) {
  auto& k = h.kernel;
  common_modules(h);
  k.add_module({"nvidia", {}, "nvidia", false, true});  // nvidia_drm not loaded: no KMS, no fbdev
  k.add_vtcon("vtcon0", "(S) dummy device", false);
  k.enable_fbcon();
  k.add_bridge("0000:00:01.0", 1);
  const std::string rp = "/sys/devices/pci0000:00/0000:00:01.0";
  k.add_pci({"0000:01:00.0", "10de", "1b81", "10de", "119d", "030000", "nvidia", "nvidia", 1, true, rp});
  k.add_pci({"0000:01:00.1", "10de", "10f0", "10de", "119d", "040300", "snd_hda_intel", "snd_hda_intel", 1, false, rp});
  // OVMF's GOP framebuffer, inside 01:00.0's BAR: efifb's fb0, fbcon on it (vtcon1).
  k.add_platform_fb("efi-framebuffer.0", "efi-framebuffer");
  k.add_sound_node("controlC1", "0000:01:00.1");
  systemd_with(h);
  k.add_process({1000, "Xorg", {"/dev/nvidiactl", "/dev/nvidia0"}, false, "display-manager.service"});
  k.add_unit("display-manager.service", true);
}

}  // namespace gpuhook

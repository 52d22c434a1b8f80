// FakeHost: an in-memory host for tests and benchmarks. FakeFs is a tree of files, directories
// and symlinks; FakeKernel gives sysfs writes the kernel's semantics where gpuhook relies on them:
//   driver_override (a lone "\n" clears it, an empty write does not), driver/unbind,
//   drivers_probe and driver/bind (override first, else the device's native driver),
//   /dev/vfio/<group> while a group member is on vfio-pci, modules (modprobe, modprobe -r and
//   modprobe --show-depends with dependencies, post soft dependencies, refcounts, built-ins; as
//   kmod 30, modprobe -r removes the dependencies newest first and stops at the first in use), vtconsole bind, platform framebuffer bind/unbind,
//   framebuffers and fbcon (enable_fbcon: fbcon's vtconsole exists while a framebuffer is
//   registered: it vanishes with the last one and comes back bound, at the first free vtconN, when
//   one registers), DRM drivers (add_drm_driver: with fbdev emulation they register a framebuffer
//   on the device they bind) and sysfb (vfio-pci or a DRM driver binding the boot VGA device
//   unregisters the firmware framebuffer's platform device for good, as Debian's 6.1 does; the
//   facts are proven on the real kernel by tests/desktop),
//   vga_switcheroo and acpi_call, processes in /proc with fds on device nodes, and systemd units
//   (systemctl is-active/stop/start) whose processes hold the GPU.
// Faults: a write or a command can fail, hang (past any deadline) or be refused; NVIDIA's unbind
// hangs while a /dev/nvidia* node is open, as the real driver does.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "host/host.h"

namespace gpuhook {

class FakeClock : public Clock {
 public:
  Millis now_ms() override { return now_; }
  void sleep_ms(Millis ms) override { now_ += ms > 0 ? ms : 0; }
  std::string wall_time() override { return "2026-01-01T00:00:00.000Z"; }
  void advance(Millis ms) { now_ += ms; }

 private:
  Millis now_ = 1000000;
};

class FakeKernel;

class FakeFs : public Fs {
 public:
  struct Node {
    FileType type = FileType::regular;
    std::string data;  // file content, or symlink target
    unsigned mode = 0644;
    unsigned uid = 0;
    unsigned gid = 0;
    long long sparse = -1;  // >= 0: a sized file made by create_sized (its bytes are not kept)
  };
  Result<std::string> read(const std::string& path) override;
  Status write(const std::string& path, std::string_view data) override;
  Status write_guarded(const std::string& path, std::string_view data, const Deadline& d) override;
  Result<OpenedFile> read_nofollow(const std::string& path) override;
  Result<std::string> readlink(const std::string& path) override;
  Result<std::string> canonical(const std::string& path) override;
  Result<std::vector<std::string>> list(const std::string& path) override;
  FileInfo stat(const std::string& path, bool follow = true) override;
  Status write_atomic(const std::string& path, std::string_view data, unsigned mode) override;
  Status make_dirs(const std::string& path, unsigned mode) override;
  Status remove(const std::string& path) override;
  Status create_sized(const std::string& path, long long size, unsigned mode, unsigned uid, unsigned gid) override;

  // Direct tree manipulation (setup, kernel model).
  void put_file(const std::string& path, std::string data, unsigned mode = 0644, unsigned uid = 0);
  void put_dir(const std::string& path, unsigned mode = 0755, unsigned uid = 0);
  void put_link(const std::string& path, std::string target);
  void erase(const std::string& path);        // node only
  void erase_tree(const std::string& path);   // node and everything below
  bool has(const std::string& path) const { return nodes_.count(path) > 0; }
  // The whole tree as "path -> type:content", minus the given prefixes (state and logs).
  std::map<std::string, std::string> snapshot(const std::vector<std::string>& exclude) const;
  const std::map<std::string, Node>& nodes() const { return nodes_; }
  // Every write made through the Fs interface, in order ("path <- data").
  std::vector<std::string> writes;
  FakeKernel* kernel = nullptr;

  // Resolves links; "" when a component is missing (or a loop).
  std::string resolve(const std::string& path, bool follow_last) const;

 private:
  std::map<std::string, Node> nodes_;
};

class FakeRunner : public Runner {
 public:
  Result<RunResult> run(const std::vector<std::string>& argv, const Deadline& d) override;
  bool has_program(const std::string& name) override;
  using Handler = std::function<RunResult(const std::vector<std::string>&, const Deadline&)>;
  // Programs by name ("systemctl") or absolute path; "systemctl", "modprobe", "ddcutil" are the kernel's.
  std::map<std::string, Handler> programs;
  std::vector<std::string> calls;  // format_argv of every run
  FakeClock* clock = nullptr;
  // Injected failures/hangs (FakeKernel::command_fault); true when it produced `out`.
  std::function<bool(const std::string& argv, const Deadline& d, RunResult& out)> fault_check;
  // Detached programs become fake processes (FakeKernel::spawn); the program must be registered
  // in `programs` by its absolute path. Recorded in `calls` as "spawn-detached ARGV".
  Result<int> spawn_detached(const DetachedSpec& spec) override;
  FakeKernel* kernel = nullptr;
};

class FakeSignals : public Signals {
 public:
  Status kill(int pid, int sig) override;
  Result<bool> signal_process(int pid, const std::string& start_time, int sig) override;
  int self_pid() override { return 4242; }
  FakeKernel* kernel = nullptr;
};

class FakeLocker : public Locker {
 public:
  Result<std::unique_ptr<LockHandle>> lock(const std::string& path, const Deadline& d) override;
  std::set<std::string> held;  // shared by every "process" using this locker
};

struct FakePci {
  std::string address;               // "0000:01:00.0"
  std::string vendor = "10de", device = "2191";
  std::string subsystem_vendor = "1558", subsystem_device = "8550";
  std::string class_code = "030000";
  std::string native_driver;         // driver that binds it when probed without override
  std::string driver;                // bound now ("" = unbound)
  int group = -1;                    // -1: IOMMU off
  bool boot_vga = false;
  std::string parent = "/sys/devices/pci0000:00";  // directory it sits in
};

struct FakeModule {
  std::string name;                  // "nvidia_drm"
  std::vector<std::string> deps;     // loaded first, in this order, e.g. nvidia_drm -> nvidia_modeset, nvidia
  std::string driver;                // PCI driver it registers ("nvidia"), "" if none
  bool builtin = false;
  bool loaded = false;
};

struct FakeProcess {
  int pid;
  std::string comm;
  std::vector<std::string> open;     // device nodes it holds open
  bool ignores_sigterm = false;
  std::string unit;                  // systemd unit it belongs to ("" none)
};

class FakeKernel {
 public:
  explicit FakeKernel(FakeFs& fs, FakeClock& clock, FakeRunner& runner);

  void add_pci(const FakePci& d);
  void add_bridge(const std::string& address, int group, const std::string& parent = "/sys/devices/pci0000:00");
  void add_module(const FakeModule& m);  // loaded ones register their driver and bind devices
  // "softdep <m> post: <post>": modprobe loads <post> right after <m> (vfio -> vfio_iommu_type1).
  void add_softdep_post(const std::string& m, const std::string& post) { softdep_post_[m].push_back(post); }
  void add_process(const FakeProcess& p);
  void add_unit(const std::string& unit, bool active);
  void add_vtcon(const std::string& vt, const std::string& name, bool bound);
  // A firmware framebuffer platform device (efi-framebuffer.0) bound to `driver`, with its framebuffer.
  void add_platform_fb(const std::string& dev, const std::string& driver);
  // A PCI driver that is a DRM driver: binding it to the boot VGA device evicts the firmware
  // framebuffer; with fbdev emulation it registers a framebuffer on each device it binds.
  void add_drm_driver(const std::string& drv, bool fbdev) { drm_drivers_[drv] = fbdev; }
  // fbcon: from now on its vtconsole (`name`) follows the framebuffers (see above).
  void enable_fbcon(const std::string& name = "(M) frame buffer device");
  void add_drm_node(const std::string& node, const std::string& pci_address);   // card1, renderD128
  void add_sound_node(const std::string& node, const std::string& pci_address); // controlC1, pcmC1D3p
  void enable_systemd(bool on);
  void enable_switcheroo(const std::string& igpu, const std::string& dgpu);
  void enable_acpi_call();

  // Faults. `match` is a substring of the written path (or of the formatted argv).
  //   fail, refuse: the write fails (EIO, EBUSY); the command exits 1.
  //   hang: blocks past any deadline. A guarded write's writer is then SIGKILLed, as RealFs does
  //     with one in an interruptible wait: timed_out, may_complete, pending_pid of a process that
  //     is already gone; the write never happens. An unguarded write: the clock jumps an hour.
  //   late: a guarded write whose writer is stuck in D state: timed_out, may_complete,
  //     pending_pid of a writer process that stays in /proc until complete_late_writes() makes
  //     the write land (with the kernel's semantics) and the writer exit. Unguarded: like hang.
  enum class Fault { fail, hang, refuse, late };
  void fault_write(const std::string& match, Fault f, int times = 1);
  void fault_command(const std::string& match, Fault f, int times = 1);
  void clear_faults() { write_faults_.clear(), command_faults_.clear(); }
  // Lets every pending `late` write land, oldest first; returns how many did.
  int complete_late_writes();
  // The start time /proc/<pid>/stat shows for a process (start_time_of), "" when there is none.
  // By default 100000 + pid; set_start_time changes it (a process that reused a pid).
  std::string start_time(int pid) const;
  void set_start_time(int pid, const std::string& t);

  // Kernel semantics, called by FakeFs/FakeRunner/FakeSignals.
  Status on_write(const std::string& path, std::string_view data, const Deadline* guard);
  std::string on_read(const std::string& path, const std::string& stored);
  bool kill(int pid, int sig);
  RunResult systemctl(const std::vector<std::string>& argv);
  RunResult modprobe(const std::vector<std::string>& argv);
  RunResult ddcutil(const std::vector<std::string>& argv);
  bool command_fault(const std::string& argv, const Deadline& d, RunResult& out);

  std::string driver_of(const std::string& addr) const;
  bool module_loaded(const std::string& m) const;
  bool process_alive(int pid) const { return procs_.count(pid) > 0; }
  std::string mux() const { return mux_; }
  int monitor_input(int bus) const { return monitor_.count(bus) ? monitor_.at(bus) : -1; }
  void set_monitor_input(int bus, int v);
  bool unit_active(const std::string& u) const { return units_.count(u) && units_.at(u); }

  // Tuning and Looking Glass (issues 13, 16):
  //   detached programs (Runner::spawn_detached) become processes with their uid and environment;
  //   a program in `exits_at_once` starts and is gone before anyone looks;
  //   systemd-run: a transient system unit (the sleep inhibitor holds logind's inhibitor in
  //   /run/fake-logind/inhibitors/<unit> while active) or, with --user --machine=U@.host, a
  //   transient unit of U's manager running its command as a process; --collect units vanish
  //   when stopped;
  //   systemctl set-property --runtime UNIT AllowedCPUs=X writes /sys/fs/cgroup/UNIT/cpuset.cpus,
  //   show -p AllowedCPUs reads it;
  //   nr_hugepages of a pool: the kernel reserves at most the pool's capacity (set_hugepage_capacity)
  //   and free_hugepages follows; drop_caches and compact_memory are write-only;
  //   cpuset.cpus of a group with processes (cgroup.procs) cannot be emptied again (ENOSPC, as
//   the kernel's validate_change); cpuset.cpus and scaling_governor keep their value with a newline (a governor must be listed in
  //   scaling_available_governors).
  int spawn(const DetachedSpec& spec);
  // A process of a user (owner of /proc/<pid>) with an environment (/proc/<pid>/environ).
  void add_user_process(const FakeProcess& p, unsigned uid, std::vector<std::string> environ);
  std::set<std::string> exits_at_once;
  struct Spawned {
    DetachedSpec spec;
    int pid;
  };
  std::vector<Spawned> spawned;
  RunResult systemd_run(const std::vector<std::string>& argv);
  void set_hugepage_capacity(const std::string& pool_dir, long long pages) { hp_capacity_[pool_dir] = pages; }
  const FakeProcess* process(int pid) const { return procs_.count(pid) ? &procs_.at(pid) : nullptr; }
  std::vector<int> pids() const {
    std::vector<int> v;
    for (const auto& [pid, p] : procs_) v.push_back(pid);
    return v;
  }

 private:
  std::string dev_dir(const std::string& addr) const;
  void bind(const std::string& addr, const std::string& drv);
  void unbind(const std::string& addr);
  void probe(const std::string& addr);
  void register_driver(const std::string& drv);
  void unregister_driver(const std::string& drv);
  bool nvidia_busy(const std::string& addr) const;
  void write_proc(const FakeProcess& p);
  void nvidia_nodes(bool present);
  std::string normal_module(std::string m) const;
  bool take_fault(std::map<std::string, std::pair<Fault, int>>& faults, const std::string& key, Fault& f);
  void register_fb(const std::string& device_dir);    // fbN under device_dir/graphics
  void unregister_fbs(const std::string& device_dir);
  void fbcon_follow();                                // fbcon's vtconsole after a change of framebuffers
  void evict_firmware_fbs();                          // sysfb: the platform framebuffer devices go

  FakeFs& fs_;
  FakeClock& clock_;
  std::map<std::string, FakePci> pci_;
  std::map<std::string, FakeModule> modules_;
  std::map<std::string, std::vector<std::string>> softdep_post_;
  std::map<int, FakeProcess> procs_;
  std::map<std::string, std::vector<FakeProcess>> unit_procs_;  // processes a unit runs when active
  std::map<std::string, bool> units_;
  std::map<std::string, std::pair<Fault, int>> write_faults_, command_faults_;
  struct LateWrite {
    int pid;
    std::string path, data;
  };
  std::vector<LateWrite> late_;
  int next_writer_pid_ = 30000;
  std::map<int, std::string> start_times_;  // pids of guarded writers (fault hang/late)
  std::string mux_ = "igpu", igpu_, dgpu_;
  std::string acpi_result_;
  std::map<int, int> monitor_;
  std::map<std::string, long long> hp_capacity_;
  std::map<int, std::pair<unsigned, std::vector<std::string>>> identity_;  // pid -> uid, environ
  std::set<std::string> transient_;                 // --collect units: gone when stopped
  std::map<std::string, int> user_units_;           // "user:unit" -> pid
  int next_pid_ = 5000;
  std::map<std::string, bool> drm_drivers_;  // DRM driver -> has fbdev emulation
  bool fbcon_ = false;
  std::string fbcon_name_;
};

// The kernel's driver_override store (Linux 6.1 driver_set_override, see fake_kernel.cpp): applies
// a write of `data` to the attribute's content `stored` ("vfio-pci\n", "(null)\n").
Status driver_override_store(std::string& stored, std::string_view data, const std::string& path);

// Everything fake, wired together.
struct FakeHost {
  FakeHost();
  FakeFs fs;
  FakeClock clock;
  FakeRunner runner;
  FakeSignals signals;
  FakeLocker locker;
  FakeKernel kernel;
  Host host() { return Host{fs, runner, clock, signals, locker}; }
  // Snapshot of everything but gpuhook's own state and logs.
  std::map<std::string, std::string> state() const { return fs.snapshot({"/run/gpuhook", "/var/log"}); }
};

// The reference laptop: Intel iGPU at 00:02.0 (i915, boot_vga) and a 4-function GTX 1660 Ti
// Mobile at 01:00.0-3 (subsystem 1558:8550) behind root port 00:01.0 in IOMMU group 1, NVIDIA's
// modules loaded, systemd with a display manager, vfio-pci not loaded yet.
void build_reference_laptop(FakeHost& h);
// One GPU only (boot_vga), an AMD card whose DRM driver (amdgpu, fbdev emulation) replaced the
// firmware framebuffer at boot: fbcon sits on amdgpu's fb0. Like a single-GPU desktop.
void build_single_gpu_desktop(FakeHost& h);
// Adds what tuning and Looking Glass read: users (alice 1000, in group kvm 994), /dev/shm, 8
// online CPUs with cpufreq (powersave; performance available), huge page pools of 2 MiB (capacity
// 2048 pages) and 1 GiB (2), /proc/meminfo, cgroup v2 (systemd's slices or, without systemd,
// top-level groups "services" and "users" with the cpuset controller), alice's Wayland session
// (pid 2000 gnome-shell) and, with `user_manager`, her systemd manager; the client program
// /usr/local/bin/looking-glass-client and systemd-run.
void add_tuning_host(FakeHost& h, bool user_manager);
// One NVIDIA GPU only (01:00.0 boot_vga + HDMI audio 01:00.1, group 1) whose driver runs without
// KMS: the firmware framebuffer (efi-framebuffer.0, efifb, fb0) still owns the screen and fbcon
// sits on it; Xorg of display-manager.service holds /dev/nvidia0. Issue 17's machine.
void build_single_gpu_efifb_desktop(FakeHost& h);
// Writes a profile owned by root, mode 0644.
void put_profile(FakeHost& h, const std::string& vm, const std::string& toml);

// Differences between two snapshots, one line each, for test failure messages.
std::string diff_states(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b);

}  // namespace gpuhook

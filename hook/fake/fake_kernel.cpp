#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "fake/fake_host.h"

namespace gpuhook {

namespace {
std::string group_dir(int g) { return "/sys/kernel/iommu_groups/" + std::to_string(g); }
Error err(int code, const std::string& what, const std::string& path) { return sys_error(what, path, code); }
bool starts(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
bool ends(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}
// The override as the kernel compares it with a driver's name (strcmp): the stored value
// without the newline that reading adds; "(null)" when none.
std::string override_of(const std::string& stored) {
  return stored.size() && stored.back() == '\n' ? stored.substr(0, stored.size() - 1) : stored;
}
}  // namespace

FakeKernel::FakeKernel(FakeFs& fs, FakeClock& clock, FakeRunner& runner) : fs_(fs), clock_(clock) {
  fs_.kernel = this;
  runner.clock = &clock;
  fs_.put_dir("/sys/bus/pci/devices");
  fs_.put_dir("/sys/bus/pci/drivers");
  fs_.put_file("/sys/bus/pci/drivers_probe", "");
  fs_.put_dir("/sys/kernel/iommu_groups");
  fs_.put_dir("/sys/module");
  fs_.put_dir("/sys/class/drm");
  fs_.put_dir("/sys/class/sound");
  fs_.put_dir("/sys/class/graphics");
  fs_.put_dir("/sys/class/vtconsole");
  fs_.put_dir("/sys/bus/platform/devices");
  fs_.put_dir("/proc");
  fs_.put_dir("/dev/dri");
  fs_.put_dir("/dev/snd");
  fs_.put_dir("/etc/gpuhook/vms");
  fs_.put_dir("/run");
  fs_.put_dir("/var/log");
  runner.programs["modprobe"] = [this](const std::vector<std::string>& a, const Deadline&) { return modprobe(a); };
  runner.programs["ddcutil"] = [this](const std::vector<std::string>& a, const Deadline&) { return ddcutil(a); };
}

std::string FakeKernel::dev_dir(const std::string& addr) const { return pci_.at(addr).parent + "/" + addr; }

std::string FakeKernel::driver_of(const std::string& addr) const {
  auto it = pci_.find(addr);
  return it == pci_.end() ? "" : it->second.driver;
}

void FakeKernel::add_pci(const FakePci& d0) {
  FakePci d = d0;
  std::string want = d.driver;
  d.driver.clear();
  pci_[d.address] = d;
  std::string dir = dev_dir(d.address);
  fs_.put_dir(dir);
  fs_.put_link("/sys/bus/pci/devices/" + d.address, dir);
  fs_.put_file(dir + "/vendor", "0x" + d.vendor + "\n");
  fs_.put_file(dir + "/device", "0x" + d.device + "\n");
  fs_.put_file(dir + "/subsystem_vendor", "0x" + d.subsystem_vendor + "\n");
  fs_.put_file(dir + "/subsystem_device", "0x" + d.subsystem_device + "\n");
  fs_.put_file(dir + "/class", "0x" + d.class_code + "\n");
  fs_.put_file(dir + "/driver_override", "(null)\n");
  if (d.class_code.rfind("03", 0) == 0) fs_.put_file(dir + "/boot_vga", d.boot_vga ? "1\n" : "0\n");
  if (d.group >= 0) {
    fs_.put_link(dir + "/iommu_group", group_dir(d.group));
    fs_.put_link(group_dir(d.group) + "/devices/" + d.address, dir);
  }
  if (!want.empty() && fs_.is_dir("/sys/bus/pci/drivers/" + want)) bind(d.address, want);
  if (d.native_driver == "nvidia" && module_loaded("nvidia")) nvidia_nodes(true);
}

void FakeKernel::add_bridge(const std::string& address, int group, const std::string& parent) {
  FakePci b;
  b.address = address;
  b.vendor = "8086";
  b.device = "1901";
  b.class_code = "060400";
  b.native_driver = "pcieport";
  b.group = group;
  b.parent = parent;
  if (!fs_.is_dir("/sys/bus/pci/drivers/pcieport")) register_driver("pcieport");
  b.driver = "pcieport";
  add_pci(b);
}

std::string FakeKernel::normal_module(std::string m) const {
  std::replace(m.begin(), m.end(), '-', '_');
  return m;
}

void FakeKernel::add_module(const FakeModule& m0) {
  FakeModule m = m0;
  m.name = normal_module(m.name);
  modules_[m.name] = m;
  if (m.builtin) {
    fs_.put_dir("/sys/module/" + m.name + "/parameters");
    if (!m.driver.empty()) register_driver(m.driver);
  } else if (m.loaded) {
    fs_.put_file("/sys/module/" + m.name + "/initstate", "live\n");
    fs_.put_file("/sys/module/" + m.name + "/refcnt", "0\n");
    if (!m.driver.empty()) register_driver(m.driver);
    if (m.name == "nvidia") nvidia_nodes(true);
  }
}

// NVIDIA's driver: /dev/nvidia<minor> per GPU (minors in address order), /dev/nvidiactl, and
// /proc/driver/nvidia/gpus/<address>/information naming each GPU's minor.
void FakeKernel::nvidia_nodes(bool present) {
  int minor = 0;
  for (const auto& [a, d] : pci_) {
    if (d.native_driver != "nvidia") continue;
    std::string info = "/proc/driver/nvidia/gpus/" + a + "/information";
    std::string node = "/dev/nvidia" + std::to_string(minor++);
    if (present) {
      fs_.put_file(node, "");
      fs_.put_file(info, "Model: \t\t NVIDIA GeForce GTX 1660 Ti\nIRQ:   \t\t 150\nDevice Minor: \t " +
                             std::to_string(minor - 1) + "\nBus Location: \t " + a + "\n");
    } else {
      fs_.erase(node);
      fs_.erase_tree("/proc/driver/nvidia/gpus/" + a);
    }
  }
  if (present) fs_.put_file("/dev/nvidiactl", "");
  else fs_.erase("/dev/nvidiactl");
}

bool FakeKernel::module_loaded(const std::string& m) const {
  auto it = modules_.find(normal_module(m));
  return it != modules_.end() && (it->second.loaded || it->second.builtin);
}

std::string FakeKernel::start_time(int pid) const {
  if (!procs_.count(pid)) return "";
  auto it = start_times_.find(pid);
  return it == start_times_.end() ? std::to_string(100000 + pid) : it->second;
}

void FakeKernel::set_start_time(int pid, const std::string& t) {
  start_times_[pid] = t;
  if (procs_.count(pid)) write_proc(procs_.at(pid));
}

void FakeKernel::write_proc(const FakeProcess& p) {
  std::string base = "/proc/" + std::to_string(p.pid);
  unsigned uid = identity_.count(p.pid) ? identity_[p.pid].first : 0;
  const std::vector<std::string> none;
  const auto& environ = identity_.count(p.pid) ? identity_[p.pid].second : none;
  fs_.put_dir(base, 0555, uid);
  std::string pid = std::to_string(p.pid);
  auto st = start_times_.find(p.pid);
  std::string start = st == start_times_.end() ? std::to_string(100000 + p.pid) : st->second;
  // As Linux: "pid (comm) state ppid pgrp session tty tpgid flags ... starttime(22) ..."
  fs_.put_file(base + "/stat", pid + " (" + p.comm + ") S 1 " + pid + " " + pid +
                                   " 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 " + start + " 0 0\n");
  fs_.put_file(base + "/comm", p.comm + "\n");
  if (!environ.empty()) {
    std::string env;
    for (const auto& kv : environ) env += kv + std::string(1, '\0');
    fs_.put_file(base + "/environ", env, 0400, uid);
  }
  // cgroup v2, as systemd lays it out: a unit's processes under system.slice, anything else as
  // a user's service under user@1000.service (where a desktop's helpers run).
  fs_.put_file(base + "/cgroup", p.unit.empty() ? "0::/user.slice/user-1000.slice/user@1000.service/app.slice/" + p.comm +
                                                       ".service\n"
                                                 : "0::/system.slice/" + p.unit + "\n");
  fs_.put_dir(base + "/fd");
  int fd = 3;
  for (const auto& n : p.open) fs_.put_link(base + "/fd/" + std::to_string(fd++), n);
}

void FakeKernel::add_process(const FakeProcess& p) {
  if (!p.unit.empty()) {
    unit_procs_[p.unit].push_back(p);
    if (!units_[p.unit]) return;
  }
  procs_[p.pid] = p;
  write_proc(p);
}

void FakeKernel::add_unit(const std::string& unit, bool active) {
  units_[unit] = active;
  fs_.put_file("/run/fake-systemd/" + unit, active ? "active\n" : "inactive\n");
  if (active)
    for (const auto& p : unit_procs_[unit]) {
      procs_[p.pid] = p;
      write_proc(p);
    }
}

void FakeKernel::enable_systemd(bool on) {
  if (on) fs_.put_dir("/run/systemd/system");
  else fs_.erase_tree("/run/systemd");
}

void FakeKernel::add_vtcon(const std::string& vt, const std::string& name, bool bound) {
  fs_.put_file("/sys/class/vtconsole/" + vt + "/name", name + "\n");
  fs_.put_file("/sys/class/vtconsole/" + vt + "/bind", bound ? "1\n" : "0\n");
}

void FakeKernel::add_platform_fb(const std::string& dev, const std::string& driver) {
  std::string dir = "/sys/devices/platform/" + dev;
  fs_.put_dir(dir);
  fs_.put_link("/sys/bus/platform/devices/" + dev, dir);
  fs_.put_file("/sys/bus/platform/drivers/" + driver + "/bind", "");
  fs_.put_file("/sys/bus/platform/drivers/" + driver + "/unbind", "");
  fs_.put_link(dir + "/driver", "/sys/bus/platform/drivers/" + driver);
  fs_.put_link("/sys/bus/platform/drivers/" + driver + "/" + dev, dir);
  register_fb(dir);
}

void FakeKernel::enable_fbcon(const std::string& name) {
  // fbcon's own device sits in the graphics class too (seen on Debian's 6.1): not a framebuffer.
  fs_.put_dir("/sys/devices/virtual/graphics/fbcon");
  fs_.put_link("/sys/class/graphics/fbcon", "/sys/devices/virtual/graphics/fbcon");
  fbcon_ = true;
  fbcon_name_ = name;
  fbcon_follow();
}

void FakeKernel::register_fb(const std::string& device_dir) {
  int n = 0;
  while (fs_.has("/sys/class/graphics/fb" + std::to_string(n))) ++n;
  std::string fb = "fb" + std::to_string(n);  // (never "fbcon")
  fs_.put_dir(device_dir + "/graphics/" + fb);
  fs_.put_link("/sys/class/graphics/" + fb, device_dir + "/graphics/" + fb);
  fbcon_follow();
}

void FakeKernel::unregister_fbs(const std::string& device_dir) {
  std::vector<std::string> gone;
  for (const auto& [path, node] : fs_.nodes())
    if (starts(path, "/sys/class/graphics/fb") && starts(node.data, device_dir + "/graphics/")) gone.push_back(path);
  if (gone.empty()) return;
  for (const auto& l : gone) fs_.erase(l);
  fs_.erase_tree(device_dir + "/graphics");
  fbcon_follow();
}

// Linux 6.1: fbcon registers its console driver with the first framebuffer and takes the console
// over (bind 1); it unregisters it when the last framebuffer goes (the vtconN directory vanishes).
// A console driver gets the first free vtconN.
void FakeKernel::fbcon_follow() {
  if (!fbcon_) return;
  bool any_fb = false;
  std::string fbcon_vt;
  for (const auto& [path, node] : fs_.nodes()) {
    if (starts(path, "/sys/class/graphics/fb") && path != "/sys/class/graphics/fbcon" &&
        path.find('/', 20) == std::string::npos)
      any_fb = true;
    if (starts(path, "/sys/class/vtconsole/") && ends(path, "/name") && node.data.find("frame buffer") != std::string::npos)
      fbcon_vt = dirname_of(path);
  }
  if (!any_fb && !fbcon_vt.empty()) fs_.erase_tree(fbcon_vt);
  if (any_fb && fbcon_vt.empty()) {
    int n = 0;
    while (fs_.has("/sys/class/vtconsole/vtcon" + std::to_string(n))) ++n;
    add_vtcon("vtcon" + std::to_string(n), fbcon_name_, true);
  }
}

// sysfb (Linux >= 6.0): a driver taking the boot VGA device's memory (vfio-pci, a DRM driver)
// unregisters the firmware framebuffer's platform device; it never comes back until reboot.
void FakeKernel::evict_firmware_fbs() {
  auto l = fs_.list("/sys/bus/platform/devices");
  if (!l) return;
  for (const auto& dev : *l) {
    if (!starts(dev, "efi-framebuffer") && !starts(dev, "simple-framebuffer") && !starts(dev, "vesa-framebuffer")) continue;
    std::string dir = "/sys/devices/platform/" + dev;
    if (fs_.has(dir + "/driver"))
      fs_.erase("/sys/bus/platform/drivers/" + basename_of(fs_.nodes().at(dir + "/driver").data) + "/" + dev);
    unregister_fbs(dir);
    fs_.erase_tree(dir);
    fs_.erase("/sys/bus/platform/devices/" + dev);
  }
}

void FakeKernel::add_drm_node(const std::string& node, const std::string& addr) {
  std::string dir = dev_dir(addr) + "/drm/" + node;
  fs_.put_dir(dir);
  fs_.put_link("/sys/class/drm/" + node, dir);
  fs_.put_file("/dev/dri/" + node, "");
}

void FakeKernel::add_sound_node(const std::string& node, const std::string& addr) {
  std::string dir = dev_dir(addr) + "/sound/" + node;
  fs_.put_dir(dir);
  fs_.put_link("/sys/class/sound/" + node, dir);
  fs_.put_file("/dev/snd/" + node, "");
}

void FakeKernel::enable_switcheroo(const std::string& igpu, const std::string& dgpu) {
  igpu_ = igpu;
  dgpu_ = dgpu;
  fs_.put_file("/sys/kernel/debug/vgaswitcheroo/switch", "");
}

void FakeKernel::enable_acpi_call() { fs_.put_file("/proc/acpi/call", ""); }

void FakeKernel::register_driver(const std::string& drv) {
  std::string d = "/sys/bus/pci/drivers/" + drv;
  fs_.put_dir(d);
  fs_.put_file(d + "/bind", "");
  fs_.put_file(d + "/unbind", "");
  fs_.put_file(d + "/new_id", "");
  for (auto& [a, dev] : pci_) {
    if (!dev.driver.empty()) continue;
    std::string ov = override_of(fs_.nodes().at(dev_dir(a) + "/driver_override").data);
    if (ov == "(null)") ov.clear();
    if (ov == drv || (ov.empty() && dev.native_driver == drv)) bind(a, drv);
  }
}

void FakeKernel::unregister_driver(const std::string& drv) {
  for (auto& [a, dev] : pci_)
    if (dev.driver == drv) unbind(a);
  fs_.erase_tree("/sys/bus/pci/drivers/" + drv);
}

void FakeKernel::bind(const std::string& addr, const std::string& drv) {
  auto& d = pci_.at(addr);
  d.driver = drv;
  std::string dir = dev_dir(addr);
  fs_.put_link(dir + "/driver", "/sys/bus/pci/drivers/" + drv);
  fs_.put_link("/sys/bus/pci/drivers/" + drv + "/" + addr, dir);
  if (drv == "vfio-pci" && d.group >= 0) {
    fs_.put_file("/dev/vfio/" + std::to_string(d.group), "");
  }
  auto drm = drm_drivers_.find(drv);
  if (d.boot_vga && (drv == "vfio-pci" || drm != drm_drivers_.end())) evict_firmware_fbs();
  if (drm != drm_drivers_.end() && drm->second) register_fb(dir);
}

void FakeKernel::unbind(const std::string& addr) {
  auto& d = pci_.at(addr);
  std::string was = d.driver;
  d.driver.clear();
  std::string dir = dev_dir(addr);
  fs_.erase(dir + "/driver");
  fs_.erase("/sys/bus/pci/drivers/" + was + "/" + addr);
  if (drm_drivers_.count(was)) unregister_fbs(dir);
  if (was == "vfio-pci" && d.group >= 0) {
    bool other = false;
    for (const auto& [a, o] : pci_) other |= (o.group == d.group && o.driver == "vfio-pci");
    if (!other) fs_.erase("/dev/vfio/" + std::to_string(d.group));
  }
}

void FakeKernel::probe(const std::string& addr) {
  auto& d = pci_.at(addr);
  if (!d.driver.empty()) return;
  std::string ov = override_of(fs_.nodes().at(dev_dir(addr) + "/driver_override").data);
  if (ov == "(null)") ov.clear();
  std::string drv = ov.empty() ? d.native_driver : ov;
  if (!drv.empty() && fs_.is_dir("/sys/bus/pci/drivers/" + drv)) bind(addr, drv);
}

// NVIDIA's unbind of one GPU waits while a process has that GPU's own node open (the driver's
// per-device usage count, "NVRM: Attempting to remove minor device N with non-zero usage
// count"); another GPU's node and the driver-wide nvidiactl do not hold it.
bool FakeKernel::nvidia_busy(const std::string& addr) const {
  int minor = 0;
  std::string node;
  for (const auto& [a, d] : pci_) {
    if (d.native_driver != "nvidia") continue;
    if (a == addr) node = "/dev/nvidia" + std::to_string(minor);
    ++minor;
  }
  for (const auto& [pid, p] : procs_)
    for (const auto& n : p.open)
      if (n == node) return true;
  return false;
}

void FakeKernel::fault_write(const std::string& match, Fault f, int times) { write_faults_[match] = {f, times}; }
void FakeKernel::fault_command(const std::string& match, Fault f, int times) { command_faults_[match] = {f, times}; }

bool FakeKernel::take_fault(std::map<std::string, std::pair<Fault, int>>& faults, const std::string& key, Fault& f) {
  for (auto it = faults.begin(); it != faults.end(); ++it) {
    if (key.find(it->first) == std::string::npos) continue;
    f = it->second.first;
    if (--it->second.second <= 0) faults.erase(it);
    return true;
  }
  return false;
}

namespace {
Status hang(FakeClock& clock, const Deadline* guard, const std::string& path, int writer_pid) {
  if (guard) {
    clock.advance(guard->remaining() + 1);
    Error e;
    e.what = "writing to " + path + " did not finish";
    e.why = "the kernel was still in the write at the deadline (writer pid " + std::to_string(writer_pid) +
            "); it may still complete";
    e.timed_out = true;
    e.may_complete = true;
    e.pending_pid = writer_pid;
    return e;
  }
  clock.advance(3600 * 1000);  // an unguarded blocking write: the test sees the clock jump
  return err(EINTR, "write blocked for an hour", path);
}
}  // namespace

// Linux 6.1, drivers/base/driver.c driver_set_override() behind pci's driver_override_store():
// sysfs never calls store for a 0-byte write (sysfs_kf_write: nothing changes); a value of
// PAGE_SIZE-1 bytes or more is EINVAL; the value ends at its first NUL (strlen); an empty one, or
// one that starts with '\n', clears the override; otherwise everything before the first '\n' is
// kept as it is (spaces included). A cleared override reads "(null)".
Status driver_override_store(std::string& stored, std::string_view data, const std::string& path) {
  if (data.empty()) return Status::success();
  if (data.size() >= 4096 - 1) return err(EINVAL, "driver_override value too long", path);
  std::string_view v = data.substr(0, data.find('\0'));
  v = v.substr(0, v.find('\n'));
  stored = (v.empty() ? std::string("(null)") : std::string(v)) + "\n";
  return Status::success();
}

int FakeKernel::complete_late_writes() {
  int n = 0;
  auto pending = std::move(late_);
  late_.clear();
  for (const auto& w : pending) {
    (void)on_write(w.path, w.data, nullptr);
    procs_.erase(w.pid);
    fs_.erase_tree("/proc/" + std::to_string(w.pid));
    ++n;
  }
  return n;
}

Status FakeKernel::on_write(const std::string& path, std::string_view data0, const Deadline* guard) {
  Fault f;
  std::string data = trim(data0);
  if (take_fault(write_faults_, path, f)) {
    if (f == Fault::hang || (f == Fault::late && !guard)) return hang(clock_, guard, path, next_writer_pid_++);
    if (f == Fault::late) {
      // The writer stays in the kernel (D state): a process in /proc until the write lands.
      FakeProcess w{next_writer_pid_++, "gpuhook", {}, false, ""};
      procs_[w.pid] = w;
      write_proc(w);
      late_.push_back({w.pid, path, std::string(data0)});
      return hang(clock_, guard, path, w.pid);
    }
    return err(f == Fault::refuse ? EBUSY : EIO, "injected fault writing '" + data + "'", path);
  }
  if (starts(path, "/run/gpuhook") || starts(path, "/var/log")) return Status::success();  // state files: fault check only
  auto set = [&](const std::string& p, const std::string& v) { fs_.put_file(p, v); };
  if (ends(path, "/driver_override") && starts(path, "/sys/")) {
    std::string v = fs_.nodes().at(path).data;
    if (auto s = driver_override_store(v, data0, path); !s) return s;
    set(path, v);
    return Status::success();
  }
  if (starts(path, "/sys/bus/pci/drivers/") && (ends(path, "/unbind") || ends(path, "/bind"))) {
    std::string drv = basename_of(dirname_of(path));
    if (!pci_.count(data)) return err(ENODEV, "no such device " + data, path);
    if (ends(path, "/unbind")) {
      if (pci_[data].driver != drv) return err(ENODEV, data + " is not bound to " + drv, path);
      if (drv == "nvidia" && nvidia_busy(data)) return hang(clock_, guard, path, next_writer_pid_++);
      unbind(data);
      return Status::success();
    }
    if (!pci_[data].driver.empty()) return err(EBUSY, data + " already bound", path);
    std::string ov = override_of(fs_.nodes().at(dev_dir(data) + "/driver_override").data);
    if (ov == "(null)") ov.clear();
    if ((!ov.empty() && ov != drv) || (ov.empty() && pci_[data].native_driver != drv))
      return err(ENODEV, drv + " does not match " + data, path);
    bind(data, drv);
    return Status::success();
  }
  if (path == "/sys/bus/pci/drivers_probe") {
    if (!pci_.count(data)) return err(ENODEV, "no such device " + data, path);
    probe(data);
    return Status::success();
  }
  if (starts(path, "/sys/class/vtconsole/") && ends(path, "/bind")) {
    if (data != "0" && data != "1") return err(EINVAL, "bad value", path);
    set(path, data + "\n");
    return Status::success();
  }
  if (starts(path, "/sys/bus/platform/drivers/") && (ends(path, "/unbind") || ends(path, "/bind"))) {
    std::string drv = basename_of(dirname_of(path));
    std::string dir = "/sys/devices/platform/" + data;
    if (!fs_.has(dir)) return err(ENODEV, "no such device " + data, path);
    std::string cur = fs_.has(dir + "/driver") ? basename_of(fs_.nodes().at(dir + "/driver").data) : "";
    if (ends(path, "/unbind")) {
      if (cur != drv) return err(ENODEV, data + " is not bound to " + drv, path);
      fs_.erase(dir + "/driver");
      fs_.erase("/sys/bus/platform/drivers/" + drv + "/" + data);
      unregister_fbs(dir);
    } else {
      if (!cur.empty()) return err(EBUSY, data + " already bound", path);
      fs_.put_link(dir + "/driver", "/sys/bus/platform/drivers/" + drv);
      fs_.put_link("/sys/bus/platform/drivers/" + drv + "/" + data, dir);
      register_fb(dir);
    }
    return Status::success();
  }
  if (path == "/sys/kernel/debug/vgaswitcheroo/switch") {
    if (data == "MDIS") mux_ = "dgpu";
    else if (data == "MIGD") mux_ = "igpu";
    else if (data != "DIS" && data != "IGD" && data != "ON" && data != "OFF") return err(EINVAL, "bad command", path);
    return Status::success();
  }
  if (path == "/proc/acpi/call") {
    // "\_SB.PCI0.PEG0.PEGP.MXDS 0x1": the path names the GPU; PEG* is the dGPU, GFX* the iGPU.
    auto sp = data.find(' ');
    std::string call = data.substr(0, sp), arg = sp == std::string::npos ? "" : data.substr(sp + 1);
    if (call.size() < 5 || call.substr(call.size() - 5) != ".MXDS") {
      acpi_result_ = "Error: AE_NOT_FOUND";
      return Status::success();
    }
    bool dgpu = call.find("PEG") != std::string::npos;
    if (arg == "0x0") acpi_result_ = (mux_ == (dgpu ? "dgpu" : "igpu")) ? "0x1" : "0x0";
    else if (arg == "0x1") {
      mux_ = dgpu ? "dgpu" : "igpu";
      acpi_result_ = "0x0";
    } else acpi_result_ = "Error: AE_BAD_PARAMETER";
    return Status::success();
  }
  if (path == "/proc/sys/vm/drop_caches" || path == "/proc/sys/vm/compact_memory") return Status::success();  // write-only
  if (ends(path, "/nr_hugepages") && fs_.has(path)) {
    std::string dir = dirname_of(path);
    if (data.empty() || data.find_first_not_of("0123456789") != std::string::npos || data.size() > 12)
      return err(EINVAL, "bad value", path);
    long long want = std::stoll(data);
    long long cap = hp_capacity_.count(dir) ? hp_capacity_[dir] : 0;
    long long got = std::min(want, cap);  // the kernel reserves what it can and says nothing
    long long nr = std::atoll(trim(fs_.nodes().at(path).data).c_str());
    long long fr = fs_.has(dir + "/free_hugepages") ? std::atoll(trim(fs_.nodes().at(dir + "/free_hugepages").data).c_str()) : nr;
    long long used = nr - fr;  // pages in use stay in use
    got = std::max(got, used);
    set(path, std::to_string(got) + "\n");
    set(dir + "/free_hugepages", std::to_string(got - used) + "\n");
    return Status::success();
  }
  if (ends(path, "/cpuset.cpus") && fs_.has(path)) {
    // As the kernel: a group with processes cannot have its cpuset emptied (ENOSPC).
    std::string procs = dirname_of(path) + "/cgroup.procs";
    if (data.empty() && !trim(fs_.nodes().at(path).data).empty() && fs_.has(procs) && !trim(fs_.nodes().at(procs).data).empty())
      return err(ENOSPC, "No space left on device", path);
    set(path, data + "\n");
    return Status::success();
  }
  if (ends(path, "/scaling_governor") && fs_.has(path)) {
    std::string avail = " " + trim(fs_.nodes().count(dirname_of(path) + "/scaling_available_governors")
                                       ? fs_.nodes().at(dirname_of(path) + "/scaling_available_governors").data
                                       : "") + " ";
    if (avail.find(" " + data + " ") == std::string::npos) return err(EINVAL, "no governor " + data, path);
    set(path, data + "\n");
    return Status::success();
  }
  if (fs_.has(path)) fs_.put_file(path, std::string(data0), fs_.nodes().at(path).mode);
  return Status::success();
}

int FakeKernel::spawn(const DetachedSpec& spec) {
  int pid = next_pid_++;
  spawned.push_back({spec, pid});
  if (exits_at_once.count(spec.argv.front())) return pid;
  FakeProcess p{pid, basename_of(spec.argv.front()), {}, false, ""};
  add_user_process(p, spec.uid, spec.env);
  return pid;
}

void FakeKernel::add_user_process(const FakeProcess& p, unsigned uid, std::vector<std::string> environ) {
  identity_[p.pid] = {uid, std::move(environ)};
  // Its start time follows the fake clock: a pid reused later has another one.
  start_times_[p.pid] = std::to_string(clock_.now_ms() / 10);
  procs_[p.pid] = p;
  write_proc(p);
}

RunResult FakeKernel::systemd_run(const std::vector<std::string>& a) {
  RunResult r;
  bool user = false;
  std::string unit, machine;
  size_t i = 1;
  for (; i < a.size() && a[i] != "--"; ++i) {
    if (a[i] == "--user") user = true;
    else if (starts(a[i], "--unit=")) unit = a[i].substr(7);
    else if (starts(a[i], "--machine=")) machine = a[i].substr(10);
  }
  if (unit.empty() || i + 1 >= a.size()) {
    r.exit_code = 1;
    r.err = "fake systemd-run: needs --unit= and a command\n";
    return r;
  }
  std::vector<std::string> cmd(a.begin() + static_cast<long>(i) + 1, a.end());
  if (user) {
    std::string key = machine + ":" + unit;
    if (user_units_.count(key) && procs_.count(user_units_[key])) {
      r.exit_code = 1;
      r.err = "Failed to start transient service unit: Unit " + unit + " was already loaded or has a fragment file.\n";
      return r;
    }
    DetachedSpec spec;
    spec.argv = cmd;
    spec.uid = 1000;
    user_units_[key] = spawn(spec);
    r.exit_code = 0;
    return r;
  }
  if (units_.count(unit) && units_[unit]) {
    r.exit_code = 1;
    r.err = "Failed to start transient service unit: Unit " + unit + " was already loaded or has a fragment file.\n";
    return r;
  }
  units_[unit] = true;
  transient_.insert(unit);
  fs_.put_file("/run/fake-systemd/" + unit, "active\n");
  if (std::find(cmd.begin(), cmd.end(), "systemd-inhibit") != cmd.end())
    fs_.put_file("/run/fake-logind/inhibitors/" + unit, "sleep:idle block\n");
  r.exit_code = 0;
  return r;
}

std::string FakeKernel::on_read(const std::string& path, const std::string& stored) {
  if (path == "/sys/kernel/debug/vgaswitcheroo/switch")
    return "0:IGD:" + std::string(mux_ == "igpu" ? "+" : " ") + ":Pwr:" + igpu_ + "\n1:DIS:" +
           std::string(mux_ == "dgpu" ? "+" : " ") + ":Pwr:" + dgpu_ + "\n";
  if (path == "/proc/acpi/call") return acpi_result_;
  if (starts(path, "/sys/module/") && ends(path, "/refcnt")) {
    std::string m = basename_of(dirname_of(path));
    int n = 0;
    for (const auto& [name, mod] : modules_)
      if (mod.loaded && std::find(mod.deps.begin(), mod.deps.end(), m) != mod.deps.end()) ++n;
    if (m == "nvidia")
      for (const auto& [pid, p] : procs_)
        for (const auto& o : p.open) n += o.rfind("/dev/nvidia", 0) == 0;
    return std::to_string(n) + "\n";
  }
  return stored;
}

bool FakeKernel::kill(int pid, int sig) {
  auto it = procs_.find(pid);
  if (it == procs_.end()) return false;
  if (sig == 0) return true;
  if (sig == SIGTERM && it->second.ignores_sigterm) return true;
  if (sig == SIGTERM || sig == SIGKILL) {
    fs_.erase_tree("/proc/" + std::to_string(pid));
    procs_.erase(it);
  }
  return true;
}

RunResult FakeKernel::systemctl(const std::vector<std::string>& a0) {
  RunResult r;
  std::vector<std::string> a;
  std::string machine;
  bool user = false;
  for (const auto& x : a0) {
    if (x == "--user") user = true;
    else if (starts(x, "--machine=")) machine = x.substr(10);
    else a.push_back(x);
  }
  if (user) {
    // The user's manager: only the transient units systemd_run started.
    if (a.size() != 3) {
      r.exit_code = 1;
      return r;
    }
    std::string key = machine + ":" + a[2];
    bool active = user_units_.count(key) && procs_.count(user_units_[key]);
    if (a[1] == "is-active") {
      r.out = active ? "active\n" : "inactive\n";
      r.exit_code = active ? 0 : 3;
    } else if (a[1] == "stop") {
      if (!user_units_.count(key)) {
        r.exit_code = 5;
        r.err = "Failed to stop " + a[2] + ": Unit " + a[2] + " not loaded.\n";
        return r;
      }
      kill(user_units_[key], SIGTERM);
      user_units_.erase(key);  // --collect
      r.exit_code = 0;
    } else {
      r.exit_code = 1;
    }
    return r;
  }
  if (a.size() == 5 && a[1] == "set-property" && a[2] == "--runtime" && starts(a[4], "AllowedCPUs=")) {
    std::string f = "/sys/fs/cgroup/" + a[3] + "/cpuset.cpus";
    if (!fs_.has(f)) {
      r.exit_code = 1;
      r.err = "Failed to set unit properties on " + a[3] + ": Unit " + a[3] + " not found.\n";
      return r;
    }
    fs_.put_file(f, a[4].substr(12) + "\n");
    r.exit_code = 0;
    return r;
  }
  if (a.size() == 6 && a[1] == "show" && a[3] == "AllowedCPUs") {
    std::string f = "/sys/fs/cgroup/" + a[5] + "/cpuset.cpus";
    r.out = fs_.has(f) ? fs_.nodes().at(f).data : "\n";
    r.exit_code = 0;
    return r;
  }
  if (a.size() < 3) {
    r.exit_code = 1;
    return r;
  }
  const std::string& verb = a[1];
  if (verb == "show") {
    // `systemctl show -p MainPID --value UNIT`: the unit's first process while active, else 0.
    if (a.size() != 6 || a[2] != "-p" || a[3] != "MainPID" || a[4] != "--value") {
      r.exit_code = 1;
      return r;
    }
    const std::string& u = a[5];
    int pid = 0;
    if (units_.count(u) && units_[u] && !unit_procs_[u].empty() && procs_.count(unit_procs_[u].front().pid))
      pid = unit_procs_[u].front().pid;
    r.out = std::to_string(pid) + "\n";
    r.exit_code = 0;
    return r;
  }
  const std::string& unit = a[2];
  bool known = units_.count(unit) > 0;
  if (verb == "is-active") {
    r.out = known && units_[unit] ? "active\n" : "inactive\n";
    r.exit_code = known && units_[unit] ? 0 : 3;
  } else if (verb == "stop" || verb == "start") {
    if (!known) {
      r.exit_code = 5;
      r.err = "Failed to " + verb + " " + unit + ": Unit " + unit + " not loaded.\n";
      return r;
    }
    bool on = verb == "start";
    units_[unit] = on;
    fs_.put_file("/run/fake-systemd/" + unit, on ? "active\n" : "inactive\n");
    if (!on && transient_.count(unit)) {  // --collect: a stopped transient unit is gone
      units_.erase(unit);
      transient_.erase(unit);
      fs_.erase("/run/fake-systemd/" + unit);
      fs_.erase("/run/fake-logind/inhibitors/" + unit);
      if (auto l = fs_.list("/run/fake-logind/inhibitors"); l && l->empty()) fs_.erase_tree("/run/fake-logind");
      r.exit_code = 0;
      return r;
    }
    for (const auto& p : unit_procs_[unit]) {
      if (on) {
        procs_[p.pid] = p;
        write_proc(p);
      } else {
        procs_.erase(p.pid);
        fs_.erase_tree("/proc/" + std::to_string(p.pid));
      }
    }
    r.exit_code = 0;
  } else {
    r.exit_code = 1;
  }
  return r;
}

RunResult FakeKernel::modprobe(const std::vector<std::string>& a) {
  RunResult r;
  bool remove = a.size() > 2 && a[1] == "-r";
  bool show = a.size() > 2 && a[1] == "--show-depends";
  if (a.size() < 2 || (remove && a.size() < 3)) {
    r.exit_code = 1;
    return r;
  }
  std::string m = normal_module(remove || show ? a[2] : a[1]);
  if (show) {
    // What `modprobe m` would insert, in order, loaded or not (kmod prints them all).
    std::vector<std::string> seen;
    std::function<bool(const std::string&)> walk = [&](const std::string& n) {
      auto it = modules_.find(n);
      if (it == modules_.end()) return false;
      if (std::find(seen.begin(), seen.end(), n) != seen.end()) return true;
      seen.push_back(n);
      for (const auto& d : it->second.deps)
        if (!walk(d)) return false;
      if (it->second.builtin) r.out += "builtin " + n + "\n";
      else r.out += "insmod /lib/modules/6.1.0-fake/kernel/" + n + ".ko \n";
      if (auto sd = softdep_post_.find(n); sd != softdep_post_.end())
        for (const auto& s : sd->second) (void)walk(s);
      return true;
    };
    r.exit_code = 0;
    if (!walk(m)) {
      r.exit_code = 1;
      r.err = "modprobe: FATAL: Module " + m + " not found in directory /lib/modules/6.1.0-fake\n";
    }
    return r;
  }
  auto it = modules_.find(m);
  if (it == modules_.end()) {
    r.exit_code = 1;
    r.err = "modprobe: FATAL: Module " + m + " not found in directory /lib/modules/6.1.0-fake\n";
    return r;
  }
  FakeModule& mod = it->second;
  if (remove) {
    if (mod.builtin) {
      r.exit_code = 1;
      r.err = "modprobe: FATAL: Module " + m + " is builtin.\n";
      return r;
    }
    if (!mod.loaded) {
      r.exit_code = 0;
      return r;
    }
    std::string refs = trim(on_read("/sys/module/" + m + "/refcnt", ""));
    if (refs != "0") {
      r.exit_code = 1;
      r.err = "modprobe: FATAL: Module " + m + " is in use.\n";
      return r;
    }
    if (!mod.driver.empty()) unregister_driver(mod.driver);
    mod.loaded = false;
    fs_.erase_tree("/sys/module/" + m);
    if (m == "nvidia") nvidia_nodes(false);
    if (m == "vfio") fs_.erase_tree("/dev/vfio");
    // Like kmod 30: the dependencies go too, newest first, each alone (not its own
    // dependencies), stopping at the first one still in use: `modprobe -r vfio_pci` removes
    // vfio_pci_core and stops at vfio, which vfio_iommu_type1 holds.
    for (auto dep = mod.deps.rbegin(); dep != mod.deps.rend(); ++dep) {
      auto d = modules_.find(*dep);
      if (d == modules_.end() || !d->second.loaded) continue;
      if (trim(on_read("/sys/module/" + *dep + "/refcnt", "")) != "0") break;
      if (!d->second.driver.empty()) unregister_driver(d->second.driver);
      d->second.loaded = false;
      fs_.erase_tree("/sys/module/" + *dep);
      if (*dep == "vfio") fs_.erase_tree("/dev/vfio");
    }
    r.exit_code = 0;
    return r;
  }
  if (mod.builtin || mod.loaded) {
    r.exit_code = 0;
    return r;
  }
  for (const auto& dep : mod.deps) {
    auto rr = modprobe({"modprobe", dep});
    if (!rr.success()) return rr;
  }
  if (mod.loaded) {  // a dependency's soft dependency may have loaded it
    r.exit_code = 0;
    return r;
  }
  mod.loaded = true;
  fs_.put_file("/sys/module/" + m + "/initstate", "live\n");
  fs_.put_file("/sys/module/" + m + "/refcnt", "0\n");
  if (m == "nvidia") nvidia_nodes(true);
  if (m == "vfio") fs_.put_file("/dev/vfio/vfio", "");
  if (!mod.driver.empty()) register_driver(mod.driver);
  if (auto sd = softdep_post_.find(m); sd != softdep_post_.end())
    for (const auto& s : sd->second) (void)modprobe({"modprobe", s});
  r.exit_code = 0;
  return r;
}

RunResult FakeKernel::ddcutil(const std::vector<std::string>& a) {
  RunResult r;
  int bus = -1;
  std::vector<std::string> rest;
  for (size_t i = 1; i < a.size(); ++i) {
    if (a[i] == "--bus" && i + 1 < a.size()) bus = std::atoi(a[++i].c_str());
    else if (a[i] != "--brief") rest.push_back(a[i]);
  }
  if (!monitor_.count(bus)) {
    r.exit_code = 1;
    r.err = "No monitor detected on bus /dev/i2c-" + std::to_string(bus) + "\n";
    return r;
  }
  if (rest.size() >= 2 && rest[0] == "getvcp" && rest[1] == "60") {
    char b[40];
    std::snprintf(b, sizeof b, "VCP 60 SNC x%02x\n", monitor_[bus]);
    r.out = b;
    r.exit_code = 0;
  } else if (rest.size() >= 3 && rest[0] == "setvcp" && rest[1] == "60") {
    monitor_[bus] = std::atoi(rest[2].c_str());
    fs_.put_file("/run/fake-monitor/i2c-" + std::to_string(bus), rest[2] + "\n");
    r.exit_code = 0;
  } else {
    r.exit_code = 1;
  }
  return r;
}

void FakeKernel::set_monitor_input(int bus, int v) {
  monitor_[bus] = v;
  fs_.put_file("/run/fake-monitor/i2c-" + std::to_string(bus), std::to_string(v) + "\n");
}

bool FakeKernel::command_fault(const std::string& argv, const Deadline& d, RunResult& out) {
  Fault f;
  if (!take_fault(command_faults_, argv, f)) return false;
  out = RunResult{};
  if (f == Fault::hang) {
    clock_.advance(d.remaining() + 1);
    out.timed_out = true;
  } else {
    out.exit_code = 1;
    out.err = "injected failure\n";
  }
  return true;
}

}  // namespace gpuhook

// pci.vfio: one PCI function to vfio-pci and back, the way libvirt does it:
//   record driver and driver_override; write "vfio-pci" to driver_override; unbind from the
//   current driver; write the address to /sys/bus/pci/drivers_probe; wait for the driver link.
// Undo: clear driver_override with a single newline (an empty write does not clear it), unbind
// from vfio-pci, drivers_probe, wait for the original driver when its module is loaded (when it is
// not, the later module.load undo binds it).
#include "steps/steps.h"
#include "sysinfo/pci.h"

namespace gpuhook {
namespace {

std::string driver_of(Fs& fs, const std::string& addr) {
  return link_name(fs, std::string(kPciDevices) + "/" + addr + "/driver");
}

Status unbind(StepContext& ctx, const std::string& addr, const std::string& drv) {
  Deadline d = ctx.deadline.sub(ctx.timeouts.unbind_ms);
  auto s = ctx.host.fs.write_guarded(std::string(kPciDrivers) + "/" + drv + "/unbind", addr, d);
  if (!s) {
    Error e = s.error();
    e.what = "cannot unbind " + addr + " from " + drv + (e.timed_out ? " (the driver hangs in unbind)" : "");
    if (e.hint.empty())
      e.hint = e.timed_out ? "a process probably still uses the card; `gpuhook plan <vm>` lists holders, "
                             "or set [host] holders = \"terminate\""
                           : "see the kernel log (journalctl -k) for the driver's message";
    return e;
  }
  return Status::success();
}

Status probe(StepContext& ctx, const std::string& addr) {
  Deadline d = ctx.deadline.sub(ctx.timeouts.unbind_ms);
  auto s = ctx.host.fs.write_guarded("/sys/bus/pci/drivers_probe", addr, d);
  if (!s) {
    Error e = s.error();
    e.what = "cannot probe drivers for " + addr;
    return e;
  }
  return Status::success();
}

Status wait_driver(StepContext& ctx, const std::string& addr, const std::string& want) {
  Deadline d = ctx.deadline.sub(ctx.timeouts.unbind_ms);
  if (wait_until(d, [&] { return driver_of(ctx.host.fs, addr) == want; })) return Status::success();
  Error e;
  std::string now = driver_of(ctx.host.fs, addr);
  e.what = addr + " did not bind to " + (want.empty() ? "no driver" : want);
  e.why = "it is " + (now.empty() ? std::string("unbound") : "on " + now) + " after " +
          std::to_string(ctx.timeouts.unbind_ms) + " ms";
  e.hint = "see the kernel log (journalctl -k); `gpuhook status` shows every device's driver";
  e.timed_out = true;
  return e;
}

// The DRM nodes (card1, renderD129) that sit on a PCI function now.
std::vector<std::string> drm_nodes_of(Fs& fs, const std::string& addr) {
  std::vector<std::string> out;
  auto l = fs.list("/sys/class/drm");
  if (!l) return out;
  for (const auto& n : *l) {
    if (n.rfind("card", 0) != 0 && n.rfind("renderD", 0) != 0) continue;
    if (n.find('-') != std::string::npos) continue;  // connectors (card1-HDMI-A-1) are not nodes
    auto c = fs.canonical("/sys/class/drm/" + n);
    if (c && c->find("/" + addr + "/") != std::string::npos) out.push_back(n);
  }
  return out;
}

class PciVfio : public Step {
 public:
  PciVfio(std::string a, std::string at_plan) : addr_(std::move(a)), at_plan_(std::move(at_plan)) {}
  std::string kind() const override { return "pci.vfio"; }
  std::string describe() const override { return "bind " + addr_ + " to vfio-pci"; }
  Result<Record> record(StepContext& ctx) override {
    PciSysfs pci(ctx.host.fs);
    auto dev = pci.device(addr_);
    if (!dev) {
      Error e;
      e.what = "PCI device " + addr_ + " does not exist";
      e.hint = "check [gpu] address in the profile against `gpuhook groups`";
      return e;
    }
    std::string drm;
    for (const auto& n : drm_nodes_of(ctx.host.fs, addr_)) drm += (drm.empty() ? "" : ",") + n;
    return Record{{"address", addr_}, {"driver", dev->driver}, {"override", dev->driver_override},
                  {"driver_at_plan", at_plan_}, {"drm", drm}};
  }
  Status apply(StepContext& ctx, const Record& rec) override {
    Fs& fs = ctx.host.fs;
    std::string dev = std::string(kPciDevices) + "/" + addr_;
    if (!fs.is_dir(std::string(kPciDrivers) + "/vfio-pci")) {
      Error e;
      e.what = "the vfio-pci driver is not loaded";
      e.hint = "modprobe vfio-pci, or check that the kernel has CONFIG_VFIO_PCI";
      return e;
    }
    if (auto s = fs.write(dev + "/driver_override", "vfio-pci"); !s) return s;
    std::string cur = driver_of(fs, addr_);
    if (cur == "vfio-pci") return Status::success();
    if (!cur.empty())
      if (auto s = unbind(ctx, addr_, cur); !s) return s;
    if (auto s = probe(ctx, addr_); !s) return s;
    (void)rec;
    return wait_driver(ctx, addr_, "vfio-pci");
  }

 private:
  std::string addr_, at_plan_;
};

Status undo_pci_vfio(StepContext& ctx, const Record& rec) {
  Fs& fs = ctx.host.fs;
  std::string addr = field(rec, "address");
  if (!PciAddress::parse(addr)) {
    Error e;
    e.what = "journal record has no valid address";
    return e;
  }
  for (const char* key : {"driver", "driver_at_plan", "override"})
    if (auto s = check_journal_name(rec, key, true); !s) return s;
  std::string orig = field(rec, "driver");
  // A module.unload step of the same prepare may have unbound the device before this step
  // recorded it ("driver" empty): then the driver it had when the prepare began is the one to
  // give it back to (bound by the module's reload, or here when the module is already back).
  if (orig.empty()) orig = field(rec, "driver_at_plan");
  std::string override_was = field(rec, "override");
  std::string dev = std::string(kPciDevices) + "/" + addr;
  if (!fs.exists(dev)) {
    Error e;
    e.what = "PCI device " + addr + " is gone";
    e.hint = "it may have been removed or the bus rescanned; `echo 1 > /sys/bus/pci/rescan` brings it back";
    return e;
  }
  // A single newline clears driver_override; writing "" would leave it set.
  if (auto s = fs.write(dev + "/driver_override", override_was.empty() ? "\n" : override_was); !s) return s;
  std::string cur = driver_of(fs, addr);
  if (cur == orig) return Status::success();
  if (!cur.empty())
    if (auto s = unbind(ctx, addr, cur); !s) return s;
  if (orig.empty()) return Status::success();  // it had no driver before
  if (!fs.is_dir(std::string(kPciDrivers) + "/" + orig)) {
    // Its module is not loaded now (it was unloaded by a module.unload step, undone after this);
    // loading it binds the device.
    ctx.log.info(addr + " left unbound until its driver " + orig + " is loaded again");
    return Status::success();
  }
  if (auto s = probe(ctx, addr); !s) return s;
  if (driver_of(fs, addr) != orig) {
    // drivers_probe may pick another driver first; ask the original one explicitly.
    std::string now = driver_of(fs, addr);
    if (now.empty()) {
      Deadline d = ctx.deadline.sub(ctx.timeouts.unbind_ms);
      (void)fs.write_guarded(std::string(kPciDrivers) + "/" + orig + "/bind", addr, d);
    }
  }
  return wait_driver(ctx, addr, orig);
}

std::string verify_pci_vfio(StepContext& ctx, const Record& rec) {
  std::string addr = field(rec, "address");
  std::string cur = driver_of(ctx.host.fs, addr);
  if (cur != "vfio-pci") return addr + " should be on vfio-pci but is " + (cur.empty() ? "unbound" : "on " + cur);
  return "";
}

// After release: the function is on the driver it had, and has as many DRM nodes as then (a
// display server needs them; their numbers may change with the rebind).
std::string restored_pci_vfio(StepContext& ctx, const Record& rec) {
  std::string addr = field(rec, "address");
  if (!PciAddress::parse(addr)) return "";
  std::string orig = field(rec, "driver");
  if (orig.empty()) orig = field(rec, "driver_at_plan");
  std::string cur = driver_of(ctx.host.fs, addr);
  if (cur != orig) {
    std::string how = orig.empty() ? "echo " + addr + " > /sys/bus/pci/drivers/" + cur + "/unbind"
                      : !ctx.host.fs.is_dir(std::string(kPciDrivers) + "/" + orig)
                          ? "its driver " + orig + " is not loaded: modprobe " + orig
                          : "echo " + addr + " > /sys/bus/pci/drivers_probe";
    return addr + " is " + (cur.empty() ? std::string("without a driver") : "on " + cur) + ", not " +
           (orig.empty() ? std::string("without a driver") : "on " + orig) + " as before (" + how + ")";
  }
  size_t want = 0;
  for (const auto& n : [&] {
         std::vector<std::string> v;
         std::string d = field(rec, "drm");
         for (size_t p = 0; p < d.size();) {
           size_t c = d.find(',', p);
           if (c == std::string::npos) c = d.size();
           if (c > p) v.push_back(d.substr(p, c - p));
           p = c + 1;
         }
         return v;
       }())
    want += !n.empty();
  size_t have = drm_nodes_of(ctx.host.fs, addr).size();
  if (have < want)
    return addr + " has " + std::to_string(have) + " DRM node(s), it had " + std::to_string(want) + " (" +
           field(rec, "drm") + "): its driver bound without its display; see journalctl -k";
  return "";
}

}  // namespace

std::string pci_vfio_nothing_left(StepContext& ctx, const Record& rec) {
  std::string addr = field(rec, "address");
  if (!PciAddress::parse(addr)) return "";
  std::string orig = field(rec, "driver");
  if (orig.empty()) orig = field(rec, "driver_at_plan");
  PciSysfs pci(ctx.host.fs);
  auto d = pci.device(addr);
  if (!d || d->driver != orig || d->driver_override != field(rec, "override")) return "";
  return addr + " is on " + (orig.empty() ? std::string("no driver") : orig) + " again, as before";
}

std::unique_ptr<Step> make_pci_vfio(const std::string& address, const std::string& driver_at_plan) {
  return std::make_unique<PciVfio>(address, driver_at_plan);
}

StepKindInfo pci_vfio_kind() { return {undo_pci_vfio, verify_pci_vfio, restored_pci_vfio}; }

}  // namespace gpuhook

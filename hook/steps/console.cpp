// vtcon.unbind: a frame buffer console (/sys/class/vtconsole/vtconN whose name says "frame
// buffer") unbound from the console layer so the framebuffer can go; undo binds it again.
// fb.release: a firmware framebuffer platform device (efi-framebuffer.0, simple-framebuffer.0,
// vesa-framebuffer.0) unbound from its driver (efifb, simpledrm, vesafb...); undo binds it again.
//
// What the kernel does meanwhile (Debian's 6.1, proven by tests/desktop): a driver that takes the
// boot GPU's memory (vfio-pci, a DRM driver) unregisters the firmware framebuffer's platform
// device for good (sysfb); fbcon's vtconsole vanishes with the last framebuffer and comes back,
// bound, maybe under another number, when a DRM driver with fbdev emulation binds a GPU. So the
// vtcon undo, which runs after the driver is back, finds fbcon's vtconsole by name; and an undo
// whose object the kernel removed is not a failure to retry: it returns Error::gone with a hint
// true for this machine (is a framebuffer left? another GPU? which driver?).
#include "steps/steps.h"
#include "sysinfo/pci.h"

namespace gpuhook {
namespace {

class VtconUnbind : public Step {
 public:
  explicit VtconUnbind(std::string v) : vt_(std::move(v)) {}
  std::string kind() const override { return "vtcon.unbind"; }
  std::string describe() const override { return "unbind console " + vt_; }
  Result<Record> record(StepContext& ctx) override {
    std::string base = "/sys/class/vtconsole/" + vt_;
    return Record{{"vtcon", vt_}, {"was_bound", read_attr(ctx.host.fs, base + "/bind")},
                  {"name", read_attr(ctx.host.fs, base + "/name")}};
  }
  Status apply(StepContext& ctx, const Record& rec) override {
    if (field(rec, "was_bound") != "1") return Status::success();
    // The console layer takes the console lock and calls into fbcon: guarded.
    return ctx.host.fs.write_guarded("/sys/class/vtconsole/" + vt_ + "/bind", "0",
                                     ctx.deadline.sub(ctx.timeouts.unbind_ms));
  }

 private:
  std::string vt_;
};

bool safe_name(const std::string& s) { return !s.empty() && s.find('/') == std::string::npos && s[0] != '.'; }

constexpr const char* kVtconsoles = "/sys/class/vtconsole";
constexpr const char* kPlatformDevices = "/sys/bus/platform/devices";

// fbcon's vtconsoles now, by name (there is one fbcon driver; its number may have changed).
std::vector<std::string> fb_vtconsoles(Fs& fs) {
  std::vector<std::string> v;
  if (auto l = fs.list(kVtconsoles); l)
    for (const auto& vt : *l)
      if (read_attr(fs, std::string(kVtconsoles) + "/" + vt + "/name").find("frame buffer") != std::string::npos)
        v.push_back(vt);
  return v;
}

// Firmware framebuffer platform devices that exist now (bound or not).
std::vector<std::string> firmware_fbs(Fs& fs) {
  std::vector<std::string> v;
  if (auto l = fs.list(kPlatformDevices); l)
    for (const auto& dev : *l)
      if (dev.rfind("efi-framebuffer", 0) == 0 || dev.rfind("simple-framebuffer", 0) == 0 ||
          dev.rfind("vesa-framebuffer", 0) == 0)
        v.push_back(dev);
  return v;
}

// Registered framebuffers: "fb0 of 0000:0b:00.0 (amdgpu)", "fb0 of efi-framebuffer.0".
std::vector<std::string> framebuffers(Fs& fs, const std::string& only_on = "") {
  std::vector<std::string> v;
  auto l = fs.list("/sys/class/graphics");
  if (!l) return v;
  for (const auto& fb : *l) {
    // fbN only: the class also holds fbcon's own virtual device ("fbcon"), which is no framebuffer.
    if (fb.size() < 3 || fb.rfind("fb", 0) != 0 || fb.find_first_not_of("0123456789", 2) != std::string::npos) continue;
    auto c = fs.canonical("/sys/class/graphics/" + fb);
    if (!c) continue;
    std::string dev = dirname_of(dirname_of(*c));  // .../<device>/graphics/fbN
    std::string name = basename_of(dev);
    if (!only_on.empty() && name != only_on) continue;
    std::string drv = link_name(fs, dev + "/driver");
    v.push_back(fb + " of " + name + (drv.empty() ? "" : " (" + drv + ")"));
  }
  return v;
}

// The hint for a console or firmware framebuffer the kernel removed, true for this machine.
std::string lost_console_hint(Fs& fs) {
  auto fbs = framebuffers(fs);
  if (!fbs.empty()) return "the console uses " + fbs.front() + " now: nothing is lost";
  PciSysfs pci(fs);
  std::string boot, boot_drv, other;
  for (const auto& a : pci.addresses()) {
    std::string dir = pci.device_path(a);
    if (read_attr(fs, dir + "/class").rfind("0x03", 0) != 0) continue;
    std::string drv = link_name(fs, dir + "/driver");
    if (read_attr(fs, dir + "/boot_vga") == "1") {
      boot = a;
      boot_drv = drv;
    } else if (!drv.empty() && drv != "vfio-pci" && drv != "pci-stub" && other.empty()) {
      other = a + " (" + drv + ")";
    }
  }
  if (!other.empty())
    return "no framebuffer is left, so the text console stays off until reboot; the desktop on " + other +
           " is not affected";
  std::string gpu = boot.empty() ? std::string("the GPU") : boot;
  return gpu + " is the only GPU and " +
         (boot_drv.empty() ? std::string("has no driver now") : "its driver " + boot_drv + " gives it no framebuffer") +
         ": the text console is gone until reboot, or until a DRM driver with a framebuffer binds " + gpu +
         "; the desktop is not affected";
}

Error gone_error(Fs& fs, std::string what, std::string why) {
  Error e;
  e.what = std::move(what);
  e.why = std::move(why);
  e.hint = lost_console_hint(fs);
  e.gone = true;
  return e;
}

Status undo_vtcon(StepContext& ctx, const Record& rec) {
  std::string vt = field(rec, "vtcon");
  if (field(rec, "was_bound") != "1" || !safe_name(vt)) return Status::success();
  // By name, not by the number recorded at prepare: runs after the GPU's driver is back, when
  // fbcon may have registered again under another vtconN (and vtconN may be another console now).
  auto fbcons = fb_vtconsoles(ctx.host.fs);
  auto unbound_fw = fbcons.empty() ? firmware_fbs(ctx.host.fs) : std::vector<std::string>{};
  if (!unbound_fw.empty()) {
    // A firmware framebuffer is still registered, only unbound: fbcon comes back, bound, with it.
    Error e;
    e.what = "the frame buffer console " + vt + " is not there while " + unbound_fw.front() + " has no driver";
    e.hint = "it comes back with that framebuffer; `gpuhook restore " + ctx.vm + "` retries both";
    return e;
  }
  if (fbcons.empty())
    return gone_error(ctx.host.fs, "the frame buffer console " + vt + " vanished with the last framebuffer",
                      "no vtconsole in " + std::string(kVtconsoles) + " is a frame buffer device");
  for (const auto& v : fbcons) {
    std::string p = std::string(kVtconsoles) + "/" + v + "/bind";
    if (read_attr(ctx.host.fs, p) == "1") continue;
    if (auto s = ctx.host.fs.write_guarded(p, "1", ctx.deadline.sub(ctx.timeouts.unbind_ms)); !s) return s;
    if (v != vt) ctx.log.info("frame buffer console bound again as " + v + " (it was " + vt + ")");
  }
  return Status::success();
}

std::string vtcon_nothing_to_undo(StepContext& ctx, const Record& rec) {
  if (field(rec, "was_bound") != "1") return "the console was not bound";
  auto fbcons = fb_vtconsoles(ctx.host.fs);
  if (fbcons.empty()) return "the frame buffer console vanished with the last framebuffer";
  for (const auto& v : fbcons)
    if (read_attr(ctx.host.fs, std::string(kVtconsoles) + "/" + v + "/bind") != "1") return "";
  return "the frame buffer console is bound";
}

// After release: when a frame buffer console exists again (a DRM driver with fbdev emulation
// bound the GPU), it is bound; found by name, its number may have changed.
std::string restored_vtcon(StepContext& ctx, const Record& rec) {
  if (field(rec, "was_bound") != "1") return "";
  auto l = ctx.host.fs.list("/sys/class/vtconsole");
  if (!l) return "";
  for (const auto& vt : *l) {
    std::string base = "/sys/class/vtconsole/" + vt;
    if (read_attr(ctx.host.fs, base + "/name").find("frame buffer") == std::string::npos) continue;
    if (read_attr(ctx.host.fs, base + "/bind") != "1")
      return "the frame buffer console " + vt + " is not bound (echo 1 > " + base + "/bind)";
  }
  return "";
}

class FbRelease : public Step {
 public:
  FbRelease(std::string dev, std::string drv) : dev_(std::move(dev)), drv_(std::move(drv)) {}
  std::string kind() const override { return "fb.release"; }
  std::string describe() const override { return "release boot framebuffer " + dev_ + " from " + drv_; }
  Result<Record> record(StepContext&) override { return Record{{"device", dev_}, {"driver", drv_}}; }
  Status apply(StepContext& ctx, const Record&) override {
    if (link_name(ctx.host.fs, "/sys/bus/platform/devices/" + dev_ + "/driver") != drv_) return Status::success();
    Deadline d = ctx.deadline.sub(ctx.timeouts.unbind_ms);
    return ctx.host.fs.write_guarded("/sys/bus/platform/drivers/" + drv_ + "/unbind", dev_, d);
  }

 private:
  std::string dev_, drv_;
};

Status undo_fb(StepContext& ctx, const Record& rec) {
  std::string dev = field(rec, "device"), drv = field(rec, "driver");
  if (!safe_name(dev) || !safe_name(drv)) return Status::success();
  std::string at = std::string(kPlatformDevices) + "/" + dev;
  if (!ctx.host.fs.exists(at))
    return gone_error(ctx.host.fs,
                      "the firmware framebuffer " + dev + " no longer exists: the kernel unregisters it when a "
                      "driver takes the GPU's memory",
                      "no " + at);
  if (link_name(ctx.host.fs, at + "/driver") == drv) return Status::success();
  Deadline d = ctx.deadline.sub(ctx.timeouts.unbind_ms);
  auto s = ctx.host.fs.write_guarded("/sys/bus/platform/drivers/" + drv + "/bind", dev, d);
  if (!s) {
    Error e = s.error();
    e.what = "cannot give " + dev + " back to " + drv;
    e.hint = dev + " still exists, so this can work later: `gpuhook restore " + ctx.vm + "` retries it";
    return e;
  }
  return Status::success();
}

std::string fb_nothing_to_undo(StepContext& ctx, const Record& rec) {
  std::string dev = field(rec, "device");
  if (!safe_name(dev)) return "";
  std::string at = std::string(kPlatformDevices) + "/" + dev;
  if (!ctx.host.fs.exists(at)) return dev + " no longer exists (the kernel unregistered it; back at reboot)";
  if (link_name(ctx.host.fs, at + "/driver") == field(rec, "driver")) return dev + " is bound to " + field(rec, "driver");
  return "";
}

}  // namespace

std::unique_ptr<Step> make_vtcon_unbind(const std::string& vt) { return std::make_unique<VtconUnbind>(vt); }
std::unique_ptr<Step> make_fb_release(const std::string& d, const std::string& drv) {
  return std::make_unique<FbRelease>(d, drv);
}
StepKindInfo vtcon_kind() { return {undo_vtcon, {}, restored_vtcon}; }
StepKindInfo fb_kind() { return {undo_fb, {}, {}}; }
std::string vtcon_nothing_left(StepContext& ctx, const Record& rec) { return vtcon_nothing_to_undo(ctx, rec); }
std::string fb_nothing_left(StepContext& ctx, const Record& rec) { return fb_nothing_to_undo(ctx, rec); }

std::string firmware_fb_loss(Fs& fs, const std::string& gpu) {
  if (read_attr(fs, std::string(kPciDevices) + "/" + gpu + "/boot_vga") != "1") return "";
  for (const auto& dev : firmware_fbs(fs)) {
    if (!framebuffers(fs, gpu).empty()) return "";  // a DRM driver of its own gives the console a framebuffer
    std::string fbdrv = link_name(fs, std::string(kPlatformDevices) + "/" + dev + "/driver");
    std::string drv = link_name(fs, std::string(kPciDevices) + "/" + gpu + "/driver");
    return "the firmware framebuffer " + dev + " (" + (fbdrv.empty() ? "no driver" : fbdrv) + ") on " + gpu +
           " and the text console on it will not come back until reboot once the VM has had the GPU: binding "
           "vfio-pci makes the kernel unregister it for good, and no DRM driver of " + gpu + "'s own gives the "
           "console a new framebuffer (driver now: " + (drv.empty() ? "none" : drv) + ")";
  }
  return "";
}

}  // namespace gpuhook

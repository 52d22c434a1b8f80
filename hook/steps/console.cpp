// vtcon.unbind: a frame buffer console (/sys/class/vtconsole/vtconN whose name says "frame
// buffer") unbound from the console layer so the framebuffer can go; undo binds it again.
// fb.release: a firmware framebuffer platform device (efi-framebuffer.0, simple-framebuffer.0,
// vesa-framebuffer.0) unbound from its driver (efifb, simpledrm, vesafb...); undo binds it again.
#include "steps/steps.h"

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

Status undo_vtcon(StepContext& ctx, const Record& rec) {
  std::string vt = field(rec, "vtcon");
  if (field(rec, "was_bound") != "1" || !safe_name(vt)) return Status::success();
  std::string p = "/sys/class/vtconsole/" + vt + "/bind";
  if (read_attr(ctx.host.fs, p) == "1") return Status::success();
  return ctx.host.fs.write_guarded(p, "1", ctx.deadline.sub(ctx.timeouts.unbind_ms));
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
  if (link_name(ctx.host.fs, "/sys/bus/platform/devices/" + dev + "/driver") == drv) return Status::success();
  Deadline d = ctx.deadline.sub(ctx.timeouts.unbind_ms);
  auto s = ctx.host.fs.write_guarded("/sys/bus/platform/drivers/" + drv + "/bind", dev, d);
  if (!s) {
    Error e = s.error();
    e.what = "cannot give " + dev + " back to " + drv;
    e.hint = "the console stays on the other GPU until reboot; harmless for the desktop";
    return e;
  }
  return Status::success();
}

}  // namespace

std::unique_ptr<Step> make_vtcon_unbind(const std::string& vt) { return std::make_unique<VtconUnbind>(vt); }
std::unique_ptr<Step> make_fb_release(const std::string& d, const std::string& drv) {
  return std::make_unique<FbRelease>(d, drv);
}
StepKindInfo vtcon_kind() { return {undo_vtcon, {}, restored_vtcon}; }
StepKindInfo fb_kind() { return {undo_fb, {}, {}}; }

}  // namespace gpuhook

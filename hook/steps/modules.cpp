// module.load / module.unload: kernel modules through modprobe, state read from /sys/module.
// A built-in module cannot be unloaded: that is reported by check/plan, and the step is not
// planned for it.
#include "steps/steps.h"

namespace gpuhook {
namespace {

bool module_loaded(Fs& fs, const std::string& m) {
  // /sys/module/<m>/initstate exists for loadable modules only ("live" when loaded).
  return read_attr(fs, "/sys/module/" + m + "/initstate") == "live";
}

class ModuleLoad : public Step {
 public:
  ModuleLoad(std::string m, std::string drv) : m_(std::move(m)), drv_(std::move(drv)) {}
  std::string kind() const override { return "module.load"; }
  std::string describe() const override { return "load module " + m_; }
  Result<Record> record(StepContext& ctx) override {
    return Record{{"module", m_}, {"driver_dir", drv_}, {"was_loaded", ctx.host.fs.is_dir(drv_) ? "1" : "0"}};
  }
  Status apply(StepContext& ctx, const Record&) override {
    if (ctx.host.fs.is_dir(drv_)) return Status::success();
    auto r = run_checked(ctx, {"modprobe", m_}, ctx.timeouts.command_ms, "cannot load module " + m_);
    if (!r) return r.error();
    Deadline d = ctx.deadline.sub(ctx.timeouts.command_ms);
    if (!wait_until(d, [&] { return ctx.host.fs.is_dir(drv_); })) {
      Error e;
      e.what = "module " + m_ + " loaded but " + drv_ + " did not appear";
      return e;
    }
    return Status::success();
  }

 private:
  std::string m_, drv_;
};

Status undo_module_load(StepContext& ctx, const Record& rec) {
  std::string m = field(rec, "module"), drv = field(rec, "driver_dir");
  if (field(rec, "was_loaded") == "1" || m.empty()) return Status::success();
  if (auto s = check_journal_name(rec, "module"); !s) return s;
  // driver_dir is /sys/bus/pci/drivers/<name>, and is only ever tested and listed.
  const std::string drivers = "/sys/bus/pci/drivers/";
  std::string drv_name = drv.compare(0, drivers.size(), drivers) == 0 ? drv.substr(drivers.size()) : drv;
  if (auto s = check_journal_name(Record{{"driver_dir", drv_name}}, "driver_dir"); !s) return s;
  if (!module_loaded(ctx.host.fs, m) && !ctx.host.fs.is_dir(drv)) return Status::success();
  // Leave it loaded when a device still uses it (another VM, or a vfio-pci.ids= binding).
  if (auto l = ctx.host.fs.list(drv); l) {
    for (const auto& n : *l)
      if (n.find(':') != std::string::npos) {
        ctx.log.info("module " + m + " left loaded: " + n + " still uses it");
        return Status::success();
      }
  }
  auto r = run_checked(ctx, {"modprobe", "-r", m}, ctx.timeouts.command_ms, "cannot unload module " + m);
  if (!r) return r.error();
  return Status::success();
}

class ModuleUnload : public Step {
 public:
  explicit ModuleUnload(std::string m) : m_(std::move(m)) {}
  std::string kind() const override { return "module.unload"; }
  std::string describe() const override { return "unload module " + m_; }
  Result<Record> record(StepContext& ctx) override {
    return Record{{"module", m_}, {"was_loaded", module_loaded(ctx.host.fs, m_) ? "1" : "0"}};
  }
  Status apply(StepContext& ctx, const Record& rec) override {
    if (field(rec, "was_loaded") != "1") return Status::success();
    auto r = run_checked(ctx, {"modprobe", "-r", m_}, ctx.timeouts.command_ms, "cannot unload module " + m_);
    if (!r) {
      Error e = r.error();
      std::string refs = read_attr(ctx.host.fs, "/sys/module/" + m_ + "/refcnt");
      if (!refs.empty() && refs != "0") e.why += " (module in use, refcnt " + refs + ")";
      e.hint = "something still uses " + m_ + ": `gpuhook plan <vm>` lists processes holding the GPU; "
               "nvidia-persistenced and the display manager are the usual ones ([host] stop_services)";
      return e;
    }
    Deadline d = ctx.deadline.sub(ctx.timeouts.command_ms);
    if (!wait_until(d, [&] { return !module_loaded(ctx.host.fs, m_); })) {
      Error e;
      e.what = "module " + m_ + " is still loaded after modprobe -r";
      return e;
    }
    return Status::success();
  }

 private:
  std::string m_;
};

Status undo_module_unload(StepContext& ctx, const Record& rec) {
  std::string m = field(rec, "module");
  if (field(rec, "was_loaded") != "1" || m.empty()) return Status::success();
  if (auto s = check_journal_name(rec, "module"); !s) return s;
  if (module_loaded(ctx.host.fs, m)) return Status::success();
  auto r = run_checked(ctx, {"modprobe", m}, ctx.timeouts.command_ms, "cannot load module " + m + " again");
  if (!r) {
    Error e = r.error();
    e.hint = "run `modprobe " + m + "` by hand and look at the kernel log (journalctl -k)";
    return e;
  }
  return Status::success();
}

std::string verify_module_unload(StepContext& ctx, const Record& rec) {
  std::string m = field(rec, "module");
  if (field(rec, "was_loaded") == "1" && module_loaded(ctx.host.fs, m)) return "module " + m + " is loaded again";
  return "";
}

}  // namespace

std::unique_ptr<Step> make_module_load(const std::string& m, const std::string& driver_dir) {
  return std::make_unique<ModuleLoad>(m, driver_dir);
}
std::unique_ptr<Step> make_module_unload(const std::string& m) { return std::make_unique<ModuleUnload>(m); }
StepKindInfo module_load_kind() { return {undo_module_load, {}}; }
StepKindInfo module_unload_kind() { return {undo_module_unload, verify_module_unload}; }

}  // namespace gpuhook

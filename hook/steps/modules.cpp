// module.load / module.unload: kernel modules through modprobe, state read from /sys/module.
// A built-in module cannot be unloaded: that is reported by check/plan, and the step is not
// planned for it.
//
// module.load also records the modules `modprobe <m>` will load with it (its dependencies and
// soft dependencies not loaded yet, from `modprobe --show-depends`), because `modprobe -r <m>`
// does not remove them all: on Debian 12 (kmod 30, kernel 6.1) `modprobe -r vfio-pci` removes
// vfio_pci and vfio_pci_core and stops at vfio, which vfio_iommu_type1 (loaded as vfio's soft
// dependency) holds, leaving vfio, vfio_iommu_type1, vfio_virqfd, irqbypass and /dev/vfio/vfio
// behind. Undo removes those too, newest first, when nothing uses them.
#include "engine/journal.h"
#include "steps/steps.h"
#include "sysinfo/kmod.h"

namespace gpuhook {
namespace {

bool module_loaded(Fs& fs, const std::string& m) {
  // /sys/module/<m>/initstate exists for loadable modules only ("live" when loaded).
  return read_attr(fs, "/sys/module/" + module_name(m) + "/initstate") == "live";
}

// Modules `modprobe <m>` would load that are not loaded now, in load order, without <m>:
// the "insmod /lib/modules/.../vfio.ko" lines of `modprobe --show-depends <m>`. When modprobe
// cannot tell, the step refuses before loading anything: release could not undo it exactly.
Result<std::string> modules_loaded_with(StepContext& ctx, const std::string& m) {
  auto r = run_checked(ctx, {"modprobe", "--show-depends", m}, ctx.timeouts.command_ms,
                       "cannot tell which modules loading " + m + " brings along");
  if (!r) {
    Error e = r.error();
    e.hint = "check that `modprobe --show-depends " + m + "` works (kmod installed, /lib/modules/$(uname -r) present)";
    return e;
  }
  std::string out, self = module_name(m);
  size_t pos = 0;
  while (pos < r->out.size()) {
    size_t nl = r->out.find('\n', pos);
    if (nl == std::string::npos) nl = r->out.size();
    std::string line = trim(r->out.substr(pos, nl - pos));
    pos = nl + 1;
    if (line.rfind("insmod ", 0) != 0) continue;
    std::string path = trim(line.substr(7));
    path = path.substr(0, path.find(' '));  // module parameters may follow
    std::string name = path.substr(path.rfind('/') + 1);
    name = module_name(name.substr(0, name.find(".ko")));
    if (name.empty() || name == self || module_loaded(ctx.host.fs, name)) continue;
    if (name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != std::string::npos)
      continue;
    if (("," + out + ",").find("," + name + ",") != std::string::npos) continue;
    out += (out.empty() ? "" : ",") + name;
  }
  return out;
}

class ModuleLoad : public Step {
 public:
  ModuleLoad(std::string m, std::string drv, bool keep) : m_(std::move(m)), drv_(std::move(drv)), keep_(keep) {}
  std::string kind() const override { return "module.load"; }
  std::string describe() const override {
    return "load module " + m_ + (keep_ ? " (left loaded after release: [host] unload_vfio = false)" : "");
  }
  Result<Record> record(StepContext& ctx) override {
    bool was = ctx.host.fs.is_dir(drv_);
    std::string with;
    if (!was) {
      auto w = modules_loaded_with(ctx, m_);
      if (!w) return w.error();
      with = *w;
    }
    return Record{{"module", m_}, {"driver_dir", drv_}, {"was_loaded", was ? "1" : "0"}, {"with", with},
                  {"keep_loaded", keep_ ? "1" : "0"}};
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
  bool keep_;
};

// The host's own journal (/run/gpuhook/.host.journal: no VM name starts with '.'): the modules
// gpuhook loaded that outlived the VM that loaded them, because another VM's devices still used
// them, or because the VM's profile kept them loaded (kept=1: [host] unload_vfio = false, the
// default; the record of prepare says so, not the profile of now). Whoever releases last (any
// VM's release, `gpuhook restore`) unloads the ones not kept once nothing uses them; `gpuhook
// restore --all-modules` the kept ones too: a host-wide change always has an owner.
constexpr const char* kHostJournal = ".host";

// The device (if any) on the driver a module.load record loaded.
std::string driver_user(StepContext& ctx, const std::string& drv) {
  const std::string drivers = "/sys/bus/pci/drivers/";
  if (drv.compare(0, drivers.size(), drivers) != 0 ||
      !check_journal_name(Record{{"d", drv.substr(drivers.size())}}, "d"))
    return "";  // not a driver directory: the undo refuses the record
  if (auto l = ctx.host.fs.list(drv); l)
    for (const auto& n : *l)
      if (n.find(':') != std::string::npos) return n;
  return "";
}

Status undo_module_load_now(StepContext& ctx, const Record& rec);

Status undo_module_load(StepContext& ctx, const Record& rec) {
  std::string m = field(rec, "module"), drv = field(rec, "driver_dir");
  if (field(rec, "was_loaded") == "1" || m.empty()) return Status::success();
  if (auto s = check_journal_name(rec, "module"); !s) return s;
  if (field(rec, "host_owned") == "1") return undo_module_load_now(ctx, rec);
  // A failed prepare's rollback leaves the host exactly as before: kept only by a release.
  bool kept = field(rec, "keep_loaded") == "1" && !ctx.rollback;
  std::string user = driver_user(ctx, drv);
  if (user.empty() && !kept) return undo_module_load_now(ctx, rec);
  // The module becomes the host's: the profile kept it loaded (the next start needs it), or
  // another VM's device (or a vfio-pci.ids= binding) uses it and the last release unloads it.
  std::string why = kept ? "[host] unload_vfio = false when VM " + ctx.vm + " started; `gpuhook restore --all-modules` unloads it"
                         : user + " still uses it; the last release unloads it";
  JournalStore host(ctx.host.fs, ctx.state_dir);
  auto j = host.load(kHostJournal);
  if (!j) return j.error();
  for (const auto& e : j->entries)
    if (e.kind == "module.load" && field(e.fields, "module") == m) {
      ctx.log.info("module " + m + " left loaded: " + why);
      return Status::success();  // already the host's
    }
  JournalEntry e;
  e.seq = j->next_seq();
  e.kind = "module.load";
  e.phase = "host";
  e.fields = rec;
  e.fields["host_owned"] = "1";
  e.fields["kept"] = kept ? "1" : "0";
  e.fields["loaded_for"] = ctx.vm;
  e.done = true;
  j->vm = kHostJournal;
  j->entries.push_back(e);
  if (auto s = host.save(*j); !s) return s;
  ctx.log.info("module " + m + " left loaded: " + why);
  return Status::success();
}

Status release_host_modules_impl(StepContext& ctx, bool all_modules) {
  JournalStore host(ctx.host.fs, ctx.state_dir);
  if (!host.exists(kHostJournal)) return Status::success();
  auto j = host.load(kHostJournal);
  if (!j) return j.error();
  Status result;
  std::vector<JournalEntry> keep;
  for (auto it = j->entries.rbegin(); it != j->entries.rend(); ++it) {
    std::string user = driver_user(ctx, field(it->fields, "driver_dir"));
    // A kept module someone unloaded by hand is no longer kept: what came with it goes too.
    bool kept = field(it->fields, "kept") == "1" && module_loaded(ctx.host.fs, field(it->fields, "module"));
    if (!user.empty() || (kept && !all_modules)) {
      if (!user.empty() && all_modules)
        ctx.log.info("module " + field(it->fields, "module") + " left loaded: " + user + " uses it");
      keep.insert(keep.begin(), *it);
      continue;
    }
    Status s = it->kind == "module.load" ? undo_module_load_now(ctx, it->fields) : Status::success();
    if (s) {
      ctx.log.info("module " + field(it->fields, "module") + " (loaded for VM " + field(it->fields, "loaded_for") +
                   ") unloaded: nothing uses it any more");
    } else {
      ctx.log.error("cannot unload module " + field(it->fields, "module") + ": " + s.error().message());
      if (result) result = s;
      keep.insert(keep.begin(), *it);
    }
  }
  j->entries = keep;
  if (j->entries.empty() && j->damaged.empty()) (void)host.remove(kHostJournal);
  else (void)host.save(*j);
  return result;
}

Status undo_module_load_now(StepContext& ctx, const Record& rec) {
  std::string m = field(rec, "module"), drv = field(rec, "driver_dir");
  if (field(rec, "was_loaded") == "1" || m.empty()) return Status::success();
  if (auto s = check_journal_name(rec, "module"); !s) return s;
  // driver_dir is /sys/bus/pci/drivers/<name>, and is only ever tested and listed.
  const std::string drivers = "/sys/bus/pci/drivers/";
  std::string drv_name = drv.compare(0, drivers.size(), drivers) == 0 ? drv.substr(drivers.size()) : drv;
  if (auto s = check_journal_name(Record{{"driver_dir", drv_name}}, "driver_dir"); !s) return s;
  // (When <m> is already gone, this is a replay after a failed release: what came with it may
  // still be loaded.)
  if (module_loaded(ctx.host.fs, m) || ctx.host.fs.is_dir(drv)) {
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
  }
  // What came with it, newest first; one that something uses now stays (not an error).
  std::vector<std::string> with;
  std::string w = field(rec, "with");
  for (size_t p = 0; p < w.size();) {
    size_t c = w.find(',', p);
    if (c == std::string::npos) c = w.size();
    std::string n = w.substr(p, c - p);
    p = c + 1;
    if (!n.empty() && n.find('/') == std::string::npos && n[0] != '-') with.insert(with.begin(), n);
  }
  std::string left, failed;
  for (const auto& n : with) {
    if (!module_loaded(ctx.host.fs, n)) continue;
    std::string refs = read_attr(ctx.host.fs, "/sys/module/" + n + "/refcnt");
    bool unloaded = false;
    if (refs == "0") {
      Deadline d = ctx.deadline.sub(ctx.timeouts.command_ms);
      auto rr = ctx.host.runner.run({"modprobe", "-r", n}, d);
      unloaded = rr && rr->success();
    }
    if (!unloaded && module_loaded(ctx.host.fs, n))
      (refs == "0" ? failed : left) += std::string((refs == "0" ? failed : left).empty() ? "" : ", ") + n;
  }
  if (!left.empty()) ctx.log.info("module(s) loaded with " + m + " left loaded, in use: " + left);
  if (!failed.empty()) {
    // Unused, yet modprobe -r failed: keep the step in the journal so the next release retries.
    Error e;
    e.what = "cannot unload " + failed + " (loaded with " + m + ", unused)";
    e.hint = "run `modprobe -r " + failed.substr(0, failed.find(',')) + "` by hand, or `gpuhook restore <vm>`";
    return e;
  }
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

std::string restored_module_unload(StepContext& ctx, const Record& rec) {
  std::string m = field(rec, "module");
  if (field(rec, "was_loaded") == "1" && !module_loaded(ctx.host.fs, m))
    return "module " + m + " is not loaded again (modprobe " + m + ")";
  return "";
}

std::string verify_module_unload(StepContext& ctx, const Record& rec) {
  std::string m = field(rec, "module");
  if (field(rec, "was_loaded") == "1" && module_loaded(ctx.host.fs, m)) return "module " + m + " is loaded again";
  return "";
}

}  // namespace

std::string module_unload_nothing_left(StepContext& ctx, const Record& rec) {
  std::string m = field(rec, "module");
  if (field(rec, "was_loaded") != "1") return "the module was not loaded before";
  if (module_loaded(ctx.host.fs, m)) return "module " + m + " is loaded again";
  return "";
}

std::unique_ptr<Step> make_module_load(const std::string& m, const std::string& driver_dir, bool keep_loaded) {
  return std::make_unique<ModuleLoad>(m, driver_dir, keep_loaded);
}
Status release_host_modules(StepContext& ctx, bool all_modules) { return release_host_modules_impl(ctx, all_modules); }

std::unique_ptr<Step> make_module_unload(const std::string& m) { return std::make_unique<ModuleUnload>(m); }
StepKindInfo module_load_kind() { return {undo_module_load, {}, {}}; }
StepKindInfo module_unload_kind() { return {undo_module_unload, verify_module_unload, restored_module_unload}; }

}  // namespace gpuhook

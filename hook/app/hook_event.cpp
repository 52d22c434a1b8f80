// The hook path, as a table of contents:
//   1. Is this VM ours?          no profile (or an unsafe name): exit 0, touch nothing.
//   2. Global config and log.    a broken global config refuses prepare, never release.
//   3. Dispatch on the operation:
//      prepare  load profile -> plan -> refuse, or lock + apply with journal (rollback on failure)
//      start, started            apply the phase's steps (rollback of that phase on failure)
//      release                   undo everything from the journal; never fails
//      reconnect                 compare journal and host, log differences; never fails
//      stopped, migrate, restore, ...   nothing to do (log only)
//   4. One summary line in the log; on refusal a few lines on stderr for virsh.
#include "app/hook_event.h"

#include <algorithm>

#include "domain/domain_xml.h"
#include "engine/planner.h"
#include "sysinfo/pci.h"

namespace gpuhook {

bool has_profile(Fs& fs, const std::string& vm) {
  if (!vm_name_problem(vm).empty()) return false;
  return fs.stat(profile_path(vm), false).type != FileType::missing;
}

namespace {

struct Locks {
  std::vector<std::unique_ptr<LockHandle>> held;
};

// VM lock first, then device locks in sorted order: a fixed order, so two hooks cannot deadlock.
Status take_locks(AppContext& app, const GlobalConfig& g, const std::string& vm, std::vector<std::string> devices,
                  const Deadline& d, Locks& locks) {
  std::string dir = g.state_dir + "/locks";
  if (auto s = app.host.fs.make_dirs(dir, 0700); !s) return s;
  auto l = app.host.locker.lock(dir + "/vm." + vm + ".lock", d);
  if (!l) return l.error();
  locks.held.push_back(std::move(*l));
  std::sort(devices.begin(), devices.end());
  for (const auto& a : devices) {
    auto dl = app.host.locker.lock(dir + "/" + a + ".lock", d);
    if (!dl) {
      Error e = dl.error();
      e.what = a + " is busy: another gpuhook event holds it";
      return e;
    }
    locks.held.push_back(std::move(*dl));
  }
  return Status::success();
}

std::vector<std::string> journal_devices(const Journal& j) {
  std::vector<std::string> v;
  for (const auto& e : j.entries)
    if (e.kind == "claim" || e.kind == "pci.vfio") {
      auto it = e.fields.find("address");
      if (it != e.fields.end() && PciAddress::parse(it->second) && std::find(v.begin(), v.end(), it->second) == v.end())
        v.push_back(it->second);
    }
  return v;
}

// The lines virsh shows after "Hook script execution failed: ... unexpected exit status 1:".
std::string refusal_text(const std::string& vm, const std::string& op, const Error& e, bool changed, bool rolled_back,
                         const std::string& log_path) {
  std::string s = "gpuhook: cannot " + op + " VM " + vm + ": " + e.message() + "\n";
  if (!e.hint.empty()) s += "gpuhook: what to do: " + e.hint + "\n";
  if (!changed) s += "gpuhook: nothing on the host was changed.";
  else if (rolled_back) s += "gpuhook: every change was rolled back.";
  else s += "gpuhook: rollback was INCOMPLETE: run `gpuhook restore " + vm + "` and see the log.";
  s += " Log: " + log_path + "\n";
  return s;
}

// Returns the exit code; `summary` says how it ended, for the event's last log line.
int run_phase(AppContext& app, const GlobalConfig& g, Log& log, const Invocation& inv, const Profile& profile,
              std::string_view xml, std::string& err, const std::string& log_path, std::string& summary) {
  const std::string& vm = inv.vm;
  Deadline deadline(app.host.clock, profile.timeouts.event_ms);
  const std::string phase = inv.op;

  // start and started: their steps come from the profile; the host was checked at prepare.
  Plan plan;
  if (phase != "prepare") {
    phase_steps(plan, phase) = later_phase_steps(profile, phase);
  } else {
    std::optional<DomainInfo> dom;
    if (!xml.empty()) {
      auto d = parse_domain_xml(xml);
      if (d) dom = *d;
      else log.warn("domain XML on stdin unreadable (" + d.error().message() + "): managed='no' hostdevs not known");
    }
    plan = make_plan(app.host, profile, dom ? &*dom : nullptr, vm);
    for (const auto& n : plan.notes) log.info("note: " + n);
    if (!plan.refusals.empty()) {
      for (const auto& r : plan.refusals) {
        log.error("refused: " + r.message());
        if (!r.hint.empty()) log.error("hint: " + r.hint);
      }
      summary = "refused, nothing changed";
      err = refusal_text(vm, phase, plan.refusals.front(), false, true, log_path);
      if (plan.refusals.size() > 1)
        err.insert(err.find('\n') + 1, "gpuhook: and " + std::to_string(plan.refusals.size() - 1) +
                                           " more problem(s), see the log\n");
      return 1;
    }
  }
  StepList& steps = phase_steps(plan, phase);
  if (steps.empty()) {
    summary = "nothing to do";
    return 0;
  }
  std::vector<std::string> lock_devices = phase == "prepare" ? plan.devices : std::vector<std::string>{};
  Locks locks;
  if (auto s = take_locks(app, g, vm, lock_devices, deadline, locks); !s) {
    log.error(s.error().message());
    summary = "refused, nothing changed";
    err = refusal_text(vm, phase, s.error(), false, true, log_path);
    return 1;
  }
  JournalStore store(app.host.fs, g.state_dir);
  StepContext ctx{app.host, log, deadline, vm, profile.timeouts, g.state_dir};
  Engine engine(ctx, store, app.fault);
  log.info(phase + ": " + std::to_string(steps.size()) + " step(s), devices: " +
           [&] {
             std::string s;
             for (const auto& a : plan.devices) s += (s.empty() ? "" : " ") + a;
             return s;
           }());
  RunOutcome out = engine.apply(steps, phase);
  if (out.ok) {
    summary = "ok, " + std::to_string(out.applied) + " step(s)";
    return 0;
  }
  summary = !out.touched ? "refused, nothing changed"
            : out.rolled_back ? "FAILED, rolled back"
                              : "FAILED, rollback INCOMPLETE (journal kept)";
  err = refusal_text(vm, phase, out.error, out.touched, out.rolled_back, log_path);
  return 1;
}

int run_release(AppContext& app, const GlobalConfig& g, Log& log, const std::string& vm, Millis event_ms) {
  Deadline deadline(app.host.clock, event_ms);
  JournalStore store(app.host.fs, g.state_dir);
  auto j = store.load(vm);
  if (j && j->entries.empty() && j->problems.empty() && !store.exists(vm)) {
    log.info("nothing to restore: no journal");
    return 0;  // the usual release after a refused prepare: touch nothing, create nothing
  }
  std::vector<std::string> devices = j ? journal_devices(*j) : std::vector<std::string>{};
  Locks locks;
  if (auto s = take_locks(app, g, vm, devices, deadline, locks); !s) {
    log.error("release without locks: " + s.error().message());  // restoring beats waiting
  }
  Timeouts t = g.timeouts;
  t.event_ms = event_ms;
  StepContext ctx{app.host, log, deadline, vm, t, g.state_dir};
  Engine engine(ctx, store, app.fault);
  RunOutcome out = engine.release();
  if (!out.ok) {
    log.error("release incomplete: " + out.error.message());
    if (!out.error.hint.empty()) log.error("hint: " + out.error.hint);
    log.error("the journal " + store.path(vm) + " keeps what is left; run `gpuhook restore " + vm + "` once fixed");
  }
  return out.ok ? 0 : 1;
}

}  // namespace

int run_hook_event(AppContext& app, const Invocation& inv, std::string_view xml, std::string& err) {
  const std::string& vm = inv.vm;
  // 1. Is this VM ours?
  if (!has_profile(app.host.fs, vm)) return 0;
  const std::string& op = inv.op;
  bool refusable = op == "prepare" || op == "start" || op == "started";

  // 2. Global config and log.
  ConfigErrors gerrs;
  auto gr = load_global(app.host.fs, kGlobalConfig, &gerrs);
  GlobalConfig g = gr ? *gr : GlobalConfig{};
  if (app.arm_watchdog) app.arm_watchdog(g.timeouts.event_ms);
  std::string tag = "[" + vm + " " + op + " " + std::to_string(app.host.signals.self_pid()) + "] ";
  std::string log_problem;
  auto log = app.open_log(g, tag, &log_problem);
  std::string log_path = g.log_dir + "/gpuhook.log";
  Millis t0 = app.host.clock.now_ms();
  log->info("event " + op + " " + inv.sub + " " + inv.extra + " (vm " + vm + ")");
  if (!log_problem.empty()) log->warn("log file: " + log_problem);
  if (!gr) {
    for (const auto& l : gerrs.lines) log->error(l);
    if (refusable) {
      err = "gpuhook: the global config is invalid, VM " + vm + " not started:\n";
      for (size_t i = 0; i < gerrs.lines.size() && i < 5; ++i) err += "  " + gerrs.lines[i] + "\n";
      err += "gpuhook: nothing on the host was changed. Log: " + log_path + "\n";
      return 1;
    }
  }

  int rc = 0;
  std::string summary;
  if (op == "prepare" || op == "start" || op == "started") {
    ConfigErrors perrs;
    auto prof = load_profile(app.host.fs, profile_path(vm), g.timeouts, &perrs);
    if (!prof) {
      for (const auto& l : perrs.lines) log->error(l);
      err = "gpuhook: the profile of VM " + vm + " is invalid, not starting it:\n";
      for (size_t i = 0; i < perrs.lines.size() && i < 8; ++i) err += "  " + perrs.lines[i] + "\n";
      if (perrs.lines.size() > 8) err += "  ... " + std::to_string(perrs.lines.size() - 8) + " more in the log\n";
      err += "gpuhook: nothing on the host was changed. Log: " + log_path + "\n";
      rc = 1;
      summary = "refused, invalid profile, nothing changed";
    } else {
      if (app.arm_watchdog) app.arm_watchdog(prof->timeouts.event_ms);
      rc = run_phase(app, g, *log, inv, *prof, xml, err, log_path, summary);
    }
  } else if (op == "release") {
    Millis ev = g.timeouts.event_ms;
    // The profile may be broken or edited; release uses only its timeouts, when readable.
    if (auto prof = load_profile(app.host.fs, profile_path(vm), g.timeouts, nullptr); prof) ev = prof->timeouts.event_ms;
    if (app.arm_watchdog) app.arm_watchdog(ev);
    (void)run_release(app, g, *log, vm, ev);  // libvirt ignores release's status: always 0
    summary = "done";
  } else if (op == "reconnect") {
    Deadline d(app.host.clock, g.timeouts.event_ms);
    JournalStore store(app.host.fs, g.state_dir);
    StepContext ctx{app.host, *log, d, vm, g.timeouts, g.state_dir};
    Engine engine(ctx, store);
    auto diffs = engine.verify();
    for (const auto& dline : diffs) log->warn("reconnect: journal and host differ: " + dline);
    summary = diffs.empty() ? "journal matches the host" : std::to_string(diffs.size()) + " difference(s), VM kept running";
    rc = 0;  // a non-zero exit here would kill the running VM
  } else {
    summary = "nothing to do";
  }
  log->info("event " + op + " " + summary + " in " + std::to_string(app.host.clock.now_ms() - t0) + " ms");
  return rc;
}

}  // namespace gpuhook

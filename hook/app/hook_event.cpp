// The hook path, as a table of contents:
//   1. Is this VM ours?          a profile or a journal (engine/session.h: is_managed); no: exit 0,
//                                touch nothing.
//   2. Global config and log.    a broken global config refuses prepare, never release.
//   3. Dispatch on the operation:
//      prepare           profile -> session (host and VM locks) -> plan -> refuse, or device
//                        locks + apply with journal (rollback on failure)
//      start, started    the phase's steps from the profile, in a session
//      release           session -> undo everything from the journal alone (its own timeouts;
//                        never the profile or the global config) -> never fails
//      reconnect         compare journal and host, log differences; never fails
//      stopped, migrate, restore, ...   nothing to do (log only)
//   4. One summary line in the log; on refusal a few lines on stderr for virsh.
// No exception leaves an event: release and reconnect exit 0 whatever happens, a refusable event
// that throws is refused with the reason.
#include "app/hook_event.h"

#include <algorithm>
#include <exception>

#include "domain/domain_xml.h"
#include "engine/session.h"
#include "plan/planner.h"
#include "steps/steps.h"
#include "sysinfo/pci.h"

namespace gpuhook {

bool has_profile(Fs& fs, const std::string& vm) {
  bool p = false;
  (void)is_managed(fs, vm, &p);
  return p;
}

namespace {

// The lines virsh shows after "Hook script execution failed: ... unexpected exit status 1:".
std::string refusal_text(const std::string& vm, const std::string& op, const Error& e, bool changed, bool rolled_back,
                         const std::string& log_path) {
  std::string s = "gpuhook: cannot " + op + " VM " + vm + ": " + e.message() + "\n";
  if (!e.hint.empty()) s += "gpuhook: what to do: " + e.hint + "\n";
  if (!changed) s += "gpuhook: nothing on the host was changed.";
  else if (rolled_back) s += "gpuhook: every change was rolled back.";
  else s += "gpuhook: rollback was INCOMPLETE: run `gpuhook restore " + vm + "` and see the log.";
  s += " Log: " + log_path + "\n";
  s += "gpuhook: step by step: gpuhook log " + vm + "\n";
  return s;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

// prepare, start, started. Returns the exit code; `summary` says how it ended, for the log.
int run_phase(AppContext& app, Log& log, const Invocation& inv, const Profile& profile, std::string_view xml,
              std::string& err, const std::string& log_path, std::string& summary) {
  const std::string& vm = inv.vm;
  const std::string phase = inv.op;

  // start and started: their steps come from the profile; the host was checked at prepare.
  Plan plan;
  if (phase != "prepare") {
    phase_steps(plan, phase) = later_phase_steps(profile, phase);
    if (phase_steps(plan, phase).empty()) {
      summary = "nothing to do";
      return 0;
    }
  }
  // The session: host and VM locks, then the deadline (the plan is made under the locks, so no
  // other VM's release can change the host between this plan and its steps).
  auto session = Session::open(app.host, vm, {phase, profile.timeouts.event_ms, true});
  if (!session) {
    log.error(session.error().message());
    summary = "refused, nothing changed";
    err = refusal_text(vm, phase, session.error(), false, true, log_path);
    return 1;
  }
  if (app.arm_watchdog) app.arm_watchdog(profile.timeouts.event_ms);
  Deadline deadline(app.host.clock, profile.timeouts.event_ms);

  if (phase == "prepare") {
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
    if (auto s = (*session)->lock_devices(plan.devices); !s) {
      log.error(s.error().message());
      summary = "refused, nothing changed";
      err = refusal_text(vm, phase, s.error(), false, true, log_path);
      return 1;
    }
  }
  StepList& steps = phase_steps(plan, phase);
  if (steps.empty()) {
    summary = "nothing to do";
    return 0;
  }
  StepContext ctx{app.host, log, deadline, vm, profile.timeouts, kStateDir};
  Engine engine(ctx, (*session)->store(), builtin_step_kinds(), app.fault);
  engine.skip_undo = app.skip_undo;
  log.info(phase + ": " + std::to_string(steps.size()) + " step(s), devices: " + join(plan.devices));
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

// Undoes the VM's journal. Depends on nothing a person edits: where the journal is (fixed), how
// long to wait (the journal's own timeouts), what to undo (its records). `lock_wait_ms` only
// bounds the wait for another event's locks.
void run_release(AppContext& app, Log& log, const std::string& vm, Millis lock_wait_ms, std::string& err,
                 std::string& summary) {
  if (!JournalStore(app.host.fs, kStateDir).exists(vm)) {
    log.info("nothing to restore: no journal");
    summary = "done";
    return;  // the usual release after a refused prepare: touch nothing, create nothing
  }
  auto session = Session::open(app.host, vm, {"release", lock_wait_ms, true});
  if (!session) {
    // Two writers of one journal would be worse than waiting: keep it for the next try.
    log.error("release: " + session.error().message() + "; nothing undone, the journal is kept");
    log.error("hint: once that event has ended, run `gpuhook restore " + vm + "`");
    err = "gpuhook: release of VM " + vm + " did not run: " + session.error().message() +
          "\ngpuhook: what to do: `gpuhook restore " + vm + "` once that event has ended\n";
    summary = "NOT DONE (locked), journal kept";
    return;
  }
  JournalStore& store = (*session)->store();
  if (!store.exists(vm)) {
    log.info("nothing to restore: no journal");
    summary = "done";
    return;  // the usual release after a refused prepare: touch nothing, create nothing
  }
  Timeouts t;
  if (auto j = store.load(vm); j) {
    t = timeouts_from(j->timeouts, t);
    if (auto s = (*session)->lock_devices(Session::journal_devices(*j)); !s)
      log.warn("release: " + s.error().message());  // the host lock is ours: nobody changes the host meanwhile
  }
  if (app.arm_watchdog) app.arm_watchdog(t.event_ms);
  Deadline deadline(app.host.clock, t.event_ms);
  StepContext ctx{app.host, log, deadline, vm, t, kStateDir};
  Engine engine(ctx, store, builtin_step_kinds(), app.fault);
  engine.skip_undo = app.skip_undo;
  RunOutcome out = engine.release();
  // Modules gpuhook loaded for a VM that has gone while another VM used them: the last one out
  // unloads them (still under the host lock).
  (void)release_host_modules(ctx);
  if (!out.ok) {
    log.error("release incomplete: " + out.error.message());
    if (!out.error.hint.empty()) log.error("hint: " + out.error.hint);
    log.error("the journal " + store.path(vm) + " keeps what is left; run `gpuhook restore " + vm + "` once fixed");
    err = "gpuhook: release of VM " + vm + " incomplete: " + out.error.message() + "\n";
    if (!out.error.hint.empty()) err += "gpuhook: what to do: " + out.error.hint + "\n";
    summary = "INCOMPLETE, journal kept";
  } else {
    summary = out.gone.empty() ? "done" : "done (" + std::to_string(out.gone.size()) + " step(s) gone until reboot)";
  }
}

void run_reconnect(AppContext& app, Log& log, const std::string& vm, Millis wait_ms, std::string& summary) {
  auto session = Session::open(app.host, vm, {"reconnect", wait_ms, false});
  if (!session) {
    log.warn("reconnect: " + session.error().message() + "; journal not compared");
    summary = "not compared (locked), VM kept running";
    return;
  }
  Timeouts t;
  Deadline d(app.host.clock, t.event_ms);
  StepContext ctx{app.host, log, d, vm, t, kStateDir};
  Engine engine(ctx, (*session)->store(), builtin_step_kinds());
  auto diffs = engine.verify();
  for (const auto& dline : diffs) log.warn("reconnect: journal and host differ: " + dline);
  summary = diffs.empty() ? "journal matches the host" : std::to_string(diffs.size()) + " difference(s), VM kept running";
}

int run_event(AppContext& app, const Invocation& inv, std::string_view xml, std::string& err, bool profile_file,
              std::string& summary, Log*& log_out, std::unique_ptr<Log>& log_holder, std::string& log_path) {
  const std::string& vm = inv.vm;
  const std::string& op = inv.op;
  bool refusable = op == "prepare" || op == "start" || op == "started";

  // 2. Global config and log. Release and reconnect use the config for the log only.
  ConfigErrors gerrs;
  auto gr = load_global(app.host.fs, kGlobalConfig, &gerrs);
  GlobalConfig g = gr ? *gr : GlobalConfig{};
  if (app.arm_watchdog) app.arm_watchdog(2 * g.timeouts.event_ms);  // lock wait + event; re-armed once locked
  std::string tag = "[" + vm + " " + op + " " + std::to_string(app.host.signals.self_pid()) + "] ";
  std::string log_problem;
  log_holder = app.open_log(g, tag, &log_problem);
  log_out = log_holder.get();
  Log& log = *log_holder;
  log_path = g.log_dir + "/gpuhook.log";
  log.info("event " + op + " " + inv.sub + " " + inv.extra + " (vm " + vm + ")");
  if (!log_problem.empty()) log.warn("log file: " + log_problem);
  if (!gr) {
    for (const auto& l : gerrs.lines) log.error(l);
    if (refusable) {
      err = "gpuhook: the global config is invalid, VM " + vm + " not started:\n";
      for (size_t i = 0; i < gerrs.lines.size() && i < 5; ++i) err += "  " + gerrs.lines[i] + "\n";
      err += "gpuhook: nothing on the host was changed. Log: " + log_path + "\n";
      summary = "refused, invalid global config, nothing changed";
      return 1;
    }
    log.warn("the global config is invalid; " + op + " goes on from the journal alone");
  }

  // 3. Dispatch.
  if (refusable) {
    if (!profile_file) {
      // A journal without a profile: the profile was removed while the VM ran (or a release is
      // still owed). Nothing to start here; release and restore undo the journal.
      log.warn("VM " + vm + " has a journal but no profile: nothing to " + op + "; `gpuhook restore " + vm +
               "` undoes the journal");
      summary = "nothing to do (no profile)";
      return 0;
    }
    ConfigErrors perrs;
    auto prof = load_profile(app.host.fs, profile_path(vm), g.timeouts, &perrs);
    if (!prof) {
      for (const auto& l : perrs.lines) log.error(l);
      err = "gpuhook: the profile of VM " + vm + " is invalid, not starting it:\n";
      for (size_t i = 0; i < perrs.lines.size() && i < 8; ++i) err += "  " + perrs.lines[i] + "\n";
      if (perrs.lines.size() > 8) err += "  ... " + std::to_string(perrs.lines.size() - 8) + " more in the log\n";
      err += "gpuhook: nothing on the host was changed. Log: " + log_path + "\n";
      summary = "refused, invalid profile, nothing changed";
      return 1;
    }
    if (app.arm_watchdog) app.arm_watchdog(2 * prof->timeouts.event_ms);
    return run_phase(app, log, inv, *prof, xml, err, log_path, summary);
  }
  if (op == "release") {
    // libvirt ignores release's status; its stderr goes to libvirtd's log, a few lines when a
    // step could not be undone.
    run_release(app, log, vm, g.timeouts.event_ms, err, summary);
    return 0;
  }
  if (op == "reconnect") {
    run_reconnect(app, log, vm, g.timeouts.event_ms, summary);
    return 0;  // a non-zero exit here would kill the running VM
  }
  summary = "nothing to do";
  return 0;
}

}  // namespace

int run_hook_event(AppContext& app, const Invocation& inv, std::string_view xml, std::string& err) {
  // 1. Is this VM ours?
  bool profile_file = false;
  if (!is_managed(app.host.fs, inv.vm, &profile_file)) return 0;
  bool refusable = inv.op == "prepare" || inv.op == "start" || inv.op == "started";
  std::string summary;
  Log* log = nullptr;
  std::unique_ptr<Log> holder;
  std::string log_path = "/var/log/gpuhook/gpuhook.log";
  Millis t0 = app.host.clock.now_ms();
  int rc = 0;
  try {
    rc = run_event(app, inv, xml, err, profile_file, summary, log, holder, log_path);
  } catch (const std::exception& ex) {
    rc = refusable ? 1 : 0;
    summary = std::string("FAILED: unexpected error: ") + ex.what();
    if (refusable) err = "gpuhook: cannot " + inv.op + " VM " + inv.vm + ": unexpected error: " + ex.what() +
                         "\ngpuhook: the journal keeps what was changed; run `gpuhook restore " + inv.vm +
                         "`. Log: " + log_path + "\n";
  } catch (...) {
    rc = refusable ? 1 : 0;
    summary = "FAILED: unexpected error";
    if (refusable) err = "gpuhook: cannot " + inv.op + " VM " + inv.vm + ": unexpected error; run `gpuhook restore " +
                         inv.vm + "`. Log: " + log_path + "\n";
  }
  // 4. The summary.
  if (log) {
    try {
      log->info("event " + inv.op + " " + summary + " in " + std::to_string(app.host.clock.now_ms() - t0) + " ms");
    } catch (...) {
    }
  }
  return rc;
}

}  // namespace gpuhook

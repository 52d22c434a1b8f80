#include "engine/engine.h"

namespace gpuhook {

namespace {
std::string ms_str(Millis ms) { return std::to_string(ms) + " ms"; }

Status undo_in(StepContext& ctx, const JournalEntry& e) {
  const StepKindInfo* info = find_step_kind(e.kind);
  if (!info) {
    Error err;
    err.what = "cannot undo step " + std::to_string(e.seq) + " of unknown kind '" + e.kind + "'";
    err.hint = "this journal was written by another gpuhook version; restore that step by hand";
    return err;
  }
  return info->undo(ctx, e.fields);
}

// An undo the kernel made impossible (Error::gone): one warning, the step leaves the journal, the
// release counts as complete. A hint already given for an earlier gone step is not repeated.
void log_gone(Log& log, const JournalEntry& e, const Error& err, std::string& last_hint) {
  log.warn("undo " + std::to_string(e.seq) + " " + e.kind + ": cannot be restored until reboot: " + err.what);
  if (!err.hint.empty() && err.hint != last_hint) log.warn("hint: " + err.hint);
  last_hint = err.hint;
}
}  // namespace


RunOutcome Engine::apply(StepList& steps, const std::string& phase) {
  RunOutcome out;
  auto jr = store_.load(ctx_.vm);
  if (!jr) {
    out.ok = false;
    out.error = jr.error();
    return out;
  }
  Journal j = std::move(*jr);
  j.vm = ctx_.vm;
  size_t first_of_phase = j.entries.size();

  auto fault = [&](std::string_view point, int seq, const std::string& kind) {
    if (fault_) fault_(point, seq, kind);
  };

  for (auto& step : steps) {
    Millis t0 = ctx_.host.clock.now_ms();
    Status st;
    int seq = j.next_seq();
    if (ctx_.deadline.expired()) {
      Error e;
      e.what = "the " + phase + " event ran out of time before: " + step->describe();
      e.why = "event deadline of " + ms_str(ctx_.timeouts.event_ms) + " passed";
      e.hint = "raise [timeouts] event in the profile if this host is slow; see the log for the slow step";
      e.timed_out = true;
      st = e;
    } else {
      auto rec = step->record(ctx_);
      if (!rec) {
        st = rec.error();
      } else {
        JournalEntry entry;
        entry.seq = seq;
        entry.kind = step->kind();
        entry.phase = phase;
        entry.fields = *rec;
        j.entries.push_back(entry);
        if (auto s = store_.save(j); !s) {
          j.entries.pop_back();  // nothing was changed: the change is never made without its record
          st = s;
        } else {
          fault("before-apply", seq, entry.kind);
          out.touched = true;
          st = step->apply(ctx_, entry.fields);
          if (st) {
            j.entries.back().done = true;
            fault("after-apply", seq, entry.kind);
            if (auto s = store_.save(j); !s) ctx_.log.warn("journal update failed: " + s.error().message());
          }
        }
      }
    }
    Millis dt = ctx_.host.clock.now_ms() - t0;
    if (st) {
      ++out.applied;
      ctx_.log.info("step " + std::to_string(seq) + " ok (" + ms_str(dt) + "): " + step->describe());
      continue;
    }
    // Failure: undo newest first, this step included (it may have changed part of the host).
    out.ok = false;
    out.error = st.error();
    ctx_.log.error("step " + std::to_string(seq) + " FAILED (" + ms_str(dt) + "): " + step->describe() + ": " +
                   st.error().message());
    if (!st.error().hint.empty()) ctx_.log.error("hint: " + st.error().hint);
    ctx_.log.warn("rolling back " + std::to_string(j.entries.size() - first_of_phase) + " step(s) of " + phase);
    // The rollback has a budget of its own: the failure may be the event deadline itself (a step
    // that hung), and undo must still be able to wait for a driver or run modprobe/systemctl.
    Deadline rollback_deadline(ctx_.host.clock, ctx_.timeouts.event_ms);
    StepContext rb{ctx_.host, ctx_.log, rollback_deadline, ctx_.vm, ctx_.timeouts, ctx_.state_dir};
    // Kept in the journal, ascending order: a failed undo, and every older step after it (see release()).
    std::vector<JournalEntry> failed;
    std::string gone_hint;
    for (size_t i = j.entries.size(); i-- > first_of_phase;) {
      const JournalEntry e = j.entries[i];
      fault("before-undo", e.seq, e.kind);
      Status u = undo_in(rb, e);
      if (!u && u.error().gone) {
        log_gone(ctx_.log, e, u.error(), gone_hint);
      } else if (u) {
        ctx_.log.info("undo " + std::to_string(e.seq) + " " + e.kind + " ok");
        if (!failed.empty()) failed.insert(failed.begin(), e);
      } else {
        out.rolled_back = false;
        out.undo_failures.push_back(u.error().message());
        ctx_.log.error("undo " + std::to_string(e.seq) + " " + e.kind + " FAILED: " + u.error().message());
        failed.insert(failed.begin(), e);
      }
      // Keep the journal true after each undo, so that a kill during rollback loses nothing:
      // what is left is the steps not yet undone plus those whose undo failed.
      Journal rest = j;
      rest.entries.resize(i);
      rest.entries.insert(rest.entries.end(), failed.begin(), failed.end());
      if (rest.entries.empty()) (void)store_.remove(ctx_.vm);
      else (void)store_.save(rest);
    }
    return out;
  }
  return out;
}

RunOutcome Engine::release() {
  RunOutcome out;
  auto jr = store_.load(ctx_.vm);
  if (!jr) {
    out.ok = false;
    out.error = jr.error();
    ctx_.log.error(jr.error().message());
    return out;
  }
  Journal j = std::move(*jr);
  for (const auto& p : j.problems) ctx_.log.error("journal " + store_.path(ctx_.vm) + ": " + p);
  if (!j.problems.empty()) {
    out.ok = false;
    out.error.what = "the journal of " + ctx_.vm + " is damaged: " + std::to_string(j.problems.size()) +
                     " line(s) could not be read";
    out.error.hint = "the readable steps were undone; check the host with `gpuhook status` and restore the rest by hand";
  }
  if (j.entries.empty()) {
    if (j.problems.empty()) {
      ctx_.log.info("nothing to restore: no journal");
      (void)store_.remove(ctx_.vm);
    }
    return out;
  }
  ctx_.log.info("restoring " + std::to_string(j.entries.size()) + " journaled step(s)");
  // Kept in the journal, ascending order: each failed undo and, once one failed, every older step
  // too, even when its undo worked. Undo still runs for all of them now (the host gets back what
  // it can: the display manager, the modules), and the next release replays the kept ones in
  // order: an older undo may depend on a newer one (vfio-pci is only unloaded once no function is
  // on it; the GPU only finds its driver again when its module is loaded after its unbind).
  // Undo is idempotent, so replaying a step that was undone is safe.
  std::vector<JournalEntry> failed;
  std::string gone_hint;
  while (!j.entries.empty()) {
    JournalEntry e = j.entries.back();
    Millis t0 = ctx_.host.clock.now_ms();
    if (fault_) fault_("before-undo", e.seq, e.kind);
    Status u = undo_in(ctx_, e);
    Millis dt = ctx_.host.clock.now_ms() - t0;
    j.entries.pop_back();
    if (!u && u.error().gone) {
      log_gone(ctx_.log, e, u.error(), gone_hint);
    } else if (u) {
      ++out.applied;
      ctx_.log.info("undo " + std::to_string(e.seq) + " " + e.kind + " ok (" + ms_str(dt) + ")");
      if (!failed.empty()) failed.insert(failed.begin(), e);
    } else {
      out.ok = false;
      out.rolled_back = false;
      if (out.error.what.empty()) out.error = u.error();
      out.undo_failures.push_back(u.error().message());
      ctx_.log.error("undo " + std::to_string(e.seq) + " " + e.kind + " FAILED (" + ms_str(dt) +
                     "): " + u.error().message());
      if (!u.error().hint.empty()) ctx_.log.error("hint: " + u.error().hint);
      failed.insert(failed.begin(), e);
    }
    Journal rest = j;
    rest.entries.insert(rest.entries.end(), failed.begin(), failed.end());
    rest.problems.clear();
    if (rest.entries.empty() && j.problems.empty()) (void)store_.remove(ctx_.vm);
    else (void)store_.save(rest);
  }
  return out;
}

std::vector<std::string> Engine::verify() {
  std::vector<std::string> diffs;
  auto jr = store_.load(ctx_.vm);
  if (!jr) return {jr.error().message()};
  for (const auto& p : jr->problems) diffs.push_back("journal: " + p);
  for (const auto& e : jr->entries) {
    if (!e.done) {
      diffs.push_back("step " + std::to_string(e.seq) + " " + e.kind + " was never completed");
      continue;
    }
    const StepKindInfo* info = find_step_kind(e.kind);
    if (!info) {
      diffs.push_back("step " + std::to_string(e.seq) + ": unknown kind " + e.kind);
      continue;
    }
    if (info->verify) {
      std::string d = info->verify(ctx_, e.fields);
      if (!d.empty()) diffs.push_back("step " + std::to_string(e.seq) + " " + e.kind + ": " + d);
    }
  }
  return diffs;
}

}  // namespace gpuhook

#include "engine/engine.h"

#include <exception>
#include <new>

namespace gpuhook {

namespace {
std::string ms_str(Millis ms) { return std::to_string(ms) + " ms"; }

// Runs fn; anything it throws becomes an Error naming what was being done.
template <class F>
Status guarded(const std::string& doing, F&& fn) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    Error e;
    e.what = doing + " failed";
    e.why = "out of memory";
    return e;
  } catch (const std::exception& ex) {
    Error e;
    e.what = doing + " failed";
    e.why = ex.what();
    return e;
  } catch (...) {
    Error e;
    e.what = doing + " failed";
    e.why = "unexpected exception";
    return e;
  }
}

std::string field_or(const Record& r, const char* key) {
  auto it = r.find(key);
  return it == r.end() ? std::string("?") : it->second;
}

// The engine's own keys in a step's record, for a write that may still land.
constexpr const char* kPendingPid = "pending_pid";
constexpr const char* kPendingStart = "pending_start";
}  // namespace

std::string process_start_time(Fs& fs, int pid) { return start_time_of(fs, pid); }

Record timeouts_record(const Timeouts& t) {
  return {{"event", std::to_string(t.event_ms)},     {"unbind", std::to_string(t.unbind_ms)},
          {"command", std::to_string(t.command_ms)}, {"service", std::to_string(t.service_ms)},
          {"terminate", std::to_string(t.terminate_ms)}};
}

Timeouts timeouts_from(const Record& r, Timeouts t) {
  auto get = [&](const char* k, Millis& out) {
    auto it = r.find(k);
    if (it == r.end() || it->second.empty() || it->second.size() > 9) return;
    Millis v = 0;
    for (char c : it->second) {
      if (c < '0' || c > '9') return;
      v = v * 10 + (c - '0');
    }
    if (v >= 100 && v <= 3600000) out = v;  // the loader's range, in ms; anything else: the fallback
  };
  get("event", t.event_ms);
  get("unbind", t.unbind_ms);
  get("command", t.command_ms);
  get("service", t.service_ms);
  get("terminate", t.terminate_ms);
  return t;
}

// The VM's journal through the store; whatever the parse throws (a hostile file) is an error.
Status Engine::load_journal(Journal& j) {
  return guarded("reading the journal", [&]() -> Status {
    auto jr = store_.load(ctx_.vm);
    if (!jr) return jr.error();
    j = std::move(*jr);
    return Status::success();
  });
}

Status Engine::undo_one(StepContext& ctx, const JournalEntry& e) {
  auto it = kinds_.find(e.kind);
  if (it == kinds_.end()) {
    Error err;
    err.what = "cannot undo step " + std::to_string(e.seq) + " of unknown kind '" + e.kind + "'";
    err.hint = "this journal was written by another gpuhook version; restore that step by hand (README: The journal)";
    return err;
  }
  if (skip_undo && skip_undo(e.kind)) {
    ctx.log.warn("undo " + std::to_string(e.seq) + " " + e.kind + " skipped: GPUHOOK_FAULT=skip-undo (deliberately broken test build)");
    return Status::success();
  }
  return guarded("undo of step " + std::to_string(e.seq) + " " + e.kind, [&] { return it->second.undo(ctx, e.fields); });
}

// An undo whose guarded write was still in the kernel at its deadline: the entry remembers that
// writer too (the newest one), so it stays journaled until that write can no longer land.
void Engine::note_pending(JournalEntry& e, const Status& u) {
  if (u || !u.error().may_complete) return;
  int pid = u.error().pending_pid;
  e.fields[kPendingPid] = std::to_string(pid);
  e.fields[kPendingStart] = process_start_time(ctx_.host.fs, pid);
}

// A write of this step was still in the kernel at its deadline, and its writer still exists.
bool Engine::writer_alive(const JournalEntry& e) {
  auto p = e.fields.find(kPendingPid);
  if (p == e.fields.end()) return false;
  int pid = 0;
  for (char c : p->second) pid = (c >= '0' && c <= '9' && pid < 100000000) ? pid * 10 + (c - '0') : -1;
  if (pid <= 0) return false;
  std::string start = process_start_time(ctx_.host.fs, pid);
  auto s = e.fields.find(kPendingStart);
  return !start.empty() && s != e.fields.end() && s->second == start;
}

RunOutcome Engine::apply(StepList& steps, const std::string& phase) {
  RunOutcome out;
  Journal j;
  {
    Status ls = load_journal(j);
    if (!ls) {
      out.ok = false;
      out.error = ls.error();
      return out;
    }
  }
  if (!j.version_known() || !j.problems.empty()) {
    // Never add steps to a journal this gpuhook cannot fully read: release could not undo them all.
    out.ok = false;
    out.error.what = "the journal " + store_.path(ctx_.vm) + " cannot be read completely";
    out.error.why = j.problems.empty() ? "unknown version" : j.problems.front();
    out.error.hint = "check the host (`gpuhook status`), restore what it lists by hand (README: The journal), "
                     "then remove that file";
    return out;
  }
  j.vm = ctx_.vm;
  if (phase == "prepare" || j.timeouts.empty()) j.timeouts = timeouts_record(ctx_.timeouts);
  size_t first_of_phase = j.entries.size();

  auto fault = [&](std::string_view point, int seq, const std::string& kind) {
    if (fault_) fault_(point, seq, kind);
  };

  for (auto& step : steps) {
    Millis t0 = ctx_.host.clock.now_ms();
    Status st;
    int seq = j.next_seq();
    std::string kind = step->kind();
    if (ctx_.deadline.expired()) {
      Error e;
      e.what = "the " + phase + " event ran out of time before: " + step->describe();
      e.why = "event deadline of " + ms_str(ctx_.timeouts.event_ms) + " passed";
      e.hint = "raise [timeouts] event in the profile if this host is slow; see the log for the slow step";
      e.timed_out = true;
      st = e;
    } else {
      Record rec;
      st = guarded("reading the state for: " + step->describe(), [&]() -> Status {
        auto r = step->record(ctx_);
        if (!r) return r.error();
        rec = std::move(*r);
        return Status::success();
      });
      if (st) {
        JournalEntry entry;
        entry.seq = seq;
        entry.kind = kind;
        entry.phase = phase;
        entry.fields = rec;
        j.entries.push_back(entry);
        if (auto s = store_.save(j); !s) {
          j.entries.pop_back();  // nothing was changed: the change is never made without its record
          st = s;
        } else {
          fault("before-apply", seq, kind);
          out.touched = true;
          st = guarded(step->describe(), [&] { return step->apply(ctx_, rec); });
          if (st) {
            j.entries.back().done = true;
            fault("after-apply", seq, kind);
            if (auto s = store_.save(j); !s) ctx_.log.warn("journal update failed: " + s.error().message());
          } else if (st.error().may_complete) {
            // The write may still land after we return: the entry must outlive its writer.
            auto& f = j.entries.back().fields;
            int pid = st.error().pending_pid;
            f[kPendingPid] = std::to_string(pid);
            f[kPendingStart] = process_start_time(ctx_.host.fs, pid);
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
    StepContext rb{ctx_.host, ctx_.log, rollback_deadline, ctx_.vm, ctx_.timeouts, ctx_.state_dir, true};
    // Kept in the journal, ascending order: a failed undo, and every older step after it (see release()).
    std::vector<JournalEntry> kept;
    std::string gone_hint;
    for (size_t i = j.entries.size(); i-- > first_of_phase;) {
      JournalEntry e = j.entries[i];
      fault("before-undo", e.seq, e.kind);
      Status u = undo_one(rb, e);
      note_pending(e, u);
      bool pending = writer_alive(e);
      if (u && !pending) {
        ctx_.log.info("undo " + std::to_string(e.seq) + " " + e.kind + " ok");
        if (!kept.empty()) kept.insert(kept.begin(), e);
      } else if (!u && u.error().gone) {
        out.gone.push_back(u.error().message());
        ctx_.log.warn("undo " + std::to_string(e.seq) + " " + e.kind + ": cannot be restored until reboot: " +
                      u.error().message());
        // One hint for several objects gone for the same reason (efi-framebuffer.0 and its console).
        if (!u.error().hint.empty() && u.error().hint != gone_hint) ctx_.log.warn("hint: " + u.error().hint);
        gone_hint = u.error().hint;
        // Dropped even after a failed newer undo: replaying it could only say the same again.
      } else {
        out.rolled_back = false;
        if (pending) {
          out.pending.push_back(e.kind);
          ctx_.log.error("undo " + std::to_string(e.seq) + " " + e.kind + " kept in the journal: a write of it is still "
                         "in the kernel (process " + field_or(e.fields, kPendingPid) + "); it may land later");
        } else {
          out.undo_failures.push_back(u.error().message());
          ctx_.log.error("undo " + std::to_string(e.seq) + " " + e.kind + " FAILED: " + u.error().message());
        }
        kept.insert(kept.begin(), e);
      }
      // Keep the journal true after each undo, so that a kill during rollback loses nothing:
      // what is left is the steps not yet undone plus those whose undo failed.
      Journal rest = j;
      rest.entries.resize(i);
      rest.entries.insert(rest.entries.end(), kept.begin(), kept.end());
      if (rest.entries.empty() && rest.damaged.empty()) (void)store_.remove(ctx_.vm);
      else (void)store_.save(rest);
    }
    return out;
  }
  return out;
}

RunOutcome Engine::release() {
  RunOutcome out;
  Journal j;
  Status ls = load_journal(j);
  if (!ls) {
    out.ok = false;
    out.error = ls.error();
    ctx_.log.error(ls.error().message());
    return out;
  }
  for (const auto& p : j.problems) ctx_.log.error("journal " + store_.path(ctx_.vm) + ": " + p);
  if (!j.version_known()) {
    out.ok = false;
    out.rolled_back = false;
    out.error.what = "the journal " + store_.path(ctx_.vm) + " is of a version this gpuhook does not know";
    out.error.why = "undoing steps whose meaning may have changed could do harm; nothing was undone";
    out.error.hint = "restore with the gpuhook that wrote it, or by hand (README: The journal, recovering by hand), "
                     "then remove the file";
    ctx_.log.error(out.error.message());
    ctx_.log.error("hint: " + out.error.hint);
    return out;
  }
  if (!j.problems.empty()) {
    out.ok = false;
    out.error.what = "the journal of " + ctx_.vm + " is damaged: " + std::to_string(j.problems.size()) +
                     " line(s) could not be read";
    out.error.hint = "the readable steps were undone; the unreadable lines are kept in " + store_.path(ctx_.vm) +
                     " as 'damaged': check them against the host (`gpuhook status`), restore by hand, then remove "
                     "the file";
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
  std::vector<JournalEntry> kept, undone;
  std::string gone_hint;
  while (!j.entries.empty()) {
    JournalEntry e = j.entries.back();
    Millis t0 = ctx_.host.clock.now_ms();
    if (fault_) fault_("before-undo", e.seq, e.kind);
    Status u = undo_one(ctx_, e);
    if (u) undone.push_back(e);
    note_pending(e, u);
    bool pending = writer_alive(e);
    Millis dt = ctx_.host.clock.now_ms() - t0;
    j.entries.pop_back();
    if (u && !pending) {
      ++out.applied;
      ctx_.log.info("undo " + std::to_string(e.seq) + " " + e.kind + " ok (" + ms_str(dt) + ")");
      if (!kept.empty()) kept.insert(kept.begin(), e);
    } else if (!u && u.error().gone) {
      ++out.applied;
      out.gone.push_back(u.error().message());
      ctx_.log.warn("undo " + std::to_string(e.seq) + " " + e.kind + ": cannot be restored until reboot: " +
                    u.error().message());
      // One hint for several objects gone for the same reason (efi-framebuffer.0 and its console).
      if (!u.error().hint.empty() && u.error().hint != gone_hint) ctx_.log.warn("hint: " + u.error().hint);
      gone_hint = u.error().hint;
      // Dropped even after a failed newer undo: replaying it could only say the same again.
    } else {
      out.ok = false;
      out.rolled_back = false;
      if (pending) {
        out.pending.push_back(e.kind);
        Error pe;
        pe.what = "step " + std::to_string(e.seq) + " " + e.kind + " waits for a write still in the kernel (process " +
                  field_or(e.fields, kPendingPid) + ")";
        pe.hint = "it may land later; once that process is gone, run `gpuhook restore " + ctx_.vm + "`";
        if (out.error.what.empty()) out.error = pe;
        ctx_.log.error("undo " + std::to_string(e.seq) + " " + e.kind + " kept (" + ms_str(dt) + "): " + pe.what);
      } else {
        if (out.error.what.empty()) out.error = u.error();
        out.undo_failures.push_back(u.error().message());
        ctx_.log.error("undo " + std::to_string(e.seq) + " " + e.kind + " FAILED (" + ms_str(dt) +
                       "): " + u.error().message());
        if (!u.error().hint.empty()) ctx_.log.error("hint: " + u.error().hint);
      }
      kept.insert(kept.begin(), e);
    }
    Journal rest = j;
    rest.entries.insert(rest.entries.end(), kept.begin(), kept.end());
    rest.problems.clear();
    // A journal that had problems is rewritten (its readable steps undone), never removed by
    // this release: a person looks at what could not be read first.
    if (rest.entries.empty() && rest.damaged.empty() && j.problems.empty()) (void)store_.remove(ctx_.vm);
    else (void)store_.save(rest);
  }
  // Verification: everything was undone; is the host back as the journal says it was? Oldest
  // step first (the services, which wait for the drivers, come after them in the list).
  if (out.ok && kept.empty()) {
    out.verified = true;
    for (auto it = undone.rbegin(); it != undone.rend(); ++it) {
      auto k = kinds_.find(it->kind);
      if (k == kinds_.end() || !k->second.restored) continue;
      std::string d;
      Status s = guarded("checking step " + std::to_string(it->seq), [&] {
        d = k->second.restored(ctx_, it->fields);
        return Status::success();
      });
      if (!s) d = s.error().message();
      if (!d.empty()) out.not_back.push_back(d);
    }
    for (const auto& d : out.not_back) ctx_.log.warn("release check: NOT BACK: " + d);
    if (out.not_back.empty()) {
      ctx_.log.info("release check: the host is back as the journal says it was");
      (void)ctx_.host.fs.remove(report_path(ctx_.vm));
    } else {
      std::string text = "# gpuhook: what the last release of " + ctx_.vm + " found not back (" +
                         ctx_.host.clock.wall_time() + "); removed by the next clean release\n";
      for (const auto& d : out.not_back) text += d + "\n";
      (void)ctx_.host.fs.write_atomic(report_path(ctx_.vm), text, 0600);
    }
  }
  return out;
}

std::vector<std::string> Engine::verify() {
  std::vector<std::string> diffs;
  Journal j;
  Status ls = load_journal(j);
  if (!ls) return {ls.error().message()};
  for (const auto& p : j.problems) diffs.push_back("journal: " + p);
  for (const auto& e : j.entries) {
    if (!e.done) {
      if (writer_alive(e))
        diffs.push_back("step " + std::to_string(e.seq) + " " + e.kind + ": a write is still in the kernel (process " +
                        field_or(e.fields, kPendingPid) + ")");
      else
        diffs.push_back("step " + std::to_string(e.seq) + " " + e.kind + " was never completed");
      continue;
    }
    auto it = kinds_.find(e.kind);
    if (it == kinds_.end()) {
      diffs.push_back("step " + std::to_string(e.seq) + ": unknown kind " + e.kind);
      continue;
    }
    if (it->second.verify) {
      std::string d;
      Status s = guarded("checking step " + std::to_string(e.seq), [&] {
        d = it->second.verify(ctx_, e.fields);
        return Status::success();
      });
      if (!s) d = s.error().message();
      if (!d.empty()) diffs.push_back("step " + std::to_string(e.seq) + " " + e.kind + ": " + d);
    }
  }
  return diffs;
}

}  // namespace gpuhook

// The engine: applies a plan of steps with a journal, rolls back on failure, undoes from the
// journal on release, and compares the journal with the host on reconnect. It runs inside a
// Session (engine/session.h), which holds the locks and owns the journal's store.
//
// What no step can break:
//   - nothing escapes as an exception: a step that throws (a program that cannot be launched, a
//     bad_alloc on a hostile journal) is an error of that one step;
//   - an undo that fails keeps its step (and every older one) in the journal for the next try,
//     and release goes on with the next undo;
//   - an undo the kernel made impossible (Error::gone) is logged once and dropped;
//   - a step whose guarded write was still in the kernel at its deadline (Error::may_complete)
//     keeps its journal entry while that writer lives: the write may still land, so the journal
//     is never deleted under it; its undo checks the real state when run again;
//   - a journal of an unknown version is not undone automatically.
#pragma once
#include <functional>
#include <string>
#include <string_view>

#include "engine/journal.h"
#include "engine/step.h"

namespace gpuhook {

// Test seam: called at named points ("before-apply", "after-apply", "before-undo") with the step
// number. Tests throw from it to simulate a killed hook; test builds of the binary raise SIGKILL.
using FaultHook = std::function<void(std::string_view point, int seq, const std::string& kind)>;
// Test seam: true for a step kind whose undo is skipped as if it had worked (release and rollback
// log it and go on): a deliberately broken release for detector tests (GPUHOOK_FAULT=skip-undo:<kind>).
using SkipUndoHook = std::function<bool(const std::string& kind)>;

struct RunOutcome {
  bool ok = true;
  Error error;                  // first failure, when !ok
  int applied = 0;              // steps applied
  bool touched = false;         // a step's apply ran (the host may have changed)
  bool rolled_back = true;      // every applied step was undone after a failure
  std::vector<std::string> undo_failures;
  std::vector<std::string> gone;     // undos the kernel made impossible until reboot (logged, dropped)
  std::vector<std::string> pending;  // steps kept because a write of theirs may still land
  // release: what the host still lacks after every undo succeeded (release's verification);
  // also written to /run/gpuhook/<vm>.release for `gpuhook status`, removed when clean.
  std::vector<std::string> not_back;
  bool verified = false;             // the verification ran (everything was undone)
};

class Engine {
 public:
  Engine(StepContext& ctx, JournalStore& store, const StepRegistry& kinds, FaultHook fault = {})
      : ctx_(ctx), store_(store), kinds_(kinds), fault_(std::move(fault)) {}

  // Journals and applies each step in order. On the first failure: undoes this step and every
  // earlier one of this phase, newest first; the journal keeps only what could not be undone.
  // `timeouts` (the profile's) are written into the journal for release.
  RunOutcome apply(StepList& steps, const std::string& phase);

  // Undoes every journaled step, newest first, best effort (a failed undo is logged and kept in
  // the journal, the others still run). Removes the journal when everything was undone.
  RunOutcome release();

  // Compares the journal with the host; returns human lines for what differs. Never fails.
  std::vector<std::string> verify();

  // The last release's verification of a VM: what was not back ("" lines: none; no file: clean).
  static std::string report_path(const std::string& vm) { return std::string(kStateDir) + "/" + vm + ".release"; }
  SkipUndoHook skip_undo;  // test seam; empty in production

 private:
  Status undo_one(StepContext& ctx, const JournalEntry& e);
  Status load_journal(Journal& j);
  bool writer_alive(const JournalEntry& e);
  void note_pending(JournalEntry& e, const Status& undo_result);
  StepContext& ctx_;
  JournalStore& store_;
  const StepRegistry& kinds_;
  FaultHook fault_;
};

// The start time (clock ticks after boot, field 22 of /proc/<pid>/stat) of a process, "" when
// it does not exist. With the pid it names one process for ever: pids are reused, start times
// of a reused pid differ.
std::string process_start_time(Fs& fs, int pid);

// Timeouts written into the journal at prepare, and read back by release.
Record timeouts_record(const Timeouts& t);
Timeouts timeouts_from(const Record& r, Timeouts fallback);

}  // namespace gpuhook

// The engine: applies a plan of steps with a journal, rolls back on failure, undoes from the
// journal on release, and compares the journal with the host on reconnect.
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

struct RunOutcome {
  bool ok = true;
  Error error;                  // first failure, when !ok
  int applied = 0;              // steps applied
  bool touched = false;         // a step's apply ran (the host may have changed)
  bool rolled_back = true;      // every applied step was undone after a failure
  std::vector<std::string> undo_failures;
};

class Engine {
 public:
  Engine(StepContext& ctx, JournalStore& store, FaultHook fault = {})
      : ctx_(ctx), store_(store), fault_(std::move(fault)) {}

  // Journals and applies each step in order. On the first failure: undoes this step and every
  // earlier one of this phase, newest first; the journal keeps only what could not be undone.
  RunOutcome apply(StepList& steps, const std::string& phase);

  // Undoes every journaled step, newest first, best effort (a failed undo is logged and kept in
  // the journal, the others still run). Removes the journal when everything was undone.
  RunOutcome release();

  // Compares the journal with the host; returns human lines for what differs. Never fails.
  std::vector<std::string> verify();

 private:
  StepContext& ctx_;
  JournalStore& store_;
  FaultHook fault_;
};

}  // namespace gpuhook

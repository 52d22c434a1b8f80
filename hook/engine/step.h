// A step: one reversible change to the host. It first reads the state it is about to change
// (record), the engine journals that record, then the step applies the change. Undo is a function
// of the record alone (registered per kind), so release can undo from the journal even when the
// profile has changed or the hook that made the change was killed.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/journal.h"
#include "host/host.h"
#include "host/log.h"
#include "profile/timeouts.h"

namespace gpuhook {

struct StepContext {
  Host& host;
  Log& log;
  const Deadline& deadline;
  const std::string& vm;
  const Timeouts& timeouts;
  std::string state_dir;
  bool rollback = false;  // undoing a failed event's own changes (not a release or restore)
};

class Step {
 public:
  virtual ~Step() = default;
  virtual std::string kind() const = 0;
  // One line for plans and logs: "bind 0000:01:00.0 (nvidia) to vfio-pci".
  virtual std::string describe() const = 0;
  // Reads the state the step will change; changes nothing. The record also carries the step's
  // parameters, because undo sees nothing else.
  virtual Result<Record> record(StepContext& ctx) = 0;
  // Makes the change. If it fails half-way the engine runs undo on this step's record too.
  virtual Status apply(StepContext& ctx, const Record& rec) = 0;
};

using StepList = std::vector<std::unique_ptr<Step>>;

// Undo from a journal record. Must be idempotent: safe when apply never ran, ran half-way, or
// when undo already ran once.
using UndoFn = std::function<Status(StepContext&, const Record&)>;
// Compares a done step's record with the host (reconnect): returns what differs, "" when fine.
using VerifyFn = std::function<std::string(StepContext&, const Record&)>;

// After a release, whether the host is back as the record says it was: "" when it is, else
// what differs and what to run (release's verification; may wait with a bound, e.g. for a
// display manager's main process).
using RestoredFn = std::function<std::string(StepContext&, const Record&)>;

struct StepKindInfo {
  UndoFn undo;
  VerifyFn verify;      // may be empty
  RestoredFn restored;  // may be empty: nothing to check after undo
};

// The kinds of step a journal may name, with their undo and verify: handed to the engine by the
// layer that defines the steps (steps/registry.cpp: builtin_step_kinds()), so the engine never
// depends on the steps.
using StepRegistry = std::map<std::string, StepKindInfo>;

}  // namespace gpuhook

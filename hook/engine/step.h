// A step: one reversible change to the host. It first reads the state it is about to change
// (record), the engine journals that record, then the step applies the change. Undo is a function
// of the record alone (registered per kind), so release can undo from the journal even when the
// profile has changed or the hook that made the change was killed.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/journal.h"
#include "host/host.h"
#include "host/log.h"

namespace gpuhook {

struct Timeouts {
  Millis event_ms = 30000;    // the whole event
  Millis unbind_ms = 10000;   // one driver unbind/probe
  Millis command_ms = 10000;  // one external program
  Millis service_ms = 20000;  // a unit to stop or start
  Millis terminate_ms = 5000; // holders between SIGTERM and SIGKILL
};

struct StepContext {
  Host& host;
  Log& log;
  const Deadline& deadline;
  const std::string& vm;
  const Timeouts& timeouts;
  std::string state_dir;
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

struct StepKindInfo {
  UndoFn undo;
  VerifyFn verify;  // may be empty
};

// Registry of step kinds (filled by steps/registry.cpp).
const StepKindInfo* find_step_kind(const std::string& kind);
std::vector<std::string> step_kinds();

}  // namespace gpuhook

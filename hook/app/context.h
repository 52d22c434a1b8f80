// What a run of gpuhook works with: the host boundary, the root it reads under, the global
// config, and how it logs. Built by main() for real, by tests with fakes.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "engine/engine.h"
#include "host/host.h"
#include "host/log.h"
#include "profile/profile.h"

namespace gpuhook {

struct AppContext {
  Host host;
  std::string root = "/";   // for messages and for the log file location
  // Opens the log for an event ("[vm op pid] " prefix); tests return a MemoryLog.
  std::function<std::unique_ptr<Log>(const GlobalConfig&, const std::string& tag, std::string* problem)> open_log;
  FaultHook fault;          // test seam; empty in production
  // Arms the last-resort watchdog once the event's budget is known (real: alarm(2)).
  std::function<void(Millis budget_ms)> arm_watchdog;
  SkipUndoHook skip_undo = {};  // test seam (GPUHOOK_FAULT=skip-undo:<kind>); empty in production
};

}  // namespace gpuhook

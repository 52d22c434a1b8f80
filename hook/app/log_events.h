// Reading gpuhook's own log file back (`gpuhook log`): lines as log_spdlog.cpp writes them,
//   2026-11-29T17:00:00.123+0000 info  [win11 prepare 1234] step 1 ok (10 ms): claim 0000:01:00.0 for VM win11
// grouped into events: the lines of one hook run ("[vm op pid] "), from "event OP SUB EXTRA (vm VM)"
// to the summary "event OP SUMMARY in N ms" that hook_event.cpp writes last. Pure functions (tested
// on log text produced by real events).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace gpuhook {

struct LogLine {
  std::string time;     // as written: 2026-11-29T17:00:00.123+0000
  std::string level;    // debug, info, warning, error, critical
  std::string vm, op;   // from the "[vm op pid] " tag; empty for an untagged line
  long pid = 0;
  std::string message;  // after the tag
};

// False for a line that is not gpuhook's format (kept out of every event).
bool parse_log_line(std::string_view line, LogLine& out);

struct LogStep {
  int n = 0;
  std::string kind;     // undos: the step kind (pci.vfio, ...)
  std::string status;   // ok, FAILED, gone (cannot be restored until reboot), kept
  long ms = -1;         // -1: not logged
  std::string text;     // what the step does, or why it failed
};

struct LogEvent {
  std::string vm, op;
  long pid = 0;
  std::string start, end;  // times of its first and last line
  std::string summary;     // "ok, 5 step(s)", "FAILED, rolled back", "done", ... ("" when unfinished)
  std::string result;      // ok, refused, failed, incomplete, unfinished
  long duration_ms = -1;
  std::vector<LogStep> steps, undos;
  std::string failure;     // the first error line
  std::string hint;        // the first "hint: " line
  int host_restored = -1;  // release and restore: 1 every journaled step undone, 0 not, -1 not a release
  // The release check (engine.cpp, after every undo worked): 1 "the host is back as the journal
  // says it was", 0 "NOT BACK" lines (in not_back), -1 no check ran (nothing to undo, or not a release).
  int host_checked = -1;
  std::vector<std::string> not_back;
  bool nothing_journaled = false;  // "nothing to restore: no journal"
  std::vector<LogLine> lines;
};

// Groups lines (oldest first) into events, in the order they began.
std::vector<LogEvent> group_events(const std::vector<LogLine>& lines);

// The log files under `dir`, oldest first: gpuhook.3.log, gpuhook.2.log, gpuhook.1.log, gpuhook.log
// (spdlog's rotating sink keeps 3).
std::vector<std::string> log_files(const std::string& dir);

}  // namespace gpuhook

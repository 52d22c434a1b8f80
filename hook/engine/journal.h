// The journal: what gpuhook changed on the host for one VM, written before each change.
// One text file per VM, /run/gpuhook/<vm>.journal, replaced atomically on every update (temporary
// file, fsync, rename), so a power cut or SIGKILL leaves either the old or the new version.
//
//   gpuhook-journal 2
//   vm win11
//   timeouts event=30000 unbind=10000 command=10000 service=20000 terminate=5000
//   step 1 claim address=0000:01:00.0 vm=win11
//   done 1
//   step 2 pci.vfio address=0000:01:00.0 driver=nvidia override=
//
// A `step` line is the intent with the previous state, written before the change; `done` follows
// once the change is complete. Undo runs newest first, for every step, done or not (a step may
// have been interrupted half-way). Keys and values are percent-escaped (space, %, =, control
// characters). `timeouts` are the profile's at prepare: release waits by them, never by a profile
// that may have changed since. Version 1 (no timeouts line) is read too; any other version is
// refused for automatic undo. A line that cannot be read is reported and kept in the file as
// `damaged <the line, escaped>`, never silently dropped: the journal stays until a person has
// looked at it.
//
// Where journals live is fixed: kStateDir (/run/gpuhook), never taken from a file a person edits,
// so release finds the journal whatever happened to the profile or the global config.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "host/fs.h"

namespace gpuhook {

using Record = std::map<std::string, std::string>;

struct JournalEntry {
  int seq = 0;
  std::string kind;   // "pci.vfio", "service.stop", ...
  std::string phase;  // "prepare" or "started"
  Record fields;
  bool done = false;
};

inline constexpr const char* kStateDir = "/run/gpuhook";
inline constexpr int kJournalVersion = 2;

struct Journal {
  std::string vm;
  int version = kJournalVersion;      // as read; 1 when the header is missing, -1 when unknown
  std::string header_line;            // an unknown version's header, written back as it was
  std::vector<JournalEntry> entries;
  std::vector<std::string> problems;  // what could not be read (corrupt, truncated, edited file)
  std::vector<std::string> damaged;   // the raw lines behind problems: written back, never dropped
  Record timeouts;                    // event, unbind, command, service, terminate (ms)

  // Automatic undo is only for versions this gpuhook wrote (1 and 2).
  bool version_known() const { return version == 1 || version == 2; }

  int next_seq() const { return entries.empty() ? 1 : entries.back().seq + 1; }
  std::string serialize() const;
  static Journal parse(std::string_view text);  // never throws; unreadable lines go to problems
};

std::string escape_value(std::string_view v);
std::string unescape_value(std::string_view v, bool* ok = nullptr);

// Where the journal of a VM lives, and reading/writing it through Fs.
class JournalStore {
 public:
  JournalStore(Fs& fs, std::string state_dir) : fs_(fs), dir_(std::move(state_dir)) {}
  std::string path(const std::string& vm) const { return dir_ + "/" + vm + ".journal"; }
  const std::string& dir() const { return dir_; }
  bool exists(const std::string& vm) { return fs_.exists(path(vm)); }
  // A missing journal is an empty one; an unreadable one returns an error.
  Result<Journal> load(const std::string& vm);
  Status save(const Journal& j);
  Status remove(const std::string& vm) { return fs_.remove(path(vm)); }
  std::vector<std::string> vms();  // VMs that have a journal

 private:
  Fs& fs_;
  std::string dir_;
};

}  // namespace gpuhook

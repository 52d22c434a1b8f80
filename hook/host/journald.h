// journald's native protocol, without libsystemd (log_journald.cpp is the only place that knows
// it): one datagram of fields per log line to /run/systemd/journal/socket, so that
// `journalctl -t gpuhook GPUHOOK_VM=win11` shows one VM's lines.
//   SYSLOG_IDENTIFIER=gpuhook  PRIORITY=3..7  MESSAGE=[vm op pid] text  SYSLOG_FACILITY=3
//   GPUHOOK_VM=vm  GPUHOOK_EVENT=op  GPUHOOK_PID=pid  GPUHOOK_STEP=N (lines of step N or its undo)
#pragma once
#include <string>
#include <string_view>

#include "host/log.h"

namespace gpuhook {

inline const char* kJournaldSocket = "/run/systemd/journal/socket";

// The fields of a line's tag "[vm op pid] " (the VM name may hold spaces; op and pid do not).
struct JournalTag {
  std::string vm, event, pid;
};
JournalTag parse_journal_tag(std::string_view tag);

// The datagram for one line (tag + message as in the file). A value with a newline is sent in
// the protocol's binary form (KEY\n, 64-bit little-endian length, value, \n).
std::string journald_datagram(Level lvl, const JournalTag& t, std::string_view tag, std::string_view msg);

// A datagram socket to journald. send() never blocks; false when journald did not take the line.
class Journald {
 public:
  explicit Journald(std::string socket_path);
  ~Journald();
  Journald(const Journald&) = delete;
  Journald& operator=(const Journald&) = delete;
  // journald runs: its socket exists (as in sd_booted(): systemd-journald.socket listens there).
  static bool running(const std::string& socket_path);
  bool send(const std::string& datagram);

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace gpuhook

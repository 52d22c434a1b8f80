// Host: the whole effect boundary handed to the logic. Small interfaces, passed in, never global.
#pragma once
#include <memory>
#include <string>

#include "host/clock.h"
#include "host/error.h"
#include "host/fs.h"
#include "host/runner.h"

namespace gpuhook {

// Signals to other processes (terminating the holders of a GPU).
class Signals {
 public:
  virtual ~Signals() = default;
  // kill(2) by pid alone: only for a process of our own (a child we started and have not reaped).
  virtual Status kill(int pid, int sig) = 0;
  // Signals the process with this pid AND this start time (start_time_of: field 22 of
  // /proc/<pid>/stat), never another one that reused the pid: the real one pins the process with
  // a pidfd, checks the start time, and signals through the pidfd. True when it was signalled,
  // false when that process no longer exists (gone, or its pid now names another process).
  virtual Result<bool> signal_process(int pid, const std::string& start_time, int sig) = 0;
  virtual int self_pid() = 0;
};

// Exclusive advisory locks (flock on a file under /run/gpuhook). Held until the handle dies.
class LockHandle {
 public:
  virtual ~LockHandle() = default;
};
class Locker {
 public:
  virtual ~Locker() = default;
  // Err with timed_out when another holder kept it until the deadline.
  virtual Result<std::unique_ptr<LockHandle>> lock(const std::string& path, const Deadline& d) = 0;
};

struct Host {
  Fs& fs;
  Runner& runner;
  Clock& clock;
  Signals& signals;
  Locker& locker;
};

}  // namespace gpuhook

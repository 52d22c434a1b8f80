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
  virtual Status kill(int pid, int sig) = 0;
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

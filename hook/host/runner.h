// Runner: starting programs. argv only, never a shell; stdin from /dev/null; stdout and stderr
// captured (never inherited from libvirtd); a minimal environment; a deadline after which the
// program is killed. The real implementation (process_runner.cpp) is the only user of Boost.Process.
#pragma once
#include <string>
#include <vector>

#include "host/clock.h"
#include "host/error.h"

namespace gpuhook {

struct RunResult {
  int exit_code = -1;      // valid when !signaled && !timed_out
  bool signaled = false;
  bool timed_out = false;  // killed at the deadline
  std::string out;
  std::string err;
  bool success() const { return !signaled && !timed_out && exit_code == 0; }
  // "exit 3: <first line of stderr>" for messages.
  std::string summary() const;
};

// A program that outlives the hook: its own session and process group (setsid), reparented to
// init, stdin /dev/null, stdout and stderr on /dev/null (nothing of libvirtd's), every other
// descriptor closed, run as uid/gid with the supplementary groups given, in `cwd`, with exactly
// `env` (no PATH added: argv[0] must be absolute).
struct DetachedSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  unsigned uid = 0, gid = 0;
  std::vector<unsigned> groups;
  std::string cwd = "/";
};

class Runner {
 public:
  // Starts `spec` detached and returns its pid once it has exec'd (an exec failure is an Error).
  // A Runner that cannot says so.
  virtual Result<int> spawn_detached(const DetachedSpec& spec) {
    Error e;
    e.what = "cannot start " + (spec.argv.empty() ? std::string("?") : spec.argv[0]) + " detached";
    e.why = "this runner cannot start detached programs";
    return e;
  }
  virtual ~Runner() = default;
  // Error only when the program could not be started at all (not found, not executable).
  virtual Result<RunResult> run(const std::vector<std::string>& argv, const Deadline& d) = 0;
  // Whether an executable exists in the runner's PATH (or at that absolute path).
  virtual bool has_program(const std::string& name) = 0;
};

std::string format_argv(const std::vector<std::string>& argv);

}  // namespace gpuhook

// A layer between gpuhook and a FakeHost, shared by the fault matrix, the hostile-input tests and
// the fuzz targets. It forwards every call to the fake and:
//   - numbers every effect gpuhook has on the host (a write, a guarded write, a state-file write,
//     a removal, a program run), so a test can find "the k-th effect" and fail or hang exactly it,
//     using the fake kernel's own fault semantics (armed just before that one call);
//   - (a deadline that has already passed starts nothing, in FakeFs/FakeRunner as in RealFs and
//     ProcessRunner: tests/unit/test_contract_host.cpp holds them to it);
//   - optionally checks every path and argv against a safety policy (no "..", only the places
//     gpuhook is meant to write), reporting violations to a callback (the fuzzers abort on them).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "fake/fake_host.h"

namespace gpuhook::test {

struct Effect {
  enum class Type { write, guarded, atomic, remove, run } type;
  std::string target;  // path, or format_argv of the command
};

inline const char* effect_type_name(Effect::Type t) {
  switch (t) {
    case Effect::Type::write: return "write";
    case Effect::Type::guarded: return "write(guarded)";
    case Effect::Type::atomic: return "state write";
    case Effect::Type::remove: return "remove";
    case Effect::Type::run: return "run";
  }
  return "?";
}

// Where gpuhook may write, and what it may run, whatever a journal or profile says.
struct SafetyPolicy {
  std::vector<std::string> write_prefixes = {"/sys/bus/pci/", "/sys/class/vtconsole/", "/sys/bus/platform/drivers/",
                                             "/sys/kernel/debug/vgaswitcheroo/switch", "/proc/acpi/call",
                                             // tuning and Looking Glass (issues 13, 16)
                                             "/dev/shm/", "/sys/kernel/mm/hugepages/", "/sys/devices/system/node/",
                                             "/proc/sys/vm/drop_caches", "/proc/sys/vm/compact_memory", "/sys/fs/cgroup/",
                                             "/sys/devices/system/cpu/"};
  std::vector<std::string> state_prefixes = {"/run/gpuhook/"};
  // Checks a path; "" when fine.
  std::string check_path(const std::string& p, bool state) const {
    if (p.empty() || p[0] != '/') return "relative path '" + p + "'";
    if (p.find("/../") != std::string::npos || p.find("/./") != std::string::npos ||
        (p.size() >= 3 && p.compare(p.size() - 3, 3, "/..") == 0) || p.find("//") != std::string::npos)
      return "path with a '..', '.' or empty component: '" + p + "'";
    if (p.find('\0') != std::string::npos || p.find('\n') != std::string::npos) return "path with a control character";
    for (const auto& pre : state ? state_prefixes : write_prefixes)
      if (p.compare(0, pre.size(), pre) == 0 || p + "/" == pre) return "";
    if (!state)
      for (const auto& pre : state_prefixes)
        if (p.compare(0, pre.size(), pre) == 0) return "";
    return "write outside gpuhook's places: '" + p + "'";
  }
  std::string check_argv(const std::vector<std::string>& a) const {
    if (a.empty()) return "empty argv";
    const std::string& p = a[0];
    if (p == "modprobe") {
      // modprobe NAME | modprobe -r NAME | modprobe --show-depends NAME: the name is never an option.
      size_t i = a.size() > 1 && (a[1] == "-r" || a[1] == "--show-depends") ? 2 : 1;
      if (a.size() != i + 1) return "modprobe with unexpected arguments: " + format_argv(a);
      if (a[i].empty() || a[i][0] == '-' || a[i].find('/') != std::string::npos)
        return "modprobe of a name that is an option or a path: " + format_argv(a);
      return "";
    }
    if (p == "systemd-run") {
      // systemd-run [--user --machine=USER@.host] --unit=UNIT ... -- PROGRAM ...: the unit is never an option
      bool unit = false;
      for (size_t i = 1; i < a.size() && a[i] != "--"; ++i) {
        if (a[i].rfind("--unit=", 0) == 0) unit = a[i].size() > 7 && a[i][7] != '-' && a[i].find('/') == std::string::npos;
        if (a[i].rfind("--machine=", 0) == 0 && (a[i].size() == 10 || a[i][10] == '-'))
          return "systemd-run for a user that is an option: " + format_argv(a);
      }
      return unit ? "" : "systemd-run without a plain --unit=: " + format_argv(a);
    }
    if (p == "systemctl") {
      // systemctl [--user --machine=USER@.host] is-active|stop|start UNIT, systemctl show -p MainPID|AllowedCPUs
      // --value UNIT (release's check), systemctl set-property --runtime UNIT AllowedCPUs=LIST
      std::vector<std::string> b;
      for (const auto& x : a)
        if (x != "--user" && x.rfind("--machine=", 0) != 0) b.push_back(x);
      if (b.size() == 5 && b[1] == "set-property" && b[2] == "--runtime" && b[4].rfind("AllowedCPUs=", 0) == 0) {
        const std::string& u = b[3];
        if (u.empty() || u[0] == '-' || u.find('/') != std::string::npos)
          return "systemctl on a unit name that is an option or a path: " + format_argv(a);
        return "";
      }
      const std::vector<std::string>& a = b;
      bool show = a.size() == 6 && a[1] == "show" && a[2] == "-p" && (a[3] == "MainPID" || a[3] == "AllowedCPUs") && a[4] == "--value";
      if (!show && (a.size() != 3 || (a[1] != "is-active" && a[1] != "stop" && a[1] != "start")))
        return "systemctl with unexpected arguments: " + format_argv(a);
      const std::string& u = a.back();
      if (u.empty() || u[0] == '-' || u.find('/') != std::string::npos)
        return "systemctl on a unit name that is an option or a path: " + format_argv(a);
      return "";
    }
    if (p == "ddcutil") {
      for (size_t i = 1; i < a.size(); ++i)
        if (a[i].empty() || (a[i][0] == '-' && a[i] != "--bus" && a[i] != "--brief"))
          return "ddcutil with an unexpected option: " + format_argv(a);
      return "";
    }
    if (p[0] != '/') return "a program by relative name: " + format_argv(a);
    return "";
  }
};

class GuardFs : public Fs {
 public:
  GuardFs(FakeFs& fs, FakeKernel& k) : fs_(fs), k_(k) {}

  std::vector<Effect>* log = nullptr;           // every effect, in order
  int inject_at = -1;                            // index of the effect to fault (counted in *log order)
  FakeKernel::Fault inject = FakeKernel::Fault::fail;
  const SafetyPolicy* policy = nullptr;
  std::function<void(const std::string&)> on_violation;
  int* counter = nullptr;                        // shared with GuardRunner: one numbering of all effects
  bool* fired = nullptr;                         // set when the injected fault really happened
  std::map<std::string, int>* reads = nullptr;   // when set: how often each path was read

  Result<std::string> read(const std::string& p) override {
    if (reads) ++(*reads)[p];
    return fs_.read(p);
  }
  Result<OpenedFile> read_nofollow(const std::string& p) override { return fs_.read_nofollow(p); }
  Result<std::string> readlink(const std::string& p) override { return fs_.readlink(p); }
  Result<std::string> canonical(const std::string& p) override { return fs_.canonical(p); }
  Result<std::vector<std::string>> list(const std::string& p) override { return fs_.list(p); }
  FileInfo stat(const std::string& p, bool follow) override { return fs_.stat(p, follow); }
  Status make_dirs(const std::string& p, unsigned mode) override {
    check(p, true);
    return fs_.make_dirs(p, mode);
  }

  Status write(const std::string& p, std::string_view d) override {
    check(p, false);
    arm(Effect::Type::write, p);
    return note(fs_.write(p, d));
  }
  Status write_guarded(const std::string& p, std::string_view d, const Deadline& dl) override {
    check(p, false);
    arm(Effect::Type::guarded, p);
    return note(fs_.write_guarded(p, d, dl));
  }
  Status write_atomic(const std::string& p, std::string_view d, unsigned mode) override {
    check(p, true);
    arm(Effect::Type::atomic, p);
    return note(fs_.write_atomic(p, d, mode));
  }
  Status create_sized(const std::string& p, long long size, unsigned mode, unsigned uid, unsigned gid) override {
    check(p, false);
    arm(Effect::Type::write, p);
    return note(fs_.create_sized(p, size, mode, uid, gid));
  }
  Status remove(const std::string& p) override {
    check(p, true);
    if (log) log->push_back({Effect::Type::remove, p});
    if (counter) ++*counter;
    return fs_.remove(p);
  }

 private:
  void check(const std::string& p, bool state) {
    if (!policy) return;
    std::string why = policy->check_path(p, state);
    if (!why.empty() && on_violation) on_violation(why);
  }
  void arm(Effect::Type t, const std::string& p) {
    armed_now_ = false;
    int n = counter ? (*counter)++ : 0;
    if (log) log->push_back({t, p});
    if (n == inject_at) {
      // The fake kernel's semantics for exactly this call. It matches the path it is given, which
      // is the resolved one for sysfs writes (links followed).
      std::string r = t == Effect::Type::atomic ? p : fs_.resolve(p, true);
      k_.fault_write(r.empty() ? p : r, inject, 1);
      armed_now_ = true;
    }
  }
  Status note(Status s) {
    if (armed_now_) {
      k_.clear_faults();
      if (fired && !s.ok() &&
          (s.error().timed_out || s.error().what.find("injected fault") != std::string::npos ||
           s.error().what.find("blocked for an hour") != std::string::npos))
        *fired = true;
      armed_now_ = false;
    }
    return s;
  }
  FakeFs& fs_;
  FakeKernel& k_;
  bool armed_now_ = false;
};

class GuardRunner : public Runner {
 public:
  GuardRunner(FakeRunner& r, FakeKernel& k) : r_(r), k_(k) {}
  std::vector<Effect>* log = nullptr;
  int inject_at = -1;
  FakeKernel::Fault inject = FakeKernel::Fault::fail;
  const SafetyPolicy* policy = nullptr;
  std::function<void(const std::string&)> on_violation;
  int* counter = nullptr;
  bool* fired = nullptr;

  Result<RunResult> run(const std::vector<std::string>& argv, const Deadline& d) override {
    if (policy && on_violation) {
      std::string why = policy->check_argv(argv);
      if (!why.empty()) on_violation(why);
    }
    std::string line = format_argv(argv);
    int n = counter ? (*counter)++ : 0;
    if (log) log->push_back({Effect::Type::run, line});
    if (n == inject_at) {
      k_.fault_command(line, inject, 1);
      auto r = r_.run(argv, d);
      k_.clear_faults();
      if (fired && r && (r->timed_out || r->err == "injected failure\n")) *fired = true;
      return r;
    }
    return r_.run(argv, d);
  }
  bool has_program(const std::string& name) override { return r_.has_program(name); }
  Result<int> spawn_detached(const DetachedSpec& spec) override {
    if (policy && on_violation) {
      std::string why = policy->check_argv(spec.argv);
      if (!why.empty()) on_violation(why);
      if (spec.uid == 0) on_violation("a detached program started as root: " + format_argv(spec.argv));
    }
    std::string line = "spawn-detached " + format_argv(spec.argv);
    int n = counter ? (*counter)++ : 0;
    if (log) log->push_back({Effect::Type::run, line});
    if (n == inject_at) {
      k_.fault_command(line, inject, 1);
      auto r = r_.spawn_detached(spec);
      k_.clear_faults();
      if (fired && !r) *fired = true;
      return r;
    }
    return r_.spawn_detached(spec);
  }

 private:
  FakeRunner& r_;
  FakeKernel& k_;
};

// A FakeHost seen through the guard.
struct GuardedHost {
  FakeHost& h;
  int counter = 0;
  bool fired = false;  // the injected fault happened
  std::vector<Effect> effects;
  GuardFs fs;
  GuardRunner runner;
  explicit GuardedHost(FakeHost& host) : h(host), fs(host.fs, host.kernel), runner(host.runner, host.kernel) {
    fs.counter = runner.counter = &counter;
    fs.log = runner.log = &effects;
    fs.fired = runner.fired = &fired;
  }
  Host host() { return Host{fs, runner, h.clock, h.signals, h.locker}; }
  void inject(int at, FakeKernel::Fault f) {
    fs.inject_at = runner.inject_at = at;
    fs.inject = runner.inject = f;
  }
  void guard(const SafetyPolicy* p, std::function<void(const std::string&)> cb) {
    fs.policy = runner.policy = p;
    fs.on_violation = runner.on_violation = std::move(cb);
  }
};

}  // namespace gpuhook::test

// In-process test harness: a FakeHost, a MemoryLog, and libvirt events run through the real
// hook path (run_hook_event), exactly as the binary would after its fast path.
#pragma once
#include <map>
#include <sstream>
#include <string>

#include "app/hook_event.h"
#include "app/verbs.h"
#include "fake/fake_host.h"

namespace gpuhook::test {

struct KilledForTest {};

// The reference laptop's profile: external mode, nvidia-persistenced stopped, NVIDIA unloaded,
// vfio-pci kept loaded after release (the default; restored_diff gives it back).
inline const char* kLaptopProfile = R"(
[gpu]
address = "0000:01:00.0"
[host]
stop_services = ["nvidia-persistenced.service"]
unload_modules = ["nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"]
)";

// Runs one libvirt event through the real hook path (run_hook_event) on `host`, the log going
// to `log`: what every in-process test and benchmark does after the binary's fast path.
inline AppContext make_app(Host host, MemoryLog& log, FaultHook f = {}) {
  AppContext a{host, "/", {}, std::move(f), {}};
  a.open_log = [&log](const GlobalConfig&, const std::string&, std::string*) {
    struct Fwd : Log {
      MemoryLog& m;
      explicit Fwd(MemoryLog& l) : m(l) {}
      void write(Level l, std::string_view s) override { m.write(l, s); }
    };
    return std::unique_ptr<Log>(new Fwd(log));
  };
  return a;
}

inline int run_event(Host host, MemoryLog& log, const std::string& vm, const std::string& op,
                     std::string_view xml = "", std::string* err_out = nullptr, FaultHook f = {}) {
  AppContext a = make_app(host, log, std::move(f));
  Invocation inv;
  inv.kind = Invocation::Kind::hook;
  inv.vm = vm;
  inv.op = op;
  inv.sub = op == "release" || op == "stopped" ? "end" : "begin";
  inv.extra = "-";
  std::string err;
  int rc = run_hook_event(a, inv, xml, err);
  if (err_out) *err_out = err;
  return rc;
}

// `gpuhook restore --all-modules`: unloads the modules that releases kept loaded (the default
// [host] unload_vfio = false), so a test can compare the host with how it was before the VM.
inline void give_back_kept_modules(Host host, MemoryLog& log) {
  if (!host.fs.exists("/run/gpuhook/.host.journal")) return;
  AppContext a = make_app(host, log);
  Invocation inv;
  inv.kind = Invocation::Kind::verb;
  inv.verb = "restore";
  inv.all_modules = true;
  std::ostringstream out, err;
  (void)run_verb(a, inv, out, err);
}

struct Harness {
  FakeHost h;
  MemoryLog log;

  AppContext app(FaultHook f = {}) { return make_app(h.host(), log, std::move(f)); }

  // Runs one event; returns the exit code. A FaultHook may throw KilledForTest to simulate
  // SIGKILL: the journal stays as it was, and the dead process's flocks go away.
  int event(const std::string& vm, const std::string& op, std::string* err_out = nullptr, FaultHook f = {},
            const std::string& xml = "") {
    try {
      return run_event(h.host(), log, vm, op, xml, err_out, std::move(f));
    } catch (const KilledForTest&) {
      h.locker.held.clear();  // the kernel drops a dead process's flocks
      throw;
    }
  }

  // The host compared with `reference` once what gpuhook keeps on purpose is given back: the
  // modules a release leaves loaded under the default [host] unload_vfio = false, unloaded here by
  // `gpuhook restore --all-modules` itself (so the host journal's record must be right for the
  // module set to come back exactly). Anything else a release left is a difference.
  std::string restored_diff(const std::map<std::string, std::string>& reference) {
    give_back_kept_modules(h.host(), log);
    return diff_states(reference, h.state());
  }

  // prepare, start, started as libvirt sends them; stops at the first refusal.
  int start_vm(const std::string& vm, std::string* err = nullptr, FaultHook f = {}) {
    for (const char* op : {"prepare", "start", "started"}) {
      int rc = event(vm, op, err, f);
      if (rc != 0) return rc;
    }
    return 0;
  }
  // What libvirt sends after a VM stops or a start failed.
  void stop_vm(const std::string& vm) {
    event(vm, "stopped");
    event(vm, "release");
  }
};

}  // namespace gpuhook::test

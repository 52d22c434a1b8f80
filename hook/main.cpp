// gpuhook: libvirt's QEMU hook and the CLI around it. Table of contents:
//   1. Parse argv. Named "qemu" or in hooks/qemu.d/: libvirtd runs us as the hook.
//   2. Hook path, fast: drain stdin (libvirtd must never see a broken pipe); a VM without a
//      profile ends here with exit 0, nothing printed, no file created.
//   3. Hook path, managed VM: real host, watchdog, run the event (app/hook_event.cpp).
//   4. CLI verbs (app/verbs.cpp and app/verb_*.cpp).
// Nothing is ever printed on stdout in hook mode: libvirtd reads it as XML for migrate/restore.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "app/args.h"
#include "app/hook_event.h"
#include "engine/session.h"
#include "app/verbs.h"
#include "host/real_host.h"
#include "version.h"

namespace gpuhook {
namespace {

constexpr size_t kStdinKeep = 8u << 20;  // a domain XML is kilobytes; keep at most 8 MiB of it

// Reads stdin to EOF; keeps at most kStdinKeep bytes. A terminal is not read (run by hand).
std::string drain_stdin(bool keep) {
  std::string data;
  if (::isatty(0)) return data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 0) break;
    if (keep && data.size() < kStdinKeep) data.append(buf, std::min(static_cast<size_t>(n), kStdinKeep - data.size()));
  }
  return data;
}

// stdout must stay empty in hook mode: point fd 1 at /dev/null for the whole run.
void silence_stdout() {
  int nul = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (nul >= 0) {
    ::dup2(nul, 1);
    ::close(nul);
  }
}

void write_err(const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(2, s.data() + off, s.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

// Last resort against a hang we did not foresee: the event deadline plus a margin, then exit 1.
// The journal keeps what was done; libvirtd's release (or `gpuhook restore`) undoes it.
void on_alarm(int) {
  const char msg[] = "gpuhook: the event ran past its deadline and was stopped; the journal keeps what was done "
                     "(gpuhook restore <vm>)\n";
  (void)!::write(2, msg, sizeof msg - 1);
  ::_exit(1);
}

std::unique_ptr<Log> open_real_log(const std::string& root, const GlobalConfig& g, const std::string& tag,
                                   std::string* problem) {
  LogConfig lc;
  lc.file = (root == "/" ? "" : root) + g.log_dir + "/gpuhook.log";
  lc.level = g.log_level;
  lc.syslog = g.syslog && root == "/";
  lc.tag = tag;
  return make_spdlog(lc, problem);
}

#ifdef GPUHOOK_FAULT_POINTS
// Test builds only: GPUHOOK_FAULT=<point>:<step kind>[:<n>] kills the hook with SIGKILL at the
// n-th (default first) time that point is reached for that kind, e.g. "after-apply:pci.vfio:1".
// (GPUHOOK_FAULT=skip-release, handled in hook_main, makes release restore nothing;
// GPUHOOK_FAULT=skip-undo:<step kind>, skip_undo_from_env, skips every undo of that kind, e.g.
// "skip-undo:service.stop": the display manager is never started again.)
FaultHook fault_from_env() {
  const char* f = std::getenv("GPUHOOK_FAULT");
  if (!f || !*f || std::string(f).rfind("skip-", 0) == 0) return {};
  std::string spec = f;
  return [spec, count = 0](std::string_view point, int, const std::string& kind) mutable {
    std::string p = spec.substr(0, spec.find(':'));
    std::string rest = spec.find(':') == std::string::npos ? "" : spec.substr(spec.find(':') + 1);
    std::string k = rest.substr(0, rest.find(':'));
    int n = rest.find(':') == std::string::npos ? 1 : std::atoi(rest.substr(rest.find(':') + 1).c_str());
    if (point == p && kind == k && ++count == n) ::kill(::getpid(), SIGKILL);
  };
}
SkipUndoHook skip_undo_from_env() {
  const char* f = std::getenv("GPUHOOK_FAULT");
  std::string spec = f ? f : "";
  if (spec.rfind("skip-undo:", 0) != 0) return {};
  return [k = spec.substr(10)](const std::string& kind) { return kind == k; };
}
#endif

int hook_main(const Invocation& inv) {
  silence_stdout();
  // Fast path: a VM that is not ours, no profile and no journal (every other VM on the machine).
  RealFs probe(inv.root);
  bool ours = is_managed(probe, inv.vm);
  std::string xml = drain_stdin(ours && inv.op == "prepare");
  if (!ours) return 0;

  ::umask(077);
  RealHost real(inv.root);
  AppContext app{real.host(), inv.root, {}, {}, {}};
  app.open_log = [&](const GlobalConfig& g, const std::string& tag, std::string* problem) {
    return open_real_log(inv.root, g, tag, problem);
  };
#ifdef GPUHOOK_FAULT_POINTS
  // Test builds only: GPUHOOK_FAULT=skip-release is a deliberately broken gpuhook whose release
  // logs its event and restores nothing. tests/realkernel runs its libvirtd scenario with it to
  // show that the scenario's checks do catch a host left unrestored.
  if (const char* f = std::getenv("GPUHOOK_FAULT"); f && std::string(f) == "skip-release" && inv.op == "release") {
    std::string problem;
    auto log = app.open_log(GlobalConfig{}, "[" + inv.vm + " release " + std::to_string(::getpid()) + "] ", &problem);
    log->warn("event release " + inv.sub + " " + inv.extra + " (vm " + inv.vm +
              "): GPUHOOK_FAULT=skip-release, restoring nothing (deliberately broken test build)");
    return 0;
  }
#endif
  app.arm_watchdog = [](Millis budget_ms) {
    ::signal(SIGALRM, on_alarm);
    // The event, then a rollback with a budget of its own (Engine::apply), then a margin.
    ::alarm(static_cast<unsigned>(2 * (budget_ms / 1000) + 5));
  };
#ifdef GPUHOOK_FAULT_POINTS
  app.fault = fault_from_env();
  app.skip_undo = skip_undo_from_env();
#endif
  std::string err;
  int rc = run_hook_event(app, inv, xml, err);
  if (!err.empty()) write_err(err);
  return rc;
}

}  // namespace
}  // namespace gpuhook

// Entry point of the module gpuhook-full.so, called by the gpuhook executable (front.cpp) with
// its own argv, for everything but a VM without a profile.
extern "C" __attribute__((visibility("default"))) int gpuhook_main(int argc, char** argv) {
  using namespace gpuhook;
  std::vector<std::string> args(argv, argv + argc);
  Invocation inv = parse_args(args);
  switch (inv.kind) {
    case Invocation::Kind::hook:
      return hook_main(inv);
    case Invocation::Kind::help:
      std::cout << usage();
      return 0;
    case Invocation::Kind::version:
      std::cout << "gpuhook " << kVersion << "\n";
      return 0;
    case Invocation::Kind::usage_error:
      if (inv.from_libvirt) return 0;  // never block a VM over arguments we do not understand
      std::cerr << "gpuhook: " << inv.error << "\n" << "Try 'gpuhook --help'.\n";
      return 2;
    case Invocation::Kind::verb:
      break;
  }
  if (inv.help) {
    std::cout << verb_help(inv.verb);
    return 0;
  }
  ::umask(077);
  RealHost real(inv.root);
  AppContext app{real.host(), inv.root, {}, {}, {}};
  app.open_log = [&](const GlobalConfig& g, const std::string& tag, std::string* problem) {
    return open_real_log(inv.root, g, tag, problem);
  };
  return run_verb(app, inv, std::cout, std::cerr);
}

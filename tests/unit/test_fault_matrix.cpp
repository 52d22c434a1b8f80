// The fault matrix: for the reference laptop in every display mode (and the single-GPU desktop in
// takeover), a fault at every step of prepare/start/started, then libvirt's release, must leave
// the whole fake host exactly as it was before prepare. Faults:
//   error       each effect of the step fails (every write, state write and program it makes,
//               its record's reads included), one run per effect
//   hang        each effect hangs past its deadline (the fake kernel's hang; an expired deadline
//               then makes later guarded writes and programs time out, as RealFs/ProcessRunner do)
//   late        a guarded write's writer stays in the kernel past its deadline (D state) and its
//               write lands after libvirt's release; a second release must still restore
//   kill<       the hook is killed just before the step's change (after its journal record)
//   kill>       the hook is killed just after the step's change
//   kill@rb     the step fails, and the hook is killed at the first undo of the rollback
//   kill@rel    everything succeeded; release is killed before undoing this step; release again
// The test prints the matrix; every cell must be restored. For error and hang, the refused
// event's own rollback must also have restored what that event changed (before release runs). The runs use the real planner, engine,
// steps and hook_event path (run_hook_event), only the host is fake.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include "../fuzz/host_guard.h"
#include "harness.h"
#include "app/hook_event.h"
#include "engine/engine.h"
#include "fake/fake_host.h"
#include "profile/profile.h"

namespace gpuhook {
namespace {

using test::Effect;
using test::GuardedHost;
using Fault = FakeKernel::Fault;

struct KilledForTest {};

const char* kModules = R"(unload_modules = ["nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"]
)";

struct Scenario {
  std::string name;
  std::function<void(FakeHost&)> build;
  std::string profile;
  std::string xml = "";  // the domain XML prepare gets on stdin ("" none)
};

// The domain of the tuned and Looking Glass scenarios: 64 MiB on huge pages, vCPUs pinned to
// CPUs 2-3 and the emulator to 1, Looking Glass's 32 MiB shared memory.
const char* kTunedDomain =
    "<domain type='kvm'><name>win11</name><memory unit='KiB'>65536</memory>"
    "<memoryBacking><hugepages/></memoryBacking><cputune><vcpupin vcpu='0' cpuset='2'/><vcpupin vcpu='1' cpuset='3'/>"
    "<emulatorpin cpuset='1'/></cputune><devices><shmem name='looking-glass'><model type='ivshmem-plain'/>"
    "<size unit='M'>32</size></shmem></devices></domain>";

// Fake programs for the command mode: each keeps its state in a file the snapshot sees. Each
// command touches its own state: release undoes best effort, so a failed undo is retried after
// older steps were undone, and commands that depend on each other's order cannot be restored
// exactly in that case.
void command_programs(FakeHost& h) {
  h.fs.put_file("/run/fake-panel/output", "igpu\n");
  h.fs.put_file("/run/fake-cpu/governor", "schedutil\n");
  h.fs.put_file("/run/fake-notify/state", "idle\n");
  h.fs.put_file("/run/fake-fan/mode", "auto\n");
  auto setter = [&h](const std::string& file) {
    return [&h, file](const std::vector<std::string>& a, const Deadline&) {
      RunResult r;
      if (a.size() != 2) {
        r.exit_code = 2;
        r.err = "usage\n";
        return r;
      }
      h.fs.put_file(file, a[1] + "\n");
      r.exit_code = 0;
      return r;
    };
  };
  h.runner.programs["/usr/local/bin/panel-switch"] = setter("/run/fake-panel/output");
  h.runner.programs["/usr/local/bin/governor"] = setter("/run/fake-cpu/governor");
  h.runner.programs["/usr/local/bin/notify"] = setter("/run/fake-notify/state");
  h.runner.programs["/usr/local/bin/fan"] = setter("/run/fake-fan/mode");
  h.runner.programs["/usr/local/bin/log"] = [](const std::vector<std::string>&, const Deadline&) {
    RunResult r;  // like logger(1): leaves nothing to undo
    r.exit_code = 0;
    return r;
  };
}

std::vector<Scenario> scenarios() {
  const std::string gpu = "[gpu]\naddress = \"0000:01:00.0\"\n";
  const std::string host_nv = "[host]\nstop_services = [\"nvidia-persistenced.service\"]\n" + std::string(kModules);
  return {
      {"external", build_reference_laptop, gpu + host_nv},
      {"takeover", build_reference_laptop,
       gpu + "[display]\nmode = \"takeover\"\n[host]\nstop_services = [\"display-manager.service\", "
             "\"nvidia-persistenced.service\"]\n" + kModules},
      {"mux (switcheroo)",
       [](FakeHost& h) {
         build_reference_laptop(h);
         h.kernel.enable_switcheroo("0000:00:02.0", "0000:01:00.0");
       },
       gpu + "[display]\nmode = \"mux\"\n[display.mux]\nmethod = \"switcheroo\"\n" + host_nv},
      {"mux (acpi)",
       [](FakeHost& h) {
         build_reference_laptop(h);
         h.kernel.enable_acpi_call();
       },
       gpu + "[display]\nmode = \"mux\"\n[display.mux]\nmethod = \"acpi\"\nacpi_dgpu = '\\_SB.PCI0.PEG0.PEGP'\n"
             "acpi_igpu = '\\_SB.PCI0.GFX0'\n" + host_nv},
      {"ddc", build_reference_laptop, gpu + "[display]\nmode = \"ddc\"\n[display.ddc]\nbus = 4\nvm_input = 0x0f\n" + host_nv},
      {"command",
       [](FakeHost& h) {
         build_reference_laptop(h);
         command_programs(h);
       },
       gpu + "[display]\nmode = \"command\"\n[display.command]\nswitch = [\"/usr/local/bin/panel-switch\", \"dgpu\"]\n"
             "restore = [\"/usr/local/bin/panel-switch\", \"igpu\"]\n" + host_nv +
           "[[commands]]\nwhen = \"prepare\"\nrun = [\"/usr/local/bin/governor\", \"performance\"]\n"
           "undo = [\"/usr/local/bin/governor\", \"schedutil\"]\n"
           "[[commands]]\nwhen = \"start\"\nrun = [\"/usr/local/bin/notify\", \"starting\"]\n"
           "undo = [\"/usr/local/bin/notify\", \"idle\"]\n"
           "[[commands]]\nwhen = \"started\"\nrun = [\"/usr/local/bin/fan\", \"quiet\"]\n"
           "undo = [\"/usr/local/bin/fan\", \"auto\"]\n"
           "[[commands]]\nwhen = \"started\"\nrun = [\"/usr/local/bin/log\", \"VM running\"]\n"},
      {"looking-glass (client detached)",
       [](FakeHost& h) {
         build_reference_laptop(h);
         add_tuning_host(h, false);
       },
       gpu + "[display]\nmode = \"looking-glass\"\n[display.looking_glass]\nclient = [\"/usr/local/bin/looking-glass-client\", \"-F\"]\n"
             "user = \"alice\"\n" + host_nv,
       kTunedDomain},
      {"looking-glass (user unit)",
       [](FakeHost& h) {
         build_reference_laptop(h);
         add_tuning_host(h, true);
       },
       gpu + "[display]\nmode = \"looking-glass\"\n[display.looking_glass]\nclient = [\"/usr/local/bin/looking-glass-client\"]\n"
             "user = \"alice\"\n" + host_nv,
       kTunedDomain},
      {"external + [tuning] (systemd)",
       [](FakeHost& h) {
         build_reference_laptop(h);
         add_tuning_host(h, false);
       },
       gpu + "[display.looking_glass]\nclient = [\"/usr/local/bin/looking-glass-client\"]\nuser = \"alice\"\n" + host_nv +
           "[tuning]\nhugepages = true\nisolate_cpus = true\ngovernor = \"performance\"\ninhibit_sleep = true\nshared_memory = true\n",
       kTunedDomain},
      {"external + [tuning] (no systemd: cgroup v2)",
       [](FakeHost& h) {
         build_reference_laptop(h);
         h.kernel.enable_systemd(false);
         h.kernel.kill(900, 9);  // no systemd to stop nvidia-persistenced: not running here
         add_tuning_host(h, false);
       },
       gpu + "[host]\n" + kModules + "[tuning]\nhugepages = true\nisolate_cpus = true\ngovernor = \"performance\"\n",
       kTunedDomain},
      {"takeover (single-GPU desktop)",
       [](FakeHost& h) {
         build_single_gpu_desktop(h);
         h.kernel.kill(1200, 9);  // no audio session holding the card: holders = refuse passes
       },
       "[gpu]\naddress = \"0000:0b:00.0\"\n[display]\nmode = \"takeover\"\n"},
  };
}

// The host as the test compares it: the fake's whole tree, minus /proc/acpi/call (it shows the
// result of the last call, not a state) and the monitor file (written on the first setvcp), plus
// the kernel state the tree does not show (the MUX, the monitor's input).
std::map<std::string, std::string> host_state(FakeHost& h) {
  auto s = h.state();
  s.erase("/proc/acpi/call");
  for (auto it = s.begin(); it != s.end();)
    it = it->first.rfind("/run/fake-monitor", 0) == 0 ? s.erase(it) : std::next(it);
  // A top-level cgroup whose cpuset.cpus was empty (the parent's CPUs) gets those CPUs by name
  // back: the kernel refuses to empty the cpuset of a group with processes (README, Tuning).
  std::string parent = "file:" + (h.fs.has("/sys/fs/cgroup/cpuset.cpus.effective") ? h.fs.nodes().at("/sys/fs/cgroup/cpuset.cpus.effective").data : "");
  for (auto& [path, v] : s)
    if (path.rfind("/sys/fs/cgroup/", 0) == 0 && path.size() > 12 && path.compare(path.size() - 12, 12, "/cpuset.cpus") == 0 &&
        v == parent)
      v = "file:\n";
  s["@mux"] = h.kernel.mux();
  s["@monitor i2c-4"] = std::to_string(h.kernel.monitor_input(4));
  return s;
}

// gpuhook's own state must be gone too: no journal, no claim.
std::string leftovers(FakeHost& h, const std::string& vm) {
  std::string s;
  if (h.fs.exists("/run/gpuhook/" + vm + ".journal")) s += "  journal left: /run/gpuhook/" + vm + ".journal\n";
  if (auto l = h.fs.list("/run/gpuhook/claims"); l)
    for (const auto& c : *l) s += "  claim left: " + c + "\n";
  return s;
}

struct Mark {
  std::string point;
  int seq;
  std::string kind;
  size_t effect;  // effects logged before this point
};

struct VmRun {
  FakeHost h;
  GuardedHost g{h};
  MemoryLog log;
  std::vector<Mark> marks;
  std::map<std::string, std::string> before;
  const std::string vm = "win11";
  std::string xml;

  explicit VmRun(const Scenario& s) : xml(s.xml) {
    s.build(h);
    put_profile(h, vm, s.profile);
    before = host_state(h);
  }
  // One libvirt event through run_hook_event. `fault` runs at every engine fault point.
  int event(const std::string& op, const FaultHook& fault = {}, std::string* err_out = nullptr) {
    AppContext a{g.host(), "/", {}, {}, {}};
    a.fault = [&](std::string_view p, int seq, const std::string& kind) {
      marks.push_back({std::string(p), seq, kind, g.effects.size()});
      if (fault) fault(p, seq, kind);
    };
    a.open_log = [this](const GlobalConfig&, const std::string& tag, std::string*) {
      struct Fwd : Log {
        MemoryLog& m;
        std::string tag;
        Fwd(MemoryLog& l, std::string t) : m(l), tag(std::move(t)) {}
        void write(Level l, std::string_view s) override { m.write(l, tag + std::string(s)); }
      };
      return std::unique_ptr<Log>(new Fwd(log, tag));
    };
    Invocation inv;
    inv.kind = Invocation::Kind::hook;
    inv.vm = vm;
    inv.op = op;
    inv.sub = op == "release" ? "end" : "begin";
    inv.extra = "-";
    std::string err;
    int rc = run_hook_event(a, inv, op == "prepare" ? xml : "", err);
    if (err_out) *err_out = err;
    return rc;
  }
  // prepare, start, started as libvirt sends them, stopping at the first refusal or kill.
  // Returns "" when all succeeded, else what stopped it.
  std::map<std::string, std::string> before_event;  // the host before the last event start_vm ran
  std::string start_vm(const FaultHook& fault = {}) {
    for (const char* op : {"prepare", "start", "started"}) {
      before_event = host_state(h);
      try {
        std::string err;
        if (event(op, fault, &err) != 0) return std::string(op) + " refused";
      } catch (const KilledForTest&) {
        h.locker.held.clear();  // the kernel drops a dead process's flocks
        return std::string(op) + " killed";
      }
    }
    return "";
  }
  std::string release() {
    try {
      event("release");
    } catch (const KilledForTest&) {
      h.locker.held.clear();
      return "killed";
    }
    return "";
  }
  // What the release did not restore (the modules kept on purpose given back first, as
  // `gpuhook restore --all-modules` does).
  std::string damage() {
    test::give_back_kept_modules(h.host(), log);
    return diff_states(before, host_state(h)) + leftovers(h, vm);
  }
  // After a refused event: did its own rollback restore the host as it was before that event?
  bool event_rolled_back() { return diff_states(before_event, host_state(h)).empty(); }
};

// A step of the probe run, with the effects it makes (record, journal intent, change, journal done).
struct StepInfo {
  std::string phase;
  int seq;
  std::string kind;
  std::string label;
  size_t first, last;        // effect index range [first, last)
  size_t apply_first, apply_last;
  size_t undo_first = 0, undo_last = 0;  // effects of its undo in a release after a good start
};

std::vector<StepInfo> probe_steps(const Scenario& s, std::vector<Effect>& effects, std::vector<Effect>& release_effects,
                                  std::string& why) {
  VmRun r(s);
  std::vector<StepInfo> steps;
  for (const char* op : {"prepare", "start", "started"}) {
    size_t start = r.g.effects.size();
    size_t m0 = r.marks.size();
    std::string err;
    if (r.event(op, {}, &err) != 0) {
      why = std::string(op) + " fails without any fault: " + err + r.log.text();
      return {};
    }
    size_t prev_end = start;
    for (size_t i = m0; i < r.marks.size(); ++i) {
      if (r.marks[i].point != "before-apply") continue;
      StepInfo st{op, r.marks[i].seq, r.marks[i].kind, "", prev_end, 0, r.marks[i].effect, 0};
      for (size_t j = i + 1; j < r.marks.size(); ++j)
        if (r.marks[j].point == "after-apply" && r.marks[j].seq == st.seq) {
          st.apply_last = r.marks[j].effect;
          // the journal's "done" update right after the change belongs to this step
          st.last = st.apply_last + (st.apply_last < r.g.effects.size() &&
                                     r.g.effects[st.apply_last].type == Effect::Type::atomic);
          break;
        }
      prev_end = st.last;
      steps.push_back(st);
    }
  }
  // Labels from the log lines "step N ok (...): <describe>".
  for (auto& st : steps) {
    std::string key = "step " + std::to_string(st.seq) + " ok (";
    for (const auto& l : r.log.lines) {
      auto p = l.text.find(key);
      if (p == std::string::npos) continue;
      auto c = l.text.find("): ", p);
      if (c != std::string::npos) st.label = l.text.substr(c + 3);
    }
    if (st.label.size() > 46) st.label = st.label.substr(0, 43) + "...";
  }
  effects = r.g.effects;
  size_t m0 = r.marks.size();
  size_t rel_start = r.g.effects.size();
  auto rel = r.release();
  // Each undo's effects: from its before-undo mark to the next one (or the end of release).
  for (size_t i = m0; i < r.marks.size(); ++i) {
    if (r.marks[i].point != "before-undo") continue;
    size_t end = i + 1 < r.marks.size() ? r.marks[i + 1].effect : r.g.effects.size();
    for (auto& st : steps)
      if (st.seq == r.marks[i].seq) st.undo_first = r.marks[i].effect, st.undo_last = end;
  }
  (void)rel_start;
  release_effects = r.g.effects;
  std::string d = r.damage();
  if (!rel.empty() || !d.empty()) why = "a plain prepare/start/started/release does not restore the host:\n" + d;
  return steps;
}

struct Cell {
  int runs = 0;
  int restored = 0;
  int failed_events = 0;    // error/hang: runs where the fault made an event fail (else the VM started)
  int rollback_clean = 0;   // ... and the failed event's own rollback already restored the host
  std::vector<std::string> failures;
  void add(bool ok, const std::string& what) {
    ++runs;
    restored += ok;
    if (!ok) failures.push_back(what);
  }
  std::string text() const {
    if (runs == 0) return "-";
    if (restored != runs) return "FAIL " + std::to_string(runs - restored) + "/" + std::to_string(runs);
    return "ok" + (runs > 1 ? "(" + std::to_string(runs) + ")" : std::string());
  }
};

const char* kColumns[] = {"error", "hang", "late", "kill<", "kill>", "kill@rb", "kill@rel", "err@rel"};

TEST(FaultMatrix, EveryFaultAtEveryStepInEveryModeIsRestoredByRelease) {
  std::string report;
  int total = 0, bad = 0, rollback_bad = 0;
  for (const auto& sc : scenarios()) {
    std::string why;
    std::vector<Effect> effects, release_effects;
    auto steps = probe_steps(sc, effects, release_effects, why);
    ASSERT_TRUE(why.empty()) << sc.name << ": " << why;
    ASSERT_FALSE(steps.empty()) << sc.name;
    std::vector<std::map<std::string, Cell>> cells(steps.size());

    auto check = [&](VmRun& r, Cell& c, const std::string& what) {
      std::string d = r.damage();
      c.add(d.empty(), what + "\n" + d + "--- log ---\n" + r.log.text());
    };

    for (size_t si = 0; si < steps.size(); ++si) {
      const StepInfo& st = steps[si];
      // error and hang at each effect of the step
      for (size_t k = st.first; k < st.last; ++k) {
        for (Fault f : {Fault::fail, Fault::hang}) {
          Effect::Type type = effects[k].type;
          // State files live on tmpfs: they fail (ENOSPC) but do not hang.
          if (f == Fault::hang && (type == Effect::Type::atomic || type == Effect::Type::remove)) continue;
          VmRun r(sc);
          // Effects before k are the probe's, in the same order: k is the same call.
          r.g.inject(static_cast<int>(k), f);
          std::string stop = r.start_vm();
          Cell& c = cells[si][f == Fault::fail ? "error" : "hang"];
          EXPECT_TRUE(r.g.fired) << sc.name << ": the fault at effect " << k << " (" << effects[k].target
                                 << ") did not happen";
          if (!stop.empty()) {
            ++c.failed_events;
            c.rollback_clean += r.event_rolled_back();
          }
          r.g.inject(-1, f);
          std::string rel = r.release();
          check(r, c, std::string(f == Fault::fail ? "error" : "hang") + " at effect " + std::to_string(k) + " (" +
                          test::effect_type_name(type) + " " + effects[k].target + "), " +
                          (stop.empty() ? "VM started anyway" : stop) + (rel.empty() ? "" : ", release " + rel));
        }
      }
      // late: a guarded write whose writer stays in the kernel past its deadline and lands later
      // (a driver stuck in unbind). Release right after, the write lands, release again.
      for (size_t k = st.first; k < st.last; ++k) {
        if (effects[k].type != Effect::Type::guarded) continue;
        VmRun r(sc);
        r.g.inject(static_cast<int>(k), Fault::late);
        std::string stop = r.start_vm();
        r.g.inject(-1, Fault::late);
        std::string rel1 = r.release();
        int landed = r.h.kernel.complete_late_writes();
        std::string rel2 = r.release();
        check(r, cells[si]["late"], "late write at effect " + std::to_string(k) + " (" + effects[k].target + "), " +
                                        (stop.empty() ? "VM started anyway" : stop) + ", " + std::to_string(landed) +
                                        " write(s) landed between two releases" + (rel1.empty() ? "" : ", release " + rel1) +
                                        (rel2.empty() ? "" : ", release " + rel2));
      }
      // kills around the change
      for (const char* point : {"before-apply", "after-apply"}) {
        VmRun r(sc);
        bool fired = false;
        std::string stop = r.start_vm([&](std::string_view p, int seq, const std::string&) {
          if (p == point && seq == st.seq && !fired) {
            fired = true;
            throw KilledForTest{};
          }
        });
        r.release();
        check(r, cells[si][std::string(point) == "before-apply" ? "kill<" : "kill>"],
              std::string("kill at ") + point + " of step " + std::to_string(st.seq) + " (" + stop + ")");
      }
      // the step fails at its change, and the rollback is killed at its first undo
      {
        size_t k = st.apply_first < st.apply_last ? st.apply_first : st.first;
        VmRun r(sc);
        r.g.inject(static_cast<int>(k), Fault::fail);
        bool fired = false;
        std::string stop = r.start_vm([&](std::string_view p, int, const std::string&) {
          if (p == "before-undo" && !fired) {
            fired = true;
            throw KilledForTest{};
          }
        });
        r.g.inject(-1, Fault::fail);
        if (fired) {
          r.release();
          check(r, cells[si]["kill@rb"], "error at effect " + std::to_string(k) + ", kill at the first undo (" + stop + ")");
        }
      }
      // release killed before undoing this step, then release again
      {
        VmRun r(sc);
        std::string stop = r.start_vm();
        ASSERT_EQ(stop, "") << sc.name;
        bool fired = false;
        std::string rel;
        try {
          r.event("release", [&](std::string_view p, int seq, const std::string&) {
            if (p == "before-undo" && seq == st.seq && !fired) {
              fired = true;
              throw KilledForTest{};
            }
          });
        } catch (const KilledForTest&) {
          r.h.locker.held.clear();
        }
        r.release();
        check(r, cells[si]["kill@rel"], "release killed before undo of step " + std::to_string(st.seq));
      }
      // an effect of this step's undo fails in release; the next release (or `gpuhook restore`)
      // must finish the job
      for (size_t k = st.undo_first; k < st.undo_last; ++k) {
        if (release_effects[k].type == Effect::Type::remove) continue;
        VmRun r(sc);
        ASSERT_EQ(r.start_vm(), "") << sc.name;
        r.g.inject(static_cast<int>(k), Fault::fail);
        r.release();
        EXPECT_TRUE(r.g.fired) << sc.name << ": the fault at release effect " << k << " (" << release_effects[k].target
                               << ") did not happen";
        r.g.inject(-1, Fault::fail);
        r.release();
        check(r, cells[si]["err@rel"], "error at release effect " + std::to_string(k) + " (" +
                                           test::effect_type_name(release_effects[k].type) + " " +
                                           release_effects[k].target + "), then release again");
      }
    }

    // The matrix of this scenario.
    char line[512];
    report += "\n" + sc.name + "\n";
    std::snprintf(line, sizeof line, "  %-8s %3s  %-46s", "phase", "#", "step");
    report += line;
    for (const char* c : kColumns) {
      std::snprintf(line, sizeof line, " %-9s", c);
      report += line;
    }
    report += "\n";
    for (size_t si = 0; si < steps.size(); ++si) {
      std::snprintf(line, sizeof line, "  %-8s %3d  %-46s", steps[si].phase.c_str(), steps[si].seq, steps[si].label.c_str());
      report += line;
      for (const char* c : kColumns) {
        const Cell& cell = cells[si][c];
        std::string t = cell.text();
        if (cell.runs && (std::string(c) == "error" || std::string(c) == "hang") && cell.rollback_clean < cell.failed_events &&
            cell.restored == cell.runs)
          t += "*";
        if (cell.rollback_clean < cell.failed_events) {
          ++rollback_bad;
          ADD_FAILURE() << sc.name << ", " << steps[si].phase << " step " << steps[si].seq << " " << steps[si].kind << ", "
                        << c << ": the refused event's own rollback left changes behind in "
                        << cell.failed_events - cell.rollback_clean << " of " << cell.failed_events << " runs";
        }
        std::snprintf(line, sizeof line, " %-9s", t.c_str());
        report += line;
        total += cell.runs;
        bad += cell.runs - cell.restored;
        for (const auto& f : cell.failures) ADD_FAILURE() << sc.name << ", " << steps[si].phase << " step " << steps[si].seq << " "
                                                          << steps[si].kind << ": NOT restored after " << f;
      }
      report += "\n";
    }
  }
  std::printf("%s\nok(n): restored after release in all n runs (one per effect of the step); "
              "*: some of those runs needed release (the failed event's own rollback did not restore what that "
              "event changed); "
              "-: not applicable\n%d runs, %d not restored\n",
              report.c_str(), total, bad);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(rollback_bad, 0) << "a refused event must roll back what it changed by itself, before any release";
  EXPECT_GT(total, 300) << "the matrix must actually have run";
}

}  // namespace
}  // namespace gpuhook

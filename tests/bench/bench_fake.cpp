// Google Benchmark: a full prepare (+start +started) and release of the reference laptop profile
// against the fake host, through run_hook_event with the real planner, engine and steps. What is
// measured is gpuhook's own work: profile parsing, planning, journal writes, the steps' logic;
// the fake kernel answers at once, so real driver and module times are not in these figures
// (tests/realkernel measures those).
//
// Rows:
//   cycle/<mode>                 prepare+start+started+release, whole events (run_hook_event)
//   event/<mode>/<op>            one event of that cycle
//   setup/<mode>/<phase>         from the event's start to its first step's change: profile and
//                                global config, plan, locks, the first step's record and journal
//   step/<mode>/<phase> NN kind  one step: from the previous step's end to this step's change done
//                                (record, journal intent, change; the journal's 'done' update is
//                                counted in the next step; the first step's change only)
//   undo/<mode>/NN kind          one undo in release, with its journal update
// Step, undo and event rows use manual time (only that part is timed; "CPU" is the whole cycle's),
// a fixed number of iterations each, and the fake host's setup is never timed.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>

#include "app/hook_event.h"
#include "fake/fake_host.h"

namespace gpuhook {
namespace {

using Clock = std::chrono::steady_clock;

const std::string kHost = "[host]\nstop_services = [\"nvidia-persistenced.service\"]\n"
                          "unload_modules = [\"nvidia_drm\", \"nvidia_modeset\", \"nvidia_uvm\", \"nvidia\"]\n";
const std::string kGpu = "[gpu]\naddress = \"0000:01:00.0\"\n";

struct Mode {
  std::string name;
  std::function<void(FakeHost&)> build;
  std::string profile;
};

std::vector<Mode> modes() {
  return {
      {"external", build_reference_laptop, kGpu + kHost},
      {"mux-switcheroo",
       [](FakeHost& h) {
         build_reference_laptop(h);
         h.kernel.enable_switcheroo("0000:00:02.0", "0000:01:00.0");
       },
       kGpu + "[display]\nmode = \"mux\"\n[display.mux]\nmethod = \"switcheroo\"\n" + kHost},
      {"ddc", build_reference_laptop, kGpu + "[display]\nmode = \"ddc\"\n[display.ddc]\nbus = 4\nvm_input = 0x0f\n" + kHost},
  };
}

struct Measure {
  std::map<std::string, double> us;  // row name -> microseconds
  std::vector<std::string> order;
  void add(const std::string& k, double v) {
    if (!us.count(k)) order.push_back(k);
    us[k] += v;
  }
};

std::string num(int n) {
  char b[16];
  std::snprintf(b, sizeof b, "%02d", n);
  return b;
}

// One cycle on a fresh fake laptop; fills m with the time of every part.
void cycle(const Mode& mode, Measure& m) {
  FakeHost h;
  mode.build(h);
  put_profile(h, "win11", mode.profile);
  NullLog null;
  auto last = Clock::now();
  std::string phase;
  auto us = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); };
  std::string undo_name;
  Clock::time_point undo_start;
  bool first_step = true;
  auto run = [&](const std::string& op) {
    AppContext a{h.host(), "/", {}, {}, {}};
    a.open_log = [](const GlobalConfig&, const std::string&, std::string*) { return std::unique_ptr<Log>(new NullLog); };
    a.fault = [&](std::string_view p, int seq, const std::string& kind) {
      auto now = Clock::now();
      if (p == "before-apply" && first_step) {
        // Profile, global config, plan, locks, the first journal write: the event's setup.
        m.add("setup/" + mode.name + "/" + phase, us(last, now));
        last = now;
        first_step = false;
      } else if (p == "after-apply") {
        m.add("step/" + mode.name + "/" + phase + " " + num(seq) + " " + kind, us(last, now));
        last = now;
      } else if (p == "before-undo") {
        if (!undo_name.empty()) m.add(undo_name, us(undo_start, now));
        undo_name = "undo/" + mode.name + "/" + num(seq) + " " + kind;
        undo_start = now;
      }
    };
    Invocation inv;
    inv.kind = Invocation::Kind::hook;
    inv.vm = "win11";
    inv.op = op;
    inv.sub = op == "release" ? "end" : "begin";
    inv.extra = "-";
    std::string err;
    phase = op;
    first_step = true;
    auto t0 = Clock::now();
    last = t0;
    if (run_hook_event(a, inv, "", err) != 0) {
      std::fprintf(stderr, "bench_fake: %s of %s failed: %s\n", op.c_str(), mode.name.c_str(), err.c_str());
      std::abort();
    }
    auto t1 = Clock::now();
    if (!undo_name.empty()) {
      m.add(undo_name, us(undo_start, t1));
      undo_name.clear();
    }
    m.add("event/" + mode.name + "/" + op, us(t0, t1));
    return us(t0, t1);
  };
  double total = 0;
  for (const char* op : {"prepare", "start", "started", "release"}) total += run(op);
  m.add("cycle/" + mode.name, total);
}

}  // namespace
}  // namespace gpuhook

int main(int argc, char** argv) {
  using namespace gpuhook;
  benchmark::Initialize(&argc, argv);
  for (const auto& mode : modes()) {
    Measure probe;
    cycle(mode, probe);  // the rows of this mode, in the order they happen
    std::vector<std::string> rows = {"cycle/" + mode.name};
    for (const auto& r : probe.order)
      if (r.rfind("cycle/", 0) != 0) rows.push_back(r);
    for (const auto& row : rows) {
      benchmark::RegisterBenchmark(row.c_str(), [mode, row](benchmark::State& st) {
        for (auto _ : st) {
          Measure m;
          cycle(mode, m);
          st.SetIterationTime(m.us[row] / 1e6);
        }
      })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond)
          ->Iterations(row.rfind("cycle/", 0) == 0 ? 400 : 200);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

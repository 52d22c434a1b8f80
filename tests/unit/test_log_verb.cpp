// `gpuhook log`, on real log text: events of two VMs run through the real hook path on the fake
// laptop, logged by the real spdlog file logger (the format the hook writes), then spread over
// rotated files the way spdlog rotates them, and read back by the verb. Also the built binary on
// a root directory, with --follow (across a rotation).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "app/log_events.h"
#include "app/verbs.h"
#include "harness.h"
#include "run_binary.h"

namespace gpuhook {
namespace {

using test::Harness;

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// A Harness whose events log through the real spdlog file logger into a temp file.
struct LoggedHost {
  Harness t;
  std::string dir, file;
  LoggedHost() {
    char tmpl[] = "/tmp/gpuhook-logverb.XXXXXX";
    dir = ::mkdtemp(tmpl);
    file = dir + "/gpuhook.log";
    build_reference_laptop(t.h);
    put_profile(t.h, "win11", test::kLaptopProfile);
    put_profile(t.h, "linux vm", test::kLaptopProfile);  // a name with a space: the tag still parses
  }
  ~LoggedHost() {
    ::unlink(file.c_str());
    ::rmdir(dir.c_str());
  }
  AppContext app() {
    AppContext a = t.app();
    a.open_log = [this](const GlobalConfig&, const std::string& tag, std::string*) {
      LogConfig c;
      c.file = file;
      c.syslog = false;
      c.tag = tag;
      std::string problem;
      return make_spdlog(c, &problem);
    };
    return a;
  }
  int event(const std::string& vm, const std::string& op) {
    AppContext a = app();
    Invocation inv;
    inv.kind = Invocation::Kind::hook;
    inv.vm = vm;
    inv.op = op;
    inv.sub = op == "release" || op == "stopped" ? "end" : "begin";
    inv.extra = "-";
    std::string err;
    return run_hook_event(a, inv, "", err);
  }
  void start(const std::string& vm) {
    for (const char* op : {"prepare", "start", "started"})
      if (event(vm, op) != 0) return;
  }
  void stop(const std::string& vm) {
    event(vm, "stopped");
    event(vm, "release");
  }
};

struct Out {
  int rc;
  std::string out, err;
};

Out log_verb(Harness& t, std::vector<std::string> args) {
  args.insert(args.begin(), {"gpuhook", "log"});
  Invocation inv = parse_args(args);
  EXPECT_EQ(inv.kind, Invocation::Kind::verb) << inv.error;
  AppContext a = t.app();
  std::ostringstream out, err;
  int rc = run_verb(a, inv, out, err);
  return {rc, out.str(), err.str()};
}

// Puts `text` into the fake host's log directory as the current file and two rotated ones, cut at
// line boundaries (so that events straddle the files, as after a real rotation).
void spread_over_rotated_files(Harness& t, const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream s(text);
  for (std::string l; std::getline(s, l);) lines.push_back(l + "\n");
  std::string parts[3];
  for (size_t i = 0; i < lines.size(); ++i) parts[i * 3 / lines.size()] += lines[i];
  t.h.fs.put_dir("/var/log/gpuhook", 0750);
  t.h.fs.put_file("/var/log/gpuhook/gpuhook.2.log", parts[0], 0640, 0);
  t.h.fs.put_file("/var/log/gpuhook/gpuhook.1.log", parts[1], 0640, 0);
  t.h.fs.put_file("/var/log/gpuhook/gpuhook.log", parts[2], 0640, 0);
}

// The history every test below reads: win11 runs; "linux vm" is refused (the GPU is win11's);
// win11 stops; win11's next prepare fails at binding 01:00.3 and is rolled back; a third start
// whose release cannot load nvidia back (INCOMPLETE), then a release that finishes.
std::string make_history(LoggedHost& h) {
  h.start("win11");
  EXPECT_EQ(h.event("linux vm", "prepare"), 1);
  h.stop("linux vm");
  h.stop("win11");
  h.t.h.kernel.fault_write("0000:01:00.3/driver_override", FakeKernel::Fault::fail);
  EXPECT_EQ(h.event("win11", "prepare"), 1);
  h.stop("win11");
  h.t.h.kernel.clear_faults();
  EXPECT_EQ(h.event("win11", "prepare"), 0);
  h.t.h.kernel.fault_command("modprobe nvidia", FakeKernel::Fault::fail, 5);
  h.event("win11", "release");
  h.t.h.kernel.clear_faults();
  h.event("win11", "release");
  return slurp(h.file);
}

TEST(LogVerb, ParsesTheLinesTheFileLoggerWrites) {
  LogLine l;
  ASSERT_TRUE(parse_log_line("2026-11-29T17:00:00.123+0000 info  [g prepare 260] step 1 ok (10 ms): claim 0000:01:00.0 for VM g", l));
  EXPECT_EQ(l.vm, "g");
  EXPECT_EQ(l.op, "prepare");
  EXPECT_EQ(l.pid, 260);
  EXPECT_EQ(l.level, "info");
  EXPECT_EQ(l.message, "step 1 ok (10 ms): claim 0000:01:00.0 for VM g");
  ASSERT_TRUE(parse_log_line("2026-11-29T17:00:00.123+0000 warning [a] b ] c release 7] undo 2 claim ok", l));
  EXPECT_EQ(l.vm, "a] b ] c");
  EXPECT_EQ(l.op, "release");
  EXPECT_EQ(l.message, "undo 2 claim ok");
  EXPECT_FALSE(parse_log_line("Nov 29 17:00:00 host gpuhook[1]: not our format", l));
  // A release whose check found something not back (engine.cpp's wording).
  std::vector<LogLine> lines;
  for (const char* t : {"event release end - (vm g)", "restoring 1 journaled step(s)", "undo 1 service.stop ok (3 ms)",
                        "release check: NOT BACK: gdm.service was running and is not",
                        "event release done in 9 ms"}) {
    ASSERT_TRUE(parse_log_line(std::string("2026-11-29T17:00:00.123+0000 info  [g release 9] ") + t, l));
    lines.push_back(l);
  }
  auto ev = group_events(lines);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].host_restored, 1);
  EXPECT_EQ(ev[0].host_checked, 0);
  ASSERT_EQ(ev[0].not_back.size(), 1u);
  EXPECT_EQ(ev[0].not_back[0], "gdm.service was running and is not");
  EXPECT_EQ(ev[0].undos.at(0).kind, "service.stop");
  EXPECT_EQ(ev[0].undos.at(0).ms, 3);
  EXPECT_FALSE(parse_log_line("", l));
}

TEST(LogVerb, TheLastEventByDefaultAndEveryEventOfOneVmAcrossRotatedFiles) {
  LoggedHost h;
  std::string text = make_history(h);
  ASSERT_GT(count(text, "\n"), 40u) << text;
  spread_over_rotated_files(h.t, text);

  // Default: the very last event of any VM, the release that finished.
  auto last = log_verb(h.t, {});
  EXPECT_EQ(last.rc, 0) << last.err;
  EXPECT_EQ(count(last.out, "== "), 1u) << last.out;
  EXPECT_NE(last.out.find("== win11 release"), std::string::npos) << last.out;
  EXPECT_NE(last.out.find("host restored: yes, every journaled step undone, and checked: the host is back"),
            std::string::npos) << last.out;

  // Every event of win11, in order, none of the other VM's; each ends with its summary.
  auto all = log_verb(h.t, {"win11", "--events", "0"});
  EXPECT_EQ(all.rc, 0);
  const char* order[] = {"win11 prepare", "win11 start ", "win11 started", "win11 stopped", "win11 release",
                         "win11 prepare", "win11 stopped", "win11 release", "win11 prepare", "win11 release",
                         "win11 release"};
  size_t pos = 0;
  for (const char* o : order) {
    size_t p = all.out.find(std::string("== ") + o, pos);
    ASSERT_NE(p, std::string::npos) << "missing or out of order: " << o << "\n" << all.out;
    pos = p + 1;
  }
  EXPECT_EQ(count(all.out, "== "), 11u) << all.out;
  EXPECT_EQ(all.out.find("linux vm"), std::string::npos);
  EXPECT_EQ(all.out.find("UNFINISHED"), std::string::npos) << all.out;

  // The first prepare straddles the rotated files: all its steps are found, with durations.
  auto json = log_verb(h.t, {"win11", "--events", "0", "--json"});
  std::vector<LogLine> lines;
  std::stringstream s(text);
  for (std::string l; std::getline(s, l);) {
    LogLine ll;
    if (parse_log_line(l, ll) && ll.vm == "win11") lines.push_back(ll);
  }
  auto events = group_events(lines);
  ASSERT_EQ(events.size(), 11u);
  EXPECT_EQ(events[0].result, "ok");
  EXPECT_EQ(events[0].summary, "ok, " + std::to_string(events[0].steps.size()) + " step(s)");
  EXPECT_GE(events[0].steps.size(), 8u);
  for (const auto& st : events[0].steps) EXPECT_GE(st.ms, 0) << st.text;
  EXPECT_NE(json.out.find("\"summary\":\"ok, " + std::to_string(events[0].steps.size()) + " step(s)\""),
            std::string::npos) << json.out;
  // The first release undid every step, newest first.
  EXPECT_EQ(events[4].undos.size(), events[0].steps.size());
  EXPECT_EQ(events[4].host_restored, 1);
  EXPECT_EQ(events[4].host_checked, 1);  // engine.cpp's release check ran and found the host back
  EXPECT_EQ(events[9].host_restored, 0);  // the INCOMPLETE release: no check
  EXPECT_EQ(events[9].host_checked, -1);
  EXPECT_EQ(events[4].undos.front().n, events[0].steps.back().n);
}

TEST(LogVerb, AFailedPrepareShowsTheFailingStepItsHintAndTheRollback) {
  LoggedHost h;
  spread_over_rotated_files(h.t, make_history(h));
  auto v = log_verb(h.t, {"win11", "--events", "3", "--json"});
  ASSERT_EQ(v.rc, 0) << v.err;
  // --events 3: the failed prepare's stopped, release, then... the failed prepare is the 6th of 11.
  EXPECT_EQ(count(v.out, "{\"vm\":\"win11\",\"op\""), 3u) << v.out;
  auto f = log_verb(h.t, {"win11", "--events", "6"});
  size_t p = f.out.find("== win11 prepare");
  ASSERT_NE(p, std::string::npos) << f.out;
  std::string block = f.out.substr(p, f.out.find("== ", p + 1) - p);
  EXPECT_NE(block.find("FAILED, rolled back"), std::string::npos) << block;
  EXPECT_NE(block.find("FAILED ("), std::string::npos) << block;          // the step, with its duration
  EXPECT_NE(block.find("0000:01:00.3"), std::string::npos) << block;       // which one
  EXPECT_NE(block.find("rolling back"), std::string::npos) << block;
  EXPECT_NE(block.find("undo 1 claim ok"), std::string::npos) << block;
  EXPECT_NE(block.find("   why: step "), std::string::npos) << block;
  // The JSON of the same event.
  auto j = log_verb(h.t, {"win11", "--events", "6", "--json"});
  EXPECT_NE(j.out.find("\"op\":\"prepare\",\"pid\""), std::string::npos);
  EXPECT_NE(j.out.find("\"result\":\"failed\""), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"status\":\"FAILED\""), std::string::npos) << j.out;
  // The INCOMPLETE release: not restored, and it says what to do.
  auto r = log_verb(h.t, {"win11", "--events", "2"});
  EXPECT_NE(r.out.find("INCOMPLETE, journal kept"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("host restored: NO"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("undo "), std::string::npos);
  EXPECT_NE(r.out.find("FAILED"), std::string::npos);
  auto rj = log_verb(h.t, {"win11", "--events", "2", "--json"});
  EXPECT_NE(rj.out.find("\"result\":\"incomplete\""), std::string::npos) << rj.out;
  EXPECT_NE(rj.out.find("\"host_restored\":false"), std::string::npos) << rj.out;
  EXPECT_NE(rj.out.find("\"host_restored\":true"), std::string::npos) << rj.out;
}

TEST(LogVerb, TheRefusedVmShowsTheRefusalAndItsHint) {
  LoggedHost h;
  spread_over_rotated_files(h.t, make_history(h));
  auto v = log_verb(h.t, {"linux vm", "--events", "0"});
  EXPECT_EQ(v.rc, 0) << v.err;
  EXPECT_EQ(count(v.out, "== "), 3u) << v.out;  // prepare, stopped, release
  EXPECT_NE(v.out.find("== linux vm prepare"), std::string::npos) << v.out;
  // The claim of the GPU is the step that fails; the rollback undoes it.
  EXPECT_NE(v.out.find("FAILED, rolled back"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("   why: step 1 FAILED (0 ms): claim 0000:01:00.0 for VM linux vm: 0000:01:00.0 is in use by VM win11"),
            std::string::npos) << v.out;
  EXPECT_NE(v.out.find("   what to do: shut down win11 first"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("undo 1 claim ok"), std::string::npos) << v.out;
  EXPECT_EQ(v.out.find("win11 prepare"), std::string::npos);
}

TEST(LogVerb, NoLogOrNoEventSaysWhyAndExits1) {
  Harness t;
  auto v = log_verb(t, {});
  EXPECT_EQ(v.rc, 1);
  EXPECT_NE(v.err.find("no log file in /var/log/gpuhook"), std::string::npos) << v.err;
  t.h.fs.put_dir("/var/log/gpuhook", 0750);
  t.h.fs.put_file("/var/log/gpuhook/gpuhook.log",
                  "2026-11-29T17:00:00.123+0000 info  [a prepare 1] event prepare begin - (vm a)\n", 0640, 0);
  v = log_verb(t, {"b"});
  EXPECT_EQ(v.rc, 1);
  EXPECT_NE(v.err.find("no event of VM b"), std::string::npos) << v.err;
  v = log_verb(t, {"a"});
  EXPECT_EQ(v.rc, 0);
  EXPECT_NE(v.out.find("UNFINISHED"), std::string::npos) << v.out;  // killed, or still running
  Invocation bad = parse_args({"gpuhook", "log", "--events", "x"});
  EXPECT_EQ(bad.kind, Invocation::Kind::usage_error);
  EXPECT_NE(bad.error.find("'x'"), std::string::npos);
  EXPECT_EQ(parse_args({"gpuhook", "log", "a", "b"}).kind, Invocation::Kind::usage_error);
  EXPECT_EQ(parse_args({"gpuhook", "log", "--follow", "--events=3"}).events, 3);
}

// The built binary on a root directory: reads the files there, and --follow prints lines appended
// while it waits (it runs until killed; run_binary's bound kills it).
TEST(LogVerb, TheBinaryFollowsNewLines) {
  char tmpl[] = "/tmp/gpuhook-logfollow.XXXXXX";
  std::string root = ::mkdtemp(tmpl);
  std::string dir = root + "/var/log/gpuhook";
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  {
    std::ofstream f(dir + "/gpuhook.log");
    f << "2026-11-29T17:00:00.123+0000 info  [a prepare 1] event prepare begin - (vm a)\n"
         "2026-11-29T17:00:00.130+0000 info  [a prepare 1] event prepare nothing to do in 7 ms\n";
  }
  std::thread writer([&] {
    ::usleep(600 * 1000);
    std::ofstream f(dir + "/gpuhook.log", std::ios::app);
    f << "2026-11-29T17:00:01.000+0000 info  [b release 2] event release end - (vm b)\n"
         "2026-11-29T17:00:01.000+0000 error [b release 2] undo 3 module.unload FAILED (4 ms): modprobe nvidia failed\n"
         "2026-11-29T17:00:01.000+0000 info  [a release 3] event release end - (vm a)\n";
    f.close();
    // Then the file is rotated as spdlog does it (renamed to gpuhook.1.log, a new one started).
    ::usleep(600 * 1000);
    ASSERT_EQ(::rename((dir + "/gpuhook.log").c_str(), (dir + "/gpuhook.1.log").c_str()), 0);
    std::ofstream g(dir + "/gpuhook.log");
    g << "2026-11-29T17:00:02.000+0000 info  [b prepare 4] event prepare begin - (vm b)\n";
  });
  auto r = test::run_binary(GPUHOOK_BINARY, {"gpuhook", "--root", root, "log", "b", "--follow"}, "", 2500);
  writer.join();
  EXPECT_TRUE(r.timed_out) << "--follow returned: " << r.out << r.err;
  EXPECT_NE(r.out.find("== b release (pid 2)"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("! undo 3 module.unload FAILED (4 ms): modprobe nvidia failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("== b prepare (pid 4)"), std::string::npos) << "the line after the rotation:\n" << r.out;
  EXPECT_EQ(r.out.find("[a "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("== a "), std::string::npos) << r.out;  // another VM's lines are not followed
  auto once = test::run_binary(GPUHOOK_BINARY, {"gpuhook", "--root", root, "log", "--events", "0", "--json"}, "");
  EXPECT_EQ(once.exit_code, 0) << once.err;
  EXPECT_EQ(once.out.rfind("{\"events\":[{\"vm\":\"a\",\"op\":\"prepare\"", 0), 0u) << once.out;
  EXPECT_NE(once.out.find("\"summary\":\"nothing to do\",\"duration_ms\":7"), std::string::npos) << once.out;
  // The log is root's (0640): another user is told why and what to do, not "no log file".
  ASSERT_EQ(std::system(("chmod 0755 " + root + " " + root + "/var " + root + "/var/log " + dir + " && chmod 0640 " + dir +
                         "/gpuhook.log").c_str()), 0);
  auto nobody = test::run_binary("/usr/bin/setpriv", {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                                      GPUHOOK_BINARY, "--root", root, "log"}, "");
  EXPECT_EQ(nobody.exit_code, 1) << nobody.out << nobody.err;
  EXPECT_NE(nobody.err.find("cannot read /var/log/gpuhook/gpuhook.log"), std::string::npos) << nobody.err;
  EXPECT_NE(nobody.err.find("sudo gpuhook log"), std::string::npos) << nobody.err;
  ASSERT_EQ(std::system(("rm -rf " + root).c_str()), 0);
}

}  // namespace
}  // namespace gpuhook

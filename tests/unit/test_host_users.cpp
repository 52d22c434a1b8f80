// The code that uses the host layer's guarantees: holders signal a process by pid and start
// time (never a process that reused the pid), the profile loader trusts what it read (the fstat
// of the descriptor it read, not a separate lstat), and the console and MUX writes are guarded
// (a driver that does not return costs the step's budget, not the hook).
#include <gtest/gtest.h>
#include <signal.h>

#include "engine/step.h"
#include "fake/fake_host.h"
#include "host/log.h"
#include "profile/profile.h"
#include "steps/steps.h"

namespace gpuhook {
namespace {

struct StepRun {
  FakeHost h;
  MemoryLog log;
  Timeouts timeouts;
  std::string vm = "win11";
  Host host = h.host();
  Deadline deadline{h.clock, 30000};
  StepContext ctx() { return StepContext{host, log, deadline, vm, timeouts, "/run/gpuhook"}; }
};

TEST(Holders, APidReusedBetweenScanAndSignalIsNeverSignalled) {
  StepRun t;
  build_single_gpu_desktop(t.h);
  t.h.kernel.add_process({1300, "game", {"/dev/dri/renderD128"}, false, ""});
  auto step = make_holders({"0000:0b:00.0"}, true, false);
  auto ctx = t.ctx();
  auto rec = step->record(ctx);
  ASSERT_TRUE(rec);
  ASSERT_NE((*rec)["holders"].find("1300:game"), std::string::npos) << (*rec)["holders"];
  // The game exits; another process gets pid 1300 (another start time) before apply().
  t.h.kernel.kill(1300, SIGKILL);
  t.h.kernel.add_process({1300, "innocent", {}, false, ""});
  t.h.kernel.set_start_time(1300, "999999");
  ASSERT_TRUE(step->apply(ctx, *rec)) << t.log.text();
  EXPECT_TRUE(t.h.kernel.process_alive(1300)) << "the process that reused the pid was not signalled";
}

TEST(Holders, TheHolderItselfIsTerminated) {
  // The counterpart of the test above: with its own start time the holder does get the signal.
  StepRun t;
  build_single_gpu_desktop(t.h);
  t.h.kernel.add_process({1300, "game", {"/dev/dri/renderD128"}, false, ""});
  auto step = make_holders({"0000:0b:00.0"}, true, false);
  auto ctx = t.ctx();
  auto rec = step->record(ctx);
  ASSERT_TRUE(rec);
  ASSERT_TRUE(step->apply(ctx, *rec)) << t.log.text();
  EXPECT_FALSE(t.h.kernel.process_alive(1300));
}

// An Fs whose lstat lies: it says the profile is a safe root file, while the file that is
// really opened (read_nofollow) is world-writable. Trust must follow the opened file.
class LyingStatFs : public FakeFs {
 public:
  FileInfo stat(const std::string& path, bool follow) override {
    FileInfo fi = FakeFs::stat(path, follow);
    if (path == "/etc/gpuhook/vms/vm.toml") fi.mode = 0644, fi.uid = 0, fi.type = FileType::regular;
    return fi;
  }
};

TEST(ProfileTrust, IsDecidedOnTheDescriptorThatIsRead) {
  LyingStatFs fs;
  fs.put_dir("/etc/gpuhook/vms", 0755);
  fs.put_file("/etc/gpuhook/vms/vm.toml", "[gpu]\naddress = \"0000:01:00.0\"\n", 0666, 0);
  ConfigErrors e;
  EXPECT_FALSE(load_profile(fs, "/etc/gpuhook/vms/vm.toml", Timeouts{}, &e));
  EXPECT_NE(e.text().find("is writable by group or others (mode 0666)"), std::string::npos) << e.text();
  // A link where the profile should be is refused, whatever lstat says.
  fs.put_file("/tmp/elsewhere.toml", "[gpu]\naddress = \"0000:01:00.0\"\n", 0644, 0);
  fs.put_link("/etc/gpuhook/vms/vm.toml", "/tmp/elsewhere.toml");
  e = {};
  EXPECT_FALSE(load_profile(fs, "/etc/gpuhook/vms/vm.toml", Timeouts{}, &e));
  EXPECT_NE(e.text().find("is a symbolic link"), std::string::npos) << e.text();
}

TEST(GuardedSwitches, AVtconsoleOrSwitcherooWriteThatHangsCostsItsBudgetNotAnHour) {
  // Unguarded, a hang in these writes would block the hook until the watchdog (the fake clock
  // jumps an hour). Guarded, the step fails at its unbind budget, saying the write may complete.
  StepRun t;
  build_reference_laptop(t.h);
  t.h.kernel.enable_switcheroo("0000:00:02.0", "0000:01:00.0");
  t.h.kernel.add_vtcon("vtcon1", "(M) frame buffer device", true);
  t.timeouts.unbind_ms = 2000;
  auto ctx = t.ctx();
  for (auto& step : {make_switcheroo(), make_vtcon_unbind("vtcon1")}) {
    auto rec = step->record(ctx);
    ASSERT_TRUE(rec) << step->kind();
    t.h.kernel.fault_write(step->kind() == "mux.switcheroo" ? "vgaswitcheroo/switch" : "vtcon1/bind",
                           FakeKernel::Fault::hang);
    Millis t0 = t.h.clock.now_ms();
    Status s = step->apply(ctx, *rec);
    ASSERT_FALSE(s) << step->kind();
    EXPECT_TRUE(s.error().timed_out) << step->kind();
    EXPECT_TRUE(s.error().may_complete) << step->kind();
    EXPECT_LE(t.h.clock.now_ms() - t0, 2001) << step->kind();
  }
}

}  // namespace
}  // namespace gpuhook

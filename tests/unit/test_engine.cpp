// The engine on the fake reference laptop: prepare binds the whole group to vfio-pci, release
// restores the host exactly, and every failure or kill leaves (after release) the host as before.
#include <gtest/gtest.h>

#include "app/hook_event.h"
#include "harness.h"
#include "engine/engine.h"
#include "plan/planner.h"
#include "fake/fake_host.h"
#include "profile/profile.h"

namespace gpuhook {
namespace {

using test::KilledForTest;

struct Harness : test::Harness {
  Harness() { build_reference_laptop(h); }
};

TEST(Engine, PrepareBindsTheWholeGroupAndReleaseRestoresEverything) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  auto before = t.h.state();
  std::string err;
  ASSERT_EQ(t.event("win11", "prepare", &err), 0) << err << t.log.text();
  for (const char* a : {"0000:01:00.0", "0000:01:00.1", "0000:01:00.2", "0000:01:00.3"})
    EXPECT_EQ(t.h.kernel.driver_of(a), "vfio-pci") << a;
  EXPECT_EQ(t.h.kernel.driver_of("0000:00:01.0"), "pcieport") << "bridges are never touched";
  EXPECT_EQ(t.h.kernel.driver_of("0000:00:02.0"), "i915");
  EXPECT_TRUE(t.h.fs.exists("/dev/vfio/1"));
  EXPECT_FALSE(t.h.kernel.module_loaded("nvidia"));
  EXPECT_FALSE(t.h.kernel.unit_active("nvidia-persistenced.service"));
  EXPECT_TRUE(t.h.fs.exists("/run/gpuhook/win11.journal"));
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.restored_diff(before), "");
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/win11.journal"));
  EXPECT_TRUE(t.log.contains("step 1 ok"));
}

TEST(Engine, DriverOverrideIsClearedWithANewlineNotAnEmptyWrite) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  ASSERT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(*t.h.fs.read("/sys/bus/pci/devices/0000:01:00.0/driver_override"), "(null)\n");
  bool newline_write = false;
  for (const auto& w : t.h.fs.writes)
    if (w.find("0000:01:00.0/driver_override <- ") != std::string::npos && w.substr(w.size() - 4) == " <- ")
      newline_write = true;
  EXPECT_TRUE(newline_write) << "the clearing write is a lone newline (trimmed to empty in the log)";
}

TEST(Engine, ReleaseTwiceAndReleaseWithoutJournalAreHarmless) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  auto before = t.h.state();
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.restored_diff(before), "");
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook")) << "a release with nothing to restore creates no file";
  ASSERT_EQ(t.event("win11", "prepare"), 0);
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.restored_diff(before), "");
}

// For every write the prepare makes, a failure injected at that write rolls the host back.
TEST(Engine, AFailureAtAnyWriteOfPrepareLeavesTheHostAsBefore) {
  Harness probe;
  put_profile(probe.h, "win11", test::kLaptopProfile);
  ASSERT_EQ(probe.event("win11", "prepare"), 0);
  std::vector<std::string> writes = probe.h.fs.writes;
  ASSERT_GT(writes.size(), 10u);
  for (size_t i = 0; i < writes.size(); ++i) {
    Harness t;
    put_profile(t.h, "win11", test::kLaptopProfile);
    auto before = t.h.state();
    std::string path = writes[i].substr(0, writes[i].find(" <- "));
    // Fail the n-th write to that path (the same path may be written more than once).
    int nth = 0;
    for (size_t k = 0; k <= i; ++k) nth += writes[k].rfind(path + " <- ", 0) == 0;
    if (nth > 1) continue;  // covered by its first occurrence
    t.h.kernel.fault_write(path, FakeKernel::Fault::fail);
    std::string err;
    int rc = t.event("win11", "prepare", &err);
    EXPECT_EQ(rc, 1) << "write " << i << ": " << writes[i];
    EXPECT_NE(err.find("gpuhook: cannot prepare VM win11"), std::string::npos) << err;
    t.event("win11", "release");  // libvirt sends release after a refused prepare
    EXPECT_EQ(t.restored_diff(before), "") << "fault at write " << i << ": " << writes[i] << "\n" << t.log.text();
  }
}

// A kill at every step (before and after its change), then release, restores the host.
TEST(Engine, AKillAtAnyStepThenReleaseRestoresTheHost) {
  for (const char* point : {"before-apply", "after-apply"}) {
    for (int n = 1; n < 30; ++n) {
      Harness t;
      put_profile(t.h, "win11", test::kLaptopProfile);
      auto before = t.h.state();
      bool killed = false;
      FaultHook kill = [&](std::string_view p, int seq, const std::string&) {
        if (p == point && seq == n) {
          killed = true;
          throw KilledForTest{};
        }
      };
      try {
        t.event("win11", "prepare", nullptr, kill);
      } catch (const KilledForTest&) {
      }
      if (!killed) break;  // past the last step
      EXPECT_TRUE(t.h.fs.exists("/run/gpuhook/win11.journal"));
      EXPECT_EQ(t.event("win11", "release"), 0);
      EXPECT_EQ(t.restored_diff(before), "") << point << " step " << n << "\n" << t.log.text();
    }
  }
}

TEST(Engine, ASecondVmIsRefusedNamingTheFirst) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  put_profile(t.h, "linux", test::kLaptopProfile);
  ASSERT_EQ(t.event("win11", "prepare"), 0);
  auto during = t.h.state();
  std::string err;
  EXPECT_EQ(t.event("linux", "prepare", &err), 1);
  EXPECT_NE(err.find("0000:01:00.0 is in use by VM win11"), std::string::npos) << err;
  EXPECT_EQ(t.event("linux", "release"), 0);
  EXPECT_EQ(t.restored_diff(during), "") << "the refused VM's release must not touch win11's devices";
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "vfio-pci");
}

TEST(Engine, AHangingUnbindEndsInACleanFailureWithinTheDeadline) {
  Harness t;
  put_profile(t.h, "win11", std::string(test::kLaptopProfile) + "[timeouts]\nevent = 20\nunbind = 3\n");
  auto before = t.h.state();
  t.h.kernel.fault_write("/sys/bus/pci/drivers/xhci_hcd/unbind", FakeKernel::Fault::hang);
  Millis t0 = t.h.clock.now_ms();
  std::string err;
  EXPECT_EQ(t.event("win11", "prepare", &err), 1);
  EXPECT_LE(t.h.clock.now_ms() - t0, 20000) << "the event deadline holds";
  EXPECT_NE(err.find("cannot unbind 0000:01:00.2 from xhci_hcd"), std::string::npos) << err;
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.restored_diff(before), "") << t.log.text();
}

TEST(Engine, NvidiaHoldersAreRefusedBeforeAnyChange) {
  Harness t;
  put_profile(t.h, "win11", "[gpu]\naddress = \"0000:01:00.0\"\n");
  t.h.kernel.add_process({3000, "steam", {"/dev/nvidia0"}, false, ""});
  auto before = t.h.state();
  std::string err;
  EXPECT_EQ(t.event("win11", "prepare", &err), 1);
  EXPECT_NE(err.find("steam (3000) holds /dev/nvidia0"), std::string::npos) << err;
  EXPECT_NE(err.find("nothing on the host was changed"), std::string::npos) << err;
  EXPECT_EQ(t.restored_diff(before), "");
  EXPECT_TRUE(t.log.contains("event prepare refused, nothing changed")) << t.log.text();
}

TEST(Engine, ReconnectNeverFailsAndReportsDifferences) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  ASSERT_EQ(t.event("win11", "prepare"), 0);
  EXPECT_EQ(t.event("win11", "reconnect"), 0);
  EXPECT_FALSE(t.log.contains("differ"));
  // Someone gave a function back by hand while the VM ran.
  ASSERT_TRUE(t.h.fs.write("/sys/bus/pci/drivers/vfio-pci/unbind", "0000:01:00.1"));
  EXPECT_EQ(t.event("win11", "reconnect"), 0);
  EXPECT_TRUE(t.log.contains("0000:01:00.1 should be on vfio-pci but is unbound")) << t.log.text();
}

TEST(Engine, ReleaseUsesTheJournalNotTheEditedProfile) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  auto before = t.h.state();
  ASSERT_EQ(t.event("win11", "prepare"), 0);
  put_profile(t.h, "win11", "[gpu]\naddress = \"0000:00:02.0\"\n");  // edited while the VM ran
  auto after_edit = before;
  after_edit["/etc/gpuhook/vms/win11.toml"] = "file:[gpu]\naddress = \"0000:00:02.0\"\n";
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.restored_diff(after_edit), "");
}

}  // namespace
}  // namespace gpuhook

// module.load on the fake kernel whose module graph and `modprobe -r` behaviour are Debian 12's:
// `modprobe -r vfio-pci` alone leaves vfio, vfio_iommu_type1, vfio_virqfd and irqbypass loaded
// (found by tests/realkernel scenario 1 on Debian's 6.1 kernel). Release must remove what the
// prepare's `modprobe vfio-pci` brought along, and leave alone what something uses by then.
#include <gtest/gtest.h>

#include "harness.h"

#include "app/args.h"
#include "app/hook_event.h"
#include "app/verbs.h"
#include "fake/fake_host.h"

namespace gpuhook {
namespace {

struct ModHarness {
  FakeHost h;
  MemoryLog log;
  // unload_vfio: the profile asks for vfio-pci to be unloaded on release (the default keeps it).
  explicit ModHarness(bool unload_vfio = true) {
    build_reference_laptop(h);
    put_profile(h, "win11", std::string(R"([gpu]
address = "0000:01:00.0"
[host]
stop_services = ["nvidia-persistenced.service"]
unload_modules = ["nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"]
)") + (unload_vfio ? "unload_vfio = true\n" : ""));
  }
  int event(const std::string& op) { return test::run_event(h.host(), log, "win11", op); }
  int cli(std::vector<std::string> args, std::string* out = nullptr) {
    args.insert(args.begin(), "gpuhook");
    Invocation inv = parse_args(args);
    AppContext a = test::make_app(h.host(), log);
    std::ostringstream o, e;
    int rc = run_verb(a, inv, o, e);
    if (out) *out = o.str() + e.str();
    return rc;
  }
};

const char* kVfioFamily[] = {"vfio_pci", "vfio_pci_core", "vfio", "vfio_iommu_type1", "vfio_virqfd", "irqbypass"};

TEST(ModuleLoad, ReleaseUnloadsEverythingModprobeLoadedWithVfioPci) {
  ModHarness t;
  for (const char* m : kVfioFamily) ASSERT_FALSE(t.h.kernel.module_loaded(m)) << m;
  ASSERT_EQ(t.event("prepare"), 0) << t.log.text();
  for (const char* m : kVfioFamily) EXPECT_TRUE(t.h.kernel.module_loaded(m)) << m;
  ASSERT_EQ(t.event("release"), 0);
  for (const char* m : kVfioFamily) EXPECT_FALSE(t.h.kernel.module_loaded(m)) << m << "\n" << t.log.text();
  EXPECT_FALSE(t.h.fs.exists("/dev/vfio/vfio"));
}

TEST(ModuleLoad, WhatCameAlongButIsInUseAtReleaseStaysLoaded) {
  ModHarness t;
  t.h.kernel.add_module({"kvm_vfio_user", {"vfio"}, "", false, false});
  ASSERT_EQ(t.event("prepare"), 0) << t.log.text();
  FakeRunner& r = t.h.runner;
  ASSERT_TRUE(r.run({"modprobe", "kvm_vfio_user"}, Deadline(t.h.clock, 1000))->success());
  ASSERT_EQ(t.event("release"), 0);
  EXPECT_FALSE(t.h.kernel.module_loaded("vfio_pci"));
  EXPECT_TRUE(t.h.kernel.module_loaded("vfio")) << "a module loaded since depends on it";
  EXPECT_TRUE(t.h.kernel.module_loaded("kvm_vfio_user"));
  EXPECT_FALSE(t.h.kernel.module_loaded("irqbypass"));
  EXPECT_TRUE(t.log.contains("left loaded, in use: vfio")) << t.log.text();
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/win11.journal")) << "not an undo failure";
}

// The default ([host] unload_vfio = false): the release leaves vfio-pci and what came with it
// loaded, since the next start needs them (700 ms of modprobe in the real-kernel guest), and
// hands them to the host's journal: `status` says so, `restore --all-modules` gives back exactly
// the module set, and the next start loads nothing.
TEST(ModuleLoad, ByDefaultReleaseKeepsVfioPciLoadedOwnedByTheHostJournal) {
  ModHarness t(false);
  auto before = t.h.state();
  ASSERT_EQ(t.event("prepare"), 0) << t.log.text();
  auto j = t.h.fs.read("/run/gpuhook/win11.journal");
  ASSERT_TRUE(j);
  EXPECT_NE(j->find("keep_loaded=1"), std::string::npos) << "the journal, not the profile of release time, decides\n" << *j;
  // A person flips the key while the VM runs: the release follows what prepare recorded.
  ModHarness flipped(true);
  put_profile(t.h, "win11", *flipped.h.fs.read("/etc/gpuhook/vms/win11.toml"));
  ASSERT_EQ(t.event("release"), 0);
  for (const char* m : kVfioFamily) EXPECT_TRUE(t.h.kernel.module_loaded(m)) << m << "\n" << t.log.text();
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "nvidia");
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/win11.journal"));
  auto hj = t.h.fs.read("/run/gpuhook/.host.journal");
  ASSERT_TRUE(hj) << t.log.text();
  EXPECT_NE(hj->find("kept=1"), std::string::npos) << *hj;
  EXPECT_TRUE(t.log.contains("module vfio-pci left loaded: [host] unload_vfio = false when VM win11 started")) << t.log.text();
  std::string st;
  EXPECT_EQ(t.cli({"status"}, &st), 0) << st;
  EXPECT_NE(st.find("vfio-pci (loaded for VM win11): kept loaded ([host] unload_vfio = false); `gpuhook restore --all-modules` unloads it"),
            std::string::npos) << st;
  EXPECT_EQ(t.cli({"--json", "status"}, &st), 0);
  EXPECT_NE(st.find(R"({"host_modules":[{"module":"vfio-pci","loaded_for":"win11","kept":true}])"), std::string::npos) << st;
  // Another VM's release (nothing of its own to undo) leaves the kept module alone.
  ASSERT_EQ(t.event("prepare"), 0) << t.log.text();
  j = t.h.fs.read("/run/gpuhook/win11.journal");
  ASSERT_TRUE(j);
  EXPECT_EQ(j->find("module.load"), std::string::npos) << "loaded already: the second start loads nothing\n" << *j;
  ASSERT_EQ(t.event("release"), 0);
  EXPECT_TRUE(t.h.kernel.module_loaded("vfio_pci"));
  // restore --all-modules: the exact module set of before.
  std::string out;
  EXPECT_EQ(t.cli({"restore", "--all-modules"}, &out), 0) << out;
  EXPECT_NE(out.find("the modules gpuhook loaded and kept are unloaded."), std::string::npos) << out;
  for (const char* m : kVfioFamily) EXPECT_FALSE(t.h.kernel.module_loaded(m)) << m << "\n" << t.log.text();
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/.host.journal"));
  auto after = t.h.state();
  before.erase("/etc/gpuhook/vms/win11.toml"), after.erase("/etc/gpuhook/vms/win11.toml");  // flipped above
  EXPECT_EQ(diff_states(before, after), "");
  EXPECT_EQ(t.cli({"restore", "--all-modules"}, &out), 0) << out;
  EXPECT_NE(out.find("gpuhook kept no module loaded"), std::string::npos) << out;
}

// A failed prepare's rollback leaves the host exactly as before: nothing is kept then.
TEST(ModuleLoad, ARolledBackPrepareUnloadsWhatItLoadedEvenByDefault) {
  ModHarness t(false);
  auto before = t.h.state();
  t.h.kernel.fault_write("0000:01:00.1/driver_override", FakeKernel::Fault::fail);
  EXPECT_NE(t.event("prepare"), 0);
  EXPECT_FALSE(t.h.kernel.module_loaded("vfio_pci")) << t.log.text();
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/.host.journal"));
  EXPECT_EQ(diff_states(before, t.h.state()), "") << t.log.text();
}

// restore --all-modules never unloads a module a device uses (a running VM's GPU on vfio-pci):
// it says so and keeps the record.
TEST(ModuleLoad, RestoreAllModulesLeavesAModuleADeviceUses) {
  ModHarness t(false);
  ASSERT_EQ(t.event("prepare"), 0) << t.log.text();
  ASSERT_EQ(t.event("release"), 0);
  ASSERT_EQ(t.event("prepare"), 0) << t.log.text();  // the device is on vfio-pci again
  std::string out;
  EXPECT_EQ(t.cli({"restore", "--all-modules"}, &out), 0) << out;
  EXPECT_NE(out.find("module vfio-pci stays loaded: a device uses it"), std::string::npos) << out;
  EXPECT_TRUE(t.h.kernel.module_loaded("vfio_pci"));
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "vfio-pci");
  EXPECT_TRUE(t.h.fs.exists("/run/gpuhook/.host.journal"));
  // The VM's own restore with --all-modules: its devices back, then the kept modules go.
  EXPECT_EQ(t.cli({"restore", "win11", "--all-modules"}, &out), 0) << out;
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "nvidia");
  for (const char* m : kVfioFamily) EXPECT_FALSE(t.h.kernel.module_loaded(m)) << m << "\n" << t.log.text();
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/.host.journal"));
}

// An old journal (before the key) has no keep_loaded field: its release unloads, as that
// prepare promised.
TEST(ModuleLoad, AJournalWithoutKeepLoadedIsUnloadedAsBefore) {
  ModHarness t(false);
  ASSERT_EQ(t.event("prepare"), 0) << t.log.text();
  auto j = t.h.fs.read("/run/gpuhook/win11.journal");
  ASSERT_TRUE(j);
  std::string old = *j;
  for (size_t p; (p = old.find(" keep_loaded=1")) != std::string::npos;) old.erase(p, 14);
  ASSERT_EQ(old.find("keep_loaded"), std::string::npos) << old;
  t.h.fs.put_file("/run/gpuhook/win11.journal", old, 0600, 0);
  ASSERT_EQ(t.event("release"), 0);
  EXPECT_FALSE(t.h.kernel.module_loaded("vfio_pci")) << t.log.text();
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/.host.journal"));
}

TEST(ModuleLoad, TheJournalRecordsWhatTheLoadBringsAlong) {
  ModHarness t;
  ASSERT_EQ(t.event("prepare"), 0) << t.log.text();
  auto j = t.h.fs.read("/run/gpuhook/win11.journal");
  ASSERT_TRUE(j);
  EXPECT_NE(j->find("with=irqbypass,vfio_virqfd,vfio,vfio_iommu_type1,vfio_pci_core"), std::string::npos) << *j;
}

}  // namespace
}  // namespace gpuhook

namespace gpuhook {
namespace {

// `nvidia-drm` and `nvidia_drm` are one module to kmod; the planner used to look for
// /sys/module/nvidia-drm, find nothing and skip the unload silently ("not loaded"), so the
// prepare then hung or failed in the unbind. Names are normalised in one place (sysinfo/kmod.h).
TEST(ModuleNames, DashedNamesInTheProfileAreUnloadedAndLoadedBack) {
  FakeHost h;
  MemoryLog log;
  build_reference_laptop(h);
  put_profile(h, "win11", R"([gpu]
address = "0000:01:00.0"
[host]
stop_services = ["nvidia-persistenced.service"]
unload_modules = ["nvidia-drm", "nvidia-modeset", "nvidia-uvm", "nvidia"]
unload_vfio = true
)");
  auto before = h.state();
  ASSERT_EQ(test::run_event(h.host(), log, "win11", "prepare"), 0) << log.text();
  EXPECT_FALSE(h.kernel.module_loaded("nvidia_drm")) << log.text();
  EXPECT_FALSE(h.kernel.module_loaded("nvidia_modeset"));
  EXPECT_FALSE(log.contains("not loaded: nothing to unload")) << log.text();
  ASSERT_EQ(test::run_event(h.host(), log, "win11", "release"), 0);
  EXPECT_EQ(diff_states(before, h.state()), "");
}

}  // namespace
}  // namespace gpuhook

#include "../fuzz/host_guard.h"
#include "plan/planner.h"
#include "profile/profile.h"

namespace gpuhook {
namespace {

// Issue 14, read only what the plan needs: the planner's stages (group, card, holders, display)
// each asked for the card's functions again, and every ask read all ten attributes: in the
// real-kernel guest 58 file-system calls per function of one prepare. Now each function's
// attributes are read once per plan (PciSysfs::Memo), and the plan is the same.
TEST(PlanReads, EachAttributeOfTheCardsFunctionsIsReadOncePerPlan) {
  FakeHost h;
  build_reference_laptop(h);
  test::GuardedHost g(h);
  std::map<std::string, int> reads;
  g.fs.reads = &reads;
  ConfigErrors e;
  auto p = parse_profile(test::kLaptopProfile, "/etc/gpuhook/vms/win11.toml", {}, &e);
  ASSERT_TRUE(p) << e.text();
  Host host = g.host();
  Plan plan = make_plan(host, *p, nullptr, "win11");
  ASSERT_TRUE(plan.refusals.empty()) << plan.refusals[0].message();
  ASSERT_GE(plan.prepare.size(), 4u);
  for (const char* a : {"0000:01:00.0", "0000:01:00.1"})
    for (const char* attr : {"vendor", "device", "class", "driver_override", "subsystem_vendor"}) {
      std::string path = std::string("/sys/bus/pci/devices/") + a + "/" + attr;
      EXPECT_EQ(reads[path], 1) << path;
    }
}

}  // namespace
}  // namespace gpuhook

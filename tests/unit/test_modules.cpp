// module.load on the fake kernel whose module graph and `modprobe -r` behaviour are Debian 12's:
// `modprobe -r vfio-pci` alone leaves vfio, vfio_iommu_type1, vfio_virqfd and irqbypass loaded
// (found by tests/realkernel scenario 1 on Debian's 6.1 kernel). Release must remove what the
// prepare's `modprobe vfio-pci` brought along, and leave alone what something uses by then.
#include <gtest/gtest.h>

#include "harness.h"

#include "app/hook_event.h"
#include "fake/fake_host.h"

namespace gpuhook {
namespace {

struct ModHarness {
  FakeHost h;
  MemoryLog log;
  ModHarness() {
    build_reference_laptop(h);
    put_profile(h, "win11", R"([gpu]
address = "0000:01:00.0"
[host]
stop_services = ["nvidia-persistenced.service"]
unload_modules = ["nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"]
)");
  }
  int event(const std::string& op) { return test::run_event(h.host(), log, "win11", op); }
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

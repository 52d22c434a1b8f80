// The CLI verbs that work from profiles and journals (plan, status, restore), and the domain's
// managed='no' hostdevs joining the plan.
#include <gtest/gtest.h>

#include <sstream>

#include "app/verbs.h"
#include "harness.h"

namespace gpuhook {
namespace {

using test::Harness;

struct Verb {
  int rc;
  std::string out, err;
};

Verb run(Harness& t, std::vector<std::string> argv) {
  argv.insert(argv.begin(), "gpuhook");
  Invocation inv = parse_args(argv);
  EXPECT_EQ(inv.kind, Invocation::Kind::verb) << inv.error;
  AppContext a = t.app();
  std::ostringstream out, err;
  int rc = run_verb(a, inv, out, err);
  return {rc, out.str(), err.str()};
}

TEST(PlanVerb, ListsTheExactStepsInOrderAndChangesNothing) {
  Harness t;
  build_reference_laptop(t.h);
  put_profile(t.h, "win11", test::kLaptopProfile);
  auto before = t.h.state();
  auto v = run(t, {"plan", "win11"});
  EXPECT_EQ(v.rc, 0) << v.err;
  EXPECT_EQ(t.restored_diff(before), "");
  const char* expected_order[] = {"claim 0000:01:00.0 for VM win11", "stop nvidia-persistenced.service",
                                  "refuse on processes holding the GPU", "unload module nvidia_drm",
                                  "unload module nvidia", "load module vfio-pci", "bind 0000:01:00.0 to vfio-pci",
                                  "bind 0000:01:00.3 to vfio-pci"};
  size_t pos = 0;
  for (const char* s : expected_order) {
    size_t p = v.out.find(s, pos);
    EXPECT_NE(p, std::string::npos) << "missing or out of order: " << s << "\n" << v.out;
    if (p != std::string::npos) pos = p;
  }
  auto j = run(t, {"plan", "win11", "--json"});
  EXPECT_EQ(j.rc, 0);
  EXPECT_NE(j.out.find("\"devices\":[\"0000:01:00.0\",\"0000:01:00.1\",\"0000:01:00.2\",\"0000:01:00.3\"]"), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("{\"kind\":\"pci.vfio\",\"description\":\"bind 0000:01:00.0 to vfio-pci\"}"), std::string::npos);
}

TEST(PlanVerb, SaysWhyAPrepareWouldRefuse) {
  Harness t;
  build_reference_laptop(t.h);
  // A Wi-Fi card in the dGPU's group, as on some real laptops.
  t.h.kernel.add_module({"iwlwifi", {}, "iwlwifi", false, true});
  t.h.kernel.add_pci({"0000:3b:00.0", "8086", "2723", "8086", "0084", "028000", "iwlwifi", "iwlwifi", 1});
  put_profile(t.h, "win11", test::kLaptopProfile);
  auto v = run(t, {"plan", "win11"});
  EXPECT_EQ(v.rc, 1);
  EXPECT_NE(v.out.find("prepare would REFUSE"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("0000:3b:00.0 Network controller [0280] 8086:2723 on iwlwifi"), std::string::npos) << v.out;
  std::string with_also = test::kLaptopProfile;
  with_also.insert(with_also.find("[host]"), "also = [\"0000:3b:00.0\"]\n");
  put_profile(t.h, "win11", with_also);
  v = run(t, {"plan", "win11"});
  EXPECT_EQ(v.rc, 0) << v.out;
  EXPECT_NE(v.out.find("bind 0000:3b:00.0 to vfio-pci"), std::string::npos) << "listed in [gpu] also: it goes along";
}

TEST(PlanVerb, AnIsaBridgeWithADriverInTheGroupBlocksButPciBridgesDoNot) {
  Harness t;
  build_reference_laptop(t.h);
  // An ISA bridge bound to its driver shares the dGPU's group (no ACS): VFIO would refuse the group.
  t.h.kernel.add_module({"lpc_ich", {}, "lpc_ich", false, true});
  t.h.kernel.add_pci({"0000:00:1f.0", "8086", "a30e", "1558", "8550", "060100", "lpc_ich", "lpc_ich", 1});
  put_profile(t.h, "win11", test::kLaptopProfile);
  auto v = run(t, {"plan", "win11"});
  EXPECT_EQ(v.rc, 1);
  EXPECT_NE(v.out.find("0000:00:1f.0 ISA bridge [0601] 8086:a30e on lpc_ich"), std::string::npos) << v.out;
  EXPECT_EQ(v.out.find("0000:00:01.0"), std::string::npos) << "the root port (0604) is not a blocker\n" << v.out;
  // Without a driver VFIO accepts it: noted, left alone, not given to the VM.
  ASSERT_TRUE(t.h.fs.write("/sys/bus/pci/drivers/lpc_ich/unbind", "0000:00:1f.0"));
  v = run(t, {"plan", "win11"});
  EXPECT_EQ(v.rc, 0) << v.out;
  EXPECT_NE(v.out.find("shares IOMMU group 1 without a driver: left as it is"), std::string::npos) << v.out;
  EXPECT_EQ(v.out.find("bind 0000:00:1f.0"), std::string::npos);
}

TEST(StatusAndRestore, ShowWhatAVmHoldsAndRestoreItByHand) {
  Harness t;
  build_reference_laptop(t.h);
  put_profile(t.h, "win11", test::kLaptopProfile);
  auto before = t.h.state();
  auto s = run(t, {"status"});
  EXPECT_EQ(s.rc, 0);
  EXPECT_NE(s.out.find("win11: not active, profile GPU 0000:01:00.0"), std::string::npos) << s.out;
  ASSERT_EQ(t.event("win11", "prepare"), 0);
  s = run(t, {"status"});
  EXPECT_EQ(s.rc, 0) << s.out;
  EXPECT_NE(s.out.find("win11: holds the GPU"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("0000:01:00.1 now on vfio-pci"), std::string::npos) << s.out;
  // Something changed behind gpuhook's back: status says so and exits 1.
  ASSERT_TRUE(t.h.fs.write("/sys/bus/pci/drivers/vfio-pci/unbind", "0000:01:00.2"));
  s = run(t, {"status", "--json"});
  EXPECT_EQ(s.rc, 1);
  EXPECT_NE(s.out.find("0000:01:00.2 should be on vfio-pci but is unbound"), std::string::npos) << s.out;
  // The crash-recovery path: restore by hand from the journal.
  auto r = run(t, {"restore", "win11"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("VM win11: host restored."), std::string::npos) << r.out;
  EXPECT_EQ(t.restored_diff(before), "");
  r = run(t, {"restore", "win11"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("has no journal: nothing to restore"), std::string::npos);
  EXPECT_EQ(run(t, {"restore", "../etc"}).rc, 2);
}

TEST(Domain, ManagedNoHostdevsAreBoundByUsAndManagedYesAreLeftToLibvirt) {
  Harness t;
  build_reference_laptop(t.h);
  t.h.kernel.add_pci({"0000:00:14.0", "8086", "a36d", "1558", "8550", "0c0330", "xhci_hcd", "xhci_hcd", 4});
  put_profile(t.h, "win11", test::kLaptopProfile);
  const std::string xml = R"(<domain type='kvm'><name>win11</name><devices>
    <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev>
    <hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x00' slot='0x14' function='0x0'/></source></hostdev>
    </devices></domain>)";
  auto before = t.h.state();
  ASSERT_EQ(t.event("win11", "prepare", nullptr, {}, xml), 0) << t.log.text();
  EXPECT_EQ(t.h.kernel.driver_of("0000:00:14.0"), "vfio-pci") << "libvirt does not bind managed='no' devices";
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "vfio-pci") << "the group is bound whatever managed says";
  t.stop_vm("win11");
  EXPECT_EQ(t.restored_diff(before), "");
}

}  // namespace
}  // namespace gpuhook

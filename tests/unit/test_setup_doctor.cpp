// gpuhook doctor and groups on fake machines built to exercise each rule: integrated vs discrete
// (Intel iGPU on the root bus, an AMD APU's iGPU behind a bridge, an AMD dGPU reporting class 0380
// behind its own switch, a lone GPU the rule cannot be sure about), isolation and blockers (PCI
// bridges do not block, a host bridge does), IOMMU-off hints, vfio availability, MUX switches.
#include <gtest/gtest.h>

#include "support/cli.h"

namespace gpuhook::fixtures {
namespace {

namespace json = boost::json;

json::value doctor(FakeHost& h, int* rc = nullptr) {
  auto r = run_cli(h.host(), {"--json", "doctor"});
  if (rc) *rc = r.rc;
  return json_of(r.out);
}

const json::object* gpu(const json::value& j, const std::string& addr) {
  for (const auto& g : j.at("gpus").as_array())
    if (g.at("address").as_string() == addr) return &g.as_object();
  return nullptr;
}

const json::object* finding(const json::value& j, const std::string& id) {
  for (const auto& f : j.at("findings").as_array())
    if (f.at("id").as_string() == id) return &f.as_object();
  return nullptr;
}

std::vector<std::string> strings(const json::value& a) {
  std::vector<std::string> v;
  for (const auto& x : a.as_array()) v.emplace_back(x.as_string());
  return v;
}

void vfio_as_module(FakeHost& h) {
  h.fs.put_file("/proc/sys/kernel/osrelease", "6.1.0-test\n");
  h.fs.put_file("/lib/modules/6.1.0-test/modules.dep",
                "kernel/drivers/vfio/vfio.ko.xz:\n"
                "kernel/drivers/vfio/vfio_iommu_type1.ko.xz: kernel/drivers/vfio/vfio.ko.xz\n"
                "kernel/drivers/vfio/pci/vfio-pci.ko.xz: kernel/drivers/vfio/pci/vfio-pci-core.ko.xz\n");
  h.fs.put_file("/lib/modules/6.1.0-test/modules.builtin", "kernel/drivers/pci/pcie/portdrv.ko\n");
}

TEST(Doctor, ReferenceLaptopIntelIgpuIsIntegratedAndTheNvidiaGpuIsCleanWithFourFunctions) {
  FakeHost h;
  build_reference_laptop(h);
  vfio_as_module(h);
  int rc = -1;
  json::value j = doctor(h, &rc);
  EXPECT_EQ(rc, 0) << json::serialize(j);
  EXPECT_TRUE(j.at("iommu").at("enabled").as_bool());
  auto* igpu = gpu(j, "0000:00:02.0");
  auto* dgpu = gpu(j, "0000:01:00.0");
  ASSERT_TRUE(igpu && dgpu);
  EXPECT_FALSE(igpu->at("discrete").as_bool());
  EXPECT_TRUE(igpu->at("boot_vga").as_bool());
  EXPECT_TRUE(dgpu->at("discrete").as_bool());
  EXPECT_TRUE(dgpu->at("placement_certain").as_bool());
  EXPECT_EQ(dgpu->at("iommu_group").as_int64(), 1);
  EXPECT_TRUE(dgpu->at("isolated").as_bool()) << "the root port 00:01.0 in group 1 does not block";
  EXPECT_EQ(strings(dgpu->at("functions")),
            (std::vector<std::string>{"0000:01:00.0", "0000:01:00.1", "0000:01:00.2", "0000:01:00.3"}));
  EXPECT_EQ(dgpu->at("subsystem_vendor").as_string(), "1558");
  EXPECT_EQ(dgpu->at("driver").as_string(), "nvidia");
  EXPECT_EQ(j.at("vfio").as_array().back().at("state").as_string(), "available");
  EXPECT_NE(finding(j, "vfio-ok"), nullptr);
  EXPECT_NE(finding(j, "gpu-isolated"), nullptr);
  EXPECT_NE(finding(j, "mux-none"), nullptr) << "iGPU + dGPU and no switch: the panel question is answered";
  EXPECT_NE(std::string(finding(j, "mux-none")->at("fix").as_string()).find("mode = \"looking-glass\""), std::string::npos)
      << "a MUXless laptop is pointed to Looking Glass (issue 16)";
}

TEST(Doctor, AnAmdApuIgpuBehindABridgeIsIntegratedAndA0380DgpuBehindItsSwitchIsDiscrete) {
  FakeHost h;
  auto& k = h.kernel;
  const std::string root = "/sys/devices/pci0000:00";
  k.add_bridge("0000:00:08.1", 5);
  const std::string apu = root + "/0000:00:08.1";
  k.add_pci({"0000:05:00.0", "1002", "1636", "1043", "16c1", "030000", "amdgpu", "", 6, true, apu});
  k.add_pci({"0000:05:00.1", "1002", "1637", "1043", "16c1", "040300", "", "", 7, false, apu});
  k.add_pci({"0000:05:00.2", "1022", "15df", "1043", "16c1", "108000", "", "", 8, false, apu});
  k.add_bridge("0000:00:01.1", 1);
  k.add_bridge("0000:01:00.0", 1, root + "/0000:00:01.1");
  k.add_bridge("0000:02:00.0", 1, root + "/0000:00:01.1/0000:01:00.0");
  const std::string sw = root + "/0000:00:01.1/0000:01:00.0/0000:02:00.0";
  k.add_pci({"0000:03:00.0", "1002", "73ff", "1043", "16c2", "038000", "", "", 1, false, sw});
  k.add_pci({"0000:03:00.1", "1002", "ab28", "1043", "16c2", "040300", "", "", 1, false, sw});
  json::value j = doctor(h);
  auto* igpu = gpu(j, "0000:05:00.0");
  auto* dgpu = gpu(j, "0000:03:00.0");
  ASSERT_TRUE(igpu && dgpu) << json::serialize(j);
  EXPECT_FALSE(igpu->at("discrete").as_bool()) << "bus 5, but its slot holds the processor's 1022 function";
  EXPECT_TRUE(igpu->at("placement_certain").as_bool());
  EXPECT_NE(std::string(igpu->at("placement").as_string()).find("0000:05:00.2"), std::string::npos);
  EXPECT_TRUE(dgpu->at("discrete").as_bool());
  EXPECT_EQ(dgpu->at("class").as_string(), "0380") << "Display controller, not VGA/3D, and still found";
  EXPECT_EQ(dgpu->at("outputs").as_string(), "unknown");
  EXPECT_TRUE(dgpu->at("isolated").as_bool()) << "three PCI bridges in its group do not block";
  EXPECT_EQ(strings(dgpu->at("functions")), (std::vector<std::string>{"0000:03:00.0", "0000:03:00.1"}));
}

TEST(Doctor, ALoneGpuBehindOneBridgeIsCalledDiscreteButTheUncertaintyIsSaid) {
  FakeHost h;
  h.kernel.add_bridge("0000:00:03.1", 4);
  h.kernel.add_pci({"0000:0a:00.0", "1002", "1234", "1002", "0b36", "030000", "", "", 4, true,
                    "/sys/devices/pci0000:00/0000:00:03.1"});
  json::value j = doctor(h);
  auto* g = gpu(j, "0000:0a:00.0");
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->at("discrete").as_bool());
  EXPECT_FALSE(g->at("placement_certain").as_bool());
  auto* f = finding(j, "placement-uncertain");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->at("severity").as_string(), "warning");
}

TEST(Doctor, AHostBridgeWithADriverInTheGroupBlocksButPciBridgesAndADriverlessHostBridgeDoNot) {
  FakeHost h;
  h.kernel.add_module({"ie31200_edac", {}, "ie31200_edac", false, true});
  h.kernel.add_pci({"0000:00:00.0", "8086", "0c00", "", "", "060000", "ie31200_edac", "ie31200_edac", 1, false});
  h.kernel.add_bridge("0000:00:01.0", 1);
  h.kernel.add_pci({"0000:01:00.0", "10de", "13c2", "1458", "3679", "030000", "", "", 1, true,
                    "/sys/devices/pci0000:00/0000:00:01.0"});
  int rc = -1;
  json::value j = doctor(h, &rc);
  auto* g = gpu(j, "0000:01:00.0");
  ASSERT_TRUE(g);
  EXPECT_FALSE(g->at("isolated").as_bool());
  EXPECT_EQ(strings(g->at("blockers")), std::vector<std::string>{"0000:00:00.0"});
  auto* f = finding(j, "gpu-not-isolated");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->at("severity").as_string(), "error") << "no discrete GPU of this host can be passed cleanly";
  EXPECT_NE(std::string(f->at("message").as_string()).find("ie31200_edac"), std::string::npos) << "the blocker's driver is named";
  EXPECT_EQ(rc, 1);
  // Without its driver VFIO leaves the host bridge unassigned: the group is viable.
  ASSERT_TRUE(h.fs.write("/sys/bus/pci/drivers/ie31200_edac/unbind", "0000:00:00.0"));
  j = doctor(h, &rc);
  g = gpu(j, "0000:01:00.0");
  EXPECT_TRUE(g->at("isolated").as_bool()) << json::serialize(j);
  EXPECT_TRUE(strings(g->at("blockers")).empty());
}

TEST(Doctor, TheSingleGpuDesktopIsToldToUseTakeover) {
  FakeHost h;
  build_single_gpu_desktop(h);
  json::value j = doctor(h);
  auto* g = gpu(j, "0000:0b:00.0");
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->at("discrete").as_bool());
  EXPECT_TRUE(g->at("boot_vga").as_bool());
  auto* f = finding(j, "single-gpu");
  ASSERT_NE(f, nullptr);
  EXPECT_NE(std::string(f->at("fix").as_string()).find("takeover"), std::string::npos);
  EXPECT_EQ(finding(j, "mux-none"), nullptr) << "no iGPU and an unknown kind of machine: no panel MUX question";
}

FakeHost* gpu_without_iommu(FakeHost& h) {
  h.kernel.add_bridge("0000:00:01.0", -1);
  h.kernel.add_pci({"0000:01:00.0", "10de", "13c2", "1458", "3679", "030000", "", "", -1, true,
                    "/sys/devices/pci0000:00/0000:00:01.0"});
  return &h;
}

TEST(Doctor, IommuOffNamesTheCauseItCanSee) {
  {
    FakeHost h;
    gpu_without_iommu(h);
    h.fs.put_file("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro intel_iommu=off quiet\n");
    int rc = -1;
    json::value j = doctor(h, &rc);
    EXPECT_EQ(rc, 1);
    EXPECT_FALSE(j.at("iommu").at("enabled").as_bool());
    EXPECT_TRUE(gpu(j, "0000:01:00.0")->at("iommu_group").is_null());
    auto* f = finding(j, "iommu-off");
    ASSERT_NE(f, nullptr);
    EXPECT_NE(std::string(f->at("fix").as_string()).find("remove intel_iommu=off"), std::string::npos)
        << f->at("fix").as_string();
  }
  {
    FakeHost h;
    gpu_without_iommu(h);
    h.fs.put_file("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n");
    h.fs.put_file("/sys/firmware/acpi/tables/DMAR", "");
    json::value j = doctor(h);
    EXPECT_EQ(j.at("iommu").at("dmar").as_bool(), true);
    EXPECT_NE(std::string(finding(j, "iommu-off")->at("fix").as_string()).find("add intel_iommu=on"), std::string::npos);
  }
  {
    FakeHost h;
    gpu_without_iommu(h);
    h.fs.put_file("/sys/firmware/acpi/tables/FACP", "");
    h.fs.put_file("/proc/cpuinfo", "processor\t: 0\nvendor_id\t: AuthenticAMD\n");
    json::value j = doctor(h);
    std::string fix(finding(j, "iommu-off")->at("fix").as_string());
    EXPECT_NE(fix.find("AMD-Vi"), std::string::npos) << fix;
    EXPECT_NE(fix.find("firmware setup"), std::string::npos) << fix;
  }
}

TEST(Doctor, GroupsWithoutIntelIommuOnAreExplainedByTheKernelsDefault) {
  FakeHost h;
  build_reference_laptop(h);
  h.fs.put_file("/proc/cmdline", "BOOT_IMAGE=/vmlinuz ro quiet\n");
  h.fs.put_file("/proc/sys/kernel/osrelease", "6.1.0-test\n");
  h.fs.put_file("/boot/config-6.1.0-test", "#\n# comment\nCONFIG_INTEL_IOMMU=y\n"
                                           "CONFIG_INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF=y\n");
  json::value j = doctor(h);
  EXPECT_EQ(j.at("iommu").at("intel_default").as_string(), "on except integrated GPUs");
  std::string msg(finding(j, "iommu-on")->at("message").as_string());
  EXPECT_NE(msg.find("by default"), std::string::npos) << msg;
}

TEST(Doctor, VfioPciMissingFromTheKernelIsAnError) {
  FakeHost h;
  build_reference_laptop(h);
  h.fs.put_file("/proc/sys/kernel/osrelease", "6.1.0-test\n");
  h.fs.put_file("/lib/modules/6.1.0-test/modules.dep", "kernel/drivers/gpu/drm/i915/i915.ko:\n");
  h.fs.put_file("/lib/modules/6.1.0-test/modules.builtin", "");
  int rc = -1;
  json::value j = doctor(h, &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(j.at("vfio").as_array().back().at("state").as_string(), "missing");
  EXPECT_NE(finding(j, "vfio-missing"), nullptr);
  h.fs.put_file("/lib/modules/6.1.0-test/modules.builtin", "kernel/drivers/vfio/pci/vfio-pci.ko\n");
  j = doctor(h, &rc);
  EXPECT_EQ(j.at("vfio").as_array().back().at("state").as_string(), "builtin");
  EXPECT_EQ(rc, 0);
}

TEST(Doctor, MuxSwitchesAreReportedWithWhetherTheyNeedAReboot) {
  FakeHost h;
  build_reference_laptop(h);
  h.kernel.enable_switcheroo("0000:00:02.0", "0000:01:00.0");
  h.fs.put_file("/sys/devices/platform/asus-nb-wmi/gpu_mux_mode", "1\n");
  json::value j = doctor(h);
  EXPECT_TRUE(j.at("mux").at("switcheroo").as_bool());
  EXPECT_EQ(j.at("mux").at("reboot_only").as_array().size(), 1u);
  EXPECT_NE(finding(j, "mux-runtime"), nullptr);
  auto* r = finding(j, "mux-reboot-only");
  ASSERT_NE(r, nullptr);
  EXPECT_NE(std::string(r->at("message").as_string()).find("only after a reboot"), std::string::npos);
  EXPECT_NE(std::string(r->at("fix").as_string()).find("mode = \"looking-glass\""), std::string::npos)
      << "without a reboot: Looking Glass (issue 16)";
  EXPECT_EQ(finding(j, "mux-none"), nullptr);
  h.fs.put_file("/sys/class/dmi/id/chassis_type", "3\n");
  j = doctor(h);
  EXPECT_EQ(finding(j, "mux-runtime"), nullptr) << "a desktop has no panel to switch";
  EXPECT_EQ(j.at("machine").at("chassis").as_string(), "desktop");
}

TEST(Doctor, EveryFindingHasAnIdASeverityAMessageAndANextStep) {
  FakeHost h;
  build_reference_laptop(h);
  auto r = run_cli(h.host(), {"doctor"});
  json::value j = doctor(h);
  for (const auto& f : j.at("findings").as_array()) {
    std::string sev(f.at("severity").as_string());
    EXPECT_TRUE(sev == "error" || sev == "warning" || sev == "info") << sev;
    EXPECT_FALSE(f.at("message").as_string().empty());
    EXPECT_FALSE(f.at("fix").as_string().empty()) << f.at("id").as_string();
    EXPECT_NE(r.out.find("[" + std::string(f.at("id").as_string()) + "]"), std::string::npos) << r.out;
  }
}

TEST(Groups, WithoutGroupsSaysTheIommuIsOffAndExitsOne) {
  FakeHost h;
  gpu_without_iommu(h);
  auto r = run_cli(h.host(), {"groups"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("the IOMMU is off"), std::string::npos) << r.out;
  auto j = run_cli(h.host(), {"groups", "--json"});
  EXPECT_EQ(j.rc, 1);
  EXPECT_EQ(json_of(j.out).at("groups").as_array().size(), 0u);
}

TEST(Groups, NumericOrderPutsGroupTwoBeforeGroupTen) {
  FakeHost h;
  h.kernel.add_pci({"0000:00:1f.0", "8086", "a30d", "", "", "060100", "", "", 10, false});
  h.kernel.add_pci({"0000:00:02.0", "8086", "3e9b", "", "", "030000", "", "", 2, true});
  auto r = run_cli(h.host(), {"groups"});
  ASSERT_EQ(r.rc, 0);
  EXPECT_LT(r.out.find("IOMMU group 2:"), r.out.find("IOMMU group 10:")) << r.out;
}

TEST(SetupVerbs, EachHasHelpAndRefusesUnknownOptions) {
  FakeHost h;
  for (const char* v : {"doctor", "groups", "ids", "check"}) {
    auto r = run_cli(h.host(), {v, "--help"});
    EXPECT_EQ(r.rc, 0);
    EXPECT_NE(r.out.find(std::string("usage: gpuhook [--root DIR] [--json] ") + v), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("--json"), std::string::npos) << v;
  }
  EXPECT_EQ(run_cli(h.host(), {"doctor", "--xml", "x"}).rc, 2) << "--xml is check's";
  EXPECT_EQ(run_cli(h.host(), {"groups", "extra"}).rc, 2);
}

}  // namespace
}  // namespace gpuhook::fixtures

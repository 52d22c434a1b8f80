// gpuhook check on the fake reference laptop: a complete, correct domain gives no finding at all;
// each way of getting the profile, the host or the domain wrong gives its documented finding id
// (and the planner's refusals keep mapping to theirs). The domain comes from --xml files, and from
// libvirt's own API through its in-process test driver (--connect test:///FILE), no daemon needed.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <set>

#include "support/cli.h"

namespace gpuhook::fixtures {
namespace {

namespace json = boost::json;

const char* kProfile = R"(
[gpu]
address = "0000:01:00.0"
[host]
stop_services = ["nvidia-persistenced.service"]
unload_modules = ["nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"]
)";

std::string hostdev(const std::string& fn, const std::string& managed = "no", const std::string& alias = "") {
  return "    <hostdev mode='subsystem' type='pci' managed='" + managed + "'>\n" +
         "      <source><address domain='0x0000' bus='0x01' slot='0x00' function='0x" + fn + "'/></source>\n" +
         (alias.empty() ? "" : "      <alias name='" + alias + "'/>\n") + "    </hostdev>\n";
}

std::string override_for(const std::string& alias, const std::string& vendor = "5464", const std::string& device = "34128") {
  return "  <qemu:override>\n    <qemu:device alias='" + alias + "'>\n      <qemu:frontend>\n" +
         "        <qemu:property name='x-pci-sub-vendor-id' type='unsigned' value='" + vendor + "'/>\n" +
         "        <qemu:property name='x-pci-sub-device-id' type='unsigned' value='" + device + "'/>\n" +
         "      </qemu:frontend>\n    </qemu:device>\n  </qemu:override>\n";
}

std::string commandline_for(const std::string& alias) {
  return "  <qemu:commandline>\n    <qemu:arg value='-set'/>\n    <qemu:arg value='device." + alias +
         ".x-pci-sub-vendor-id=5464'/>\n    <qemu:arg value='-set'/>\n    <qemu:arg value='device." + alias +
         ".x-pci-sub-device-id=34128'/>\n  </qemu:commandline>\n";
}

struct Domain {
  std::string name = "win11", type = "kvm", machine = "pc-q35-7.2", os_attrs = " firmware='efi'";
  std::string devices = hostdev("0") + hostdev("1") + hostdev("2") + hostdev("3");
  std::string qemu = override_for("hostdev0");
  std::string xml() const {
    return "<domain type='" + type + "' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n  <name>" + name +
           "</name>\n  <memory unit='KiB'>4194304</memory>\n  <os" + os_attrs + "><type arch='x86_64' machine='" +
           machine + "'>hvm</type></os>\n  <devices>\n" + devices + "  </devices>\n" + qemu + "</domain>\n";
  }
};

struct Check {
  FakeHost h;
  int files = 0;
  Check(const std::string& profile = kProfile) {
    build_reference_laptop(h);
    h.fs.put_file("/sys/class/dmi/id/chassis_type", "10\n");
    h.fs.put_file("/lib/systemd/system/nvidia-persistenced.service", "[Service]\n");
    put_profile(h, "win11", profile);
  }
  std::string file(const std::string& content) {
    std::string p = ::testing::TempDir() + "gpuhook-check-" + std::to_string(::getpid()) + "-" + std::to_string(files++) + ".xml";
    std::ofstream(p) << content;
    return p;
  }
  CliResult run(const std::vector<std::string>& args) { return run_cli(h.host(), args); }
  // Runs check --json with the domain from a file; returns the findings by id.
  std::map<std::string, json::object> findings(const Domain& d, int* rc = nullptr, const std::string& vm = "win11") {
    auto r = run({"--json", "check", vm, "--xml", file(d.xml())});
    if (rc) *rc = r.rc;
    std::map<std::string, json::object> by_id;
    json::value j = json_of(r.out);  // kept alive: the loop below refers into it
    for (const auto& f : j.at("findings").as_array()) by_id.emplace(std::string(f.at("id").as_string()), f.as_object());
    return by_id;
  }
};

std::string ids(const std::map<std::string, json::object>& f) {
  std::string s;
  for (const auto& [id, o] : f) s += id + " (" + std::string(o.at("severity").as_string()) + "): " + std::string(o.at("message").as_string()) + "\n";
  return s;
}

TEST(Check, ACompleteDomainOnTheReferenceLaptopHasNoFinding) {
  Check c;
  int rc = -1;
  auto f = c.findings(Domain{}, &rc);
  EXPECT_TRUE(f.empty()) << ids(f);
  EXPECT_EQ(rc, 0);
  auto human = c.run({"check", "win11", "--xml", c.file(Domain{}.xml())});
  EXPECT_EQ(human.rc, 0);
  EXPECT_NE(human.out.find("no problems found"), std::string::npos) << human.out;
}

// The contract the real-libvirtd test relies on, in-process.
TEST(Check, ADomainWithoutTheGpuHostdevAndWithoutTheOverrideGetsBothFindings) {
  Check c;
  Domain d;
  d.devices = hostdev("1") + hostdev("2") + hostdev("3");
  d.qemu = "";
  auto r = c.run({"check", "win11", "--json", "--xml", c.file(d.xml())});
  EXPECT_EQ(r.rc, 1);
  json::value j = json_of(r.out);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.as_object().size(), 2u) << "exactly {\"vm\", \"findings\"}";
  EXPECT_EQ(j.at("vm").as_string(), "win11");
  std::set<std::string> got;
  for (const auto& f : j.at("findings").as_array()) {
    EXPECT_EQ(f.as_object().size(), 4u) << json::serialize(f);
    for (const char* k : {"id", "severity", "message", "fix"}) EXPECT_TRUE(f.at(k).is_string()) << k;
    EXPECT_FALSE(f.at("fix").as_string().empty()) << "every finding comes with its fix";
    got.insert(std::string(f.at("id").as_string()));
    if (f.at("id").as_string() == "hostdev-missing") {
      EXPECT_EQ(f.at("severity").as_string(), "error");
      EXPECT_NE(std::string(f.at("message").as_string()).find("0000:01:00.0"), std::string::npos);
      EXPECT_NE(std::string(f.at("fix").as_string()).find("bus='0x01' slot='0x00' function='0x0'"), std::string::npos);
    }
    if (f.at("id").as_string() == "subsystem-override-missing") {
      EXPECT_EQ(f.at("severity").as_string(), "error") << "an NVIDIA GPU with 1558:8550 in a laptop";
      EXPECT_NE(std::string(f.at("message").as_string()).find("1558:8550 (5464, 34128)"), std::string::npos);
      EXPECT_NE(std::string(f.at("fix").as_string()).find("gpuhook ids 0000:01:00.0"), std::string::npos);
    }
  }
  EXPECT_EQ(got, (std::set<std::string>{"hostdev-missing", "subsystem-override-missing"}));
}

TEST(Check, TheDomainIsReadThroughLibvirtsApiReadOnly) {
  Check c;
  // libvirt's test driver runs inside the library: a real virConnectOpenReadOnly/virDomainGetXMLDesc,
  // no daemon. Its domains are type 'test', and it knows no qemu namespace (so: no override).
  std::string node = c.file(
      "<node>\n  <domain type='test'>\n    <name>win11</name>\n    <memory>1048576</memory>\n"
      "    <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><loader type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader></os>\n"
      "    <devices>\n" + hostdev("1") + "    </devices>\n  </domain>\n</node>\n");
  auto r = c.run({"--json", "check", "win11", "--connect", "test://" + node});
  std::set<std::string> got;
  json::value j = json_of(r.out);
  for (const auto& f : j.at("findings").as_array()) got.insert(std::string(f.at("id").as_string()));
  EXPECT_TRUE(got.count("hostdev-missing")) << r.out;
  EXPECT_TRUE(got.count("subsystem-override-missing")) << r.out;
  EXPECT_FALSE(got.count("domain-unreadable")) << r.out;
  EXPECT_EQ(r.rc, 1);
  auto missing = c.run({"--json", "check", "win11", "--connect=test:///default"});
  EXPECT_NE(missing.out.find("\"domain-unreadable\""), std::string::npos) << "test:///default has no domain win11";
  EXPECT_NE(missing.out.find("libvirt has no domain named win11"), std::string::npos) << missing.out;
}

TEST(Check, ManagedYesOnAFunctionTheHookBindsIsAWarning) {
  Check c;
  Domain d;
  d.devices = hostdev("0") + hostdev("1", "yes") + hostdev("2") + hostdev("3");
  int rc = -1;
  auto f = c.findings(d, &rc);
  ASSERT_EQ(f.count("hostdev-managed"), 1u) << ids(f);
  EXPECT_NE(std::string(f["hostdev-managed"].at("message").as_string()).find("0000:01:00.1"), std::string::npos);
  EXPECT_EQ(f.size(), 1u) << ids(f);
  EXPECT_EQ(rc, 0) << "warnings only";
}

TEST(Check, AnAudioFunctionLeftOutIsAWarningNotAnError) {
  Check c;
  Domain d;
  d.devices = hostdev("0") + hostdev("2") + hostdev("3");
  auto f = c.findings(d);
  ASSERT_EQ(f.count("hostdev-missing"), 1u) << ids(f);
  EXPECT_EQ(f["hostdev-missing"].at("severity").as_string(), "warning");
}

TEST(Check, TheOverrideMustTargetTheGpuHostdevsAlias) {
  Check c;
  Domain d;
  d.devices = hostdev("1") + hostdev("0") + hostdev("2") + hostdev("3");  // the GPU becomes hostdev1
  auto f = c.findings(d);
  ASSERT_EQ(f.count("subsystem-override-alias"), 1u) << ids(f);
  EXPECT_NE(std::string(f["subsystem-override-alias"].at("message").as_string()).find("'hostdev1'"), std::string::npos);
  d.qemu = override_for("hostdev1");
  EXPECT_TRUE(c.findings(d).empty()) << ids(c.findings(d));
  d.devices = hostdev("1") + hostdev("0", "no", "ua-gpu") + hostdev("2") + hostdev("3");
  d.qemu = override_for("ua-gpu");
  EXPECT_TRUE(c.findings(d).empty()) << "a user alias is used as is: " << ids(c.findings(d));
}

TEST(Check, OverrideValuesThatAreNotTheGpusAreReported) {
  Check c;
  Domain d;
  d.qemu = override_for("hostdev0", "0x1558", "34128");
  EXPECT_TRUE(c.findings(d).empty()) << "hex values are the same ids: " << ids(c.findings(d));
  d.qemu = override_for("hostdev0", "4318", "34128");
  auto f = c.findings(d);
  EXPECT_EQ(f.count("subsystem-override-mismatch"), 1u) << ids(f);
}

TEST(Check, TheCommandLineFormCountsButIsFlaggedOnQemu7Machines) {
  Check c;
  Domain d;
  d.qemu = commandline_for("hostdev0");
  auto f = c.findings(d);
  EXPECT_EQ(f.count("subsystem-override-missing"), 0u);
  EXPECT_EQ(f.count("subsystem-override-ignored"), 1u) << ids(f);
  d.machine = "pc-q35-6.2";
  EXPECT_TRUE(c.findings(d).empty()) << ids(c.findings(d));
}

TEST(Check, TheOverrideRuleDependsOnTheKindOfMachine) {
  Check c;
  Domain d;
  d.qemu = "";
  c.h.fs.put_file("/sys/class/dmi/id/chassis_type", "3\n");
  EXPECT_EQ(c.findings(d).count("subsystem-override-missing"), 0u) << "desktop cards do not need it";
  c.h.fs.erase("/sys/class/dmi/id/chassis_type");
  auto f = c.findings(d);
  ASSERT_EQ(f.count("subsystem-override-missing"), 1u);
  EXPECT_EQ(f["subsystem-override-missing"].at("severity").as_string(), "warning") << "unknown kind: said, not an error";
}

TEST(Check, LegacyBiosAndI440fxAreReported) {
  Check c;
  Domain d;
  d.machine = "pc-i440fx-7.2";
  d.os_attrs = "";
  auto f = c.findings(d);
  EXPECT_EQ(f.count("machine-not-q35"), 1u) << ids(f);
  EXPECT_EQ(f.count("firmware-not-uefi"), 1u) << ids(f);
  d.machine = "q35";
  std::string x = d.xml();
  x.replace(x.find("</os>"), 5, "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader></os>");
  auto r = c.run({"--json", "check", "win11", "--xml", c.file(x)});
  EXPECT_EQ(r.out.find("firmware-not-uefi"), std::string::npos) << "an OVMF pflash loader is UEFI: " << r.out;
  EXPECT_EQ(r.out.find("machine-not-q35"), std::string::npos) << r.out;
}

TEST(Check, ProfileProblemsAreFindingsAndTheDomainIsStillChecked) {
  {
    Check c;
    c.h.fs.erase("/etc/gpuhook/vms/win11.toml");
    Domain d;
    d.machine = "pc-i440fx-7.2";
    int rc = -1;
    auto f = c.findings(d, &rc);
    EXPECT_EQ(f.count("profile-missing"), 1u) << ids(f);
    EXPECT_EQ(f.count("machine-not-q35"), 1u) << ids(f);
    EXPECT_EQ(rc, 1);
  }
  {
    Check c("[gpu]\naddress = \"0000:01:00.0\"\nbogus = 1\n");
    auto f = c.findings(Domain{});
    ASSERT_EQ(f.count("profile-invalid"), 1u) << ids(f);
    EXPECT_NE(std::string(f["profile-invalid"].at("message").as_string()).find("bogus"), std::string::npos);
  }
  Check c;
  EXPECT_EQ(c.run({"check", "../etc"}).rc, 2) << "an unsafe VM name is a usage error";
}

TEST(Check, PlannerRefusalsKeepTheirIds) {
  {
    Check c("[gpu]\naddress = \"0000:02:00.0\"\n");
    EXPECT_EQ(c.findings(Domain{}).count("gpu-missing"), 1u);
  }
  {
    Check c;
    c.h.kernel.add_module({"r8169", {}, "r8169", false, true});
    c.h.kernel.add_pci({"0000:02:00.0", "10ec", "8168", "1558", "8550", "020000", "r8169", "r8169", 1, false,
                        "/sys/devices/pci0000:00/0000:00:01.0"});
    auto f = c.findings(Domain{});
    ASSERT_EQ(f.count("group-incomplete"), 1u) << ids(f);
    EXPECT_NE(std::string(f["group-incomplete"].at("message").as_string()).find("0000:02:00.0"), std::string::npos);
  }
  {
    // An ISA bridge in the group: a blocker when bound to a driver (VFIO would refuse the group),
    // quiet when it is driverless (VFIO accepts it).
    Check c;
    c.h.kernel.add_module({"lpc_ich", {}, "lpc_ich", false, true});
    c.h.kernel.add_pci({"0000:00:1f.0", "8086", "a30d", "1558", "8550", "060100", "lpc_ich", "lpc_ich", 1, false});
    auto f = c.findings(Domain{});
    ASSERT_EQ(f.count("group-incomplete"), 1u) << ids(f);
    EXPECT_NE(std::string(f["group-incomplete"].at("message").as_string()).find("0000:00:1f.0"), std::string::npos);
    Check quiet;
    quiet.h.kernel.add_pci({"0000:00:1f.0", "8086", "a30d", "1558", "8550", "060100", "", "", 1, false});
    EXPECT_EQ(quiet.findings(Domain{}).count("group-incomplete"), 0u);
  }
  {
    Check c(std::string(kProfile) + "[display]\nmode = \"mux\"\n[display.mux]\nmethod = \"switcheroo\"\n");
    auto f = c.findings(Domain{});
    EXPECT_EQ(f.count("mux-unavailable"), 1u) << ids(f);
  }
  {
    Check c("[gpu]\naddress = \"0000:01:00.0\"\n");  // nothing stops nvidia-persistenced, which holds /dev/nvidia0
    auto f = c.findings(Domain{});
    ASSERT_EQ(f.count("gpu-in-use"), 1u) << ids(f);
    EXPECT_EQ(f["gpu-in-use"].at("severity").as_string(), "warning");
  }
  {
    FakeHost h;
    build_single_gpu_desktop(h);
    put_profile(h, "win11", "[gpu]\naddress = \"0000:0b:00.0\"\n[host]\nstop_services = []\nholders = \"terminate\"\n");
    Domain d;
    d.devices = "";
    d.qemu = "";
    std::string p = ::testing::TempDir() + "gpuhook-check-single.xml";
    std::ofstream(p) << d.xml();
    auto r = run_cli(h.host(), {"--json", "check", "win11", "--xml", p});
    EXPECT_NE(r.out.find("\"display-in-use\""), std::string::npos) << r.out;
  }
  {
    FakeHost h;
    h.kernel.add_bridge("0000:00:01.0", -1);
    h.kernel.add_pci({"0000:01:00.0", "10de", "13c2", "1458", "3679", "030000", "", "", -1, false,
                      "/sys/devices/pci0000:00/0000:00:01.0"});
    put_profile(h, "win11", "[gpu]\naddress = \"0000:01:00.0\"\n");
    std::string p = ::testing::TempDir() + "gpuhook-check-nogroup.xml";
    std::ofstream(p) << Domain{}.xml();
    auto r = run_cli(h.host(), {"--json", "check", "win11", "--xml", p});
    EXPECT_NE(r.out.find("\"iommu-off\""), std::string::npos) << r.out;
  }
}

TEST(Check, HostFindingsForModulesUnitsVfioAndTheDisplayMode) {
  {
    Check c;
    c.h.fs.erase("/lib/systemd/system/nvidia-persistenced.service");
    auto f = c.findings(Domain{});
    EXPECT_EQ(f.count("unit-missing"), 1u) << ids(f);
  }
  {
    Check c("[gpu]\naddress = \"0000:01:00.0\"\n[host]\nstop_services = [\"nvidia-persistenced.service\"]\n"
            "unload_modules = [\"pcieport\", \"nvidai\"]\n");
    c.h.fs.put_file("/proc/sys/kernel/osrelease", "6.1.0-test\n");
    c.h.fs.put_file("/lib/modules/6.1.0-test/modules.dep", "kernel/drivers/video/nvidia.ko:\n");
    c.h.fs.put_file("/lib/modules/6.1.0-test/modules.builtin", "kernel/drivers/pci/pcie/portdrv.ko\n");
    auto f = c.findings(Domain{});
    EXPECT_EQ(f.count("module-builtin"), 1u) << ids(f);
    ASSERT_EQ(f.count("module-unknown"), 1u) << ids(f);
    EXPECT_NE(std::string(f["module-unknown"].at("message").as_string()).find("nvidai"), std::string::npos);
    EXPECT_EQ(f.count("vfio-missing"), 1u) << "no vfio-pci in modules.dep nor modules.builtin: " << ids(f);
  }
  {
    Check c(std::string(kProfile) + "[display]\nmode = \"ddc\"\n[display.ddc]\nbus = 4\nvm_input = 15\n");
    c.h.runner.programs.erase("ddcutil");
    auto f = c.findings(Domain{});
    ASSERT_EQ(f.count("display-unsupported"), 1u) << ids(f);
    EXPECT_NE(std::string(f["display-unsupported"].at("message").as_string()).find("ddcutil"), std::string::npos);
  }
  {
    Check c(std::string(kProfile) + "[display]\nmode = \"command\"\n[display.command]\n"
            "switch = [\"/usr/local/bin/panel\", \"dgpu\"]\nrestore = [\"/usr/local/bin/panel\", \"igpu\"]\n");
    auto f = c.findings(Domain{});
    EXPECT_EQ(f.count("display-unsupported"), 1u) << ids(f);
    c.h.fs.put_file("/usr/local/bin/panel", "#!/bin/sh\n", 0755);
    EXPECT_EQ(c.findings(Domain{}).count("display-unsupported"), 0u);
  }
}

TEST(Check, DomainSourceProblems) {
  Check c;
  auto r = c.run({"--json", "check", "win11", "--xml", "/nonexistent/win11.xml"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("\"domain-unreadable\""), std::string::npos) << r.out;
  auto bad = c.run({"--json", "check", "win11", "--xml=" + c.file("<domain><name>win11</nam></domain>")});
  EXPECT_NE(bad.out.find("\"domain-xml-invalid\""), std::string::npos) << "XML that does not parse has its own id\n" << bad.out;
  EXPECT_NE(bad.out.find("line 1, column 22: Start-end tags mismatch"), std::string::npos) << bad.out;
  Domain other;
  other.name = "linux";
  auto f = c.findings(other);
  EXPECT_EQ(f.count("domain-name"), 1u) << ids(f);
  EXPECT_EQ(c.run({"check", "win11", "--xml"}).rc, 2) << "--xml needs a file";
  EXPECT_EQ(c.run({"check", "win11", "--connect="}).rc, 2);
}

}  // namespace
}  // namespace gpuhook::fixtures

namespace gpuhook::fixtures {
namespace {

// Looking Glass (issue 16): check reports the domain's shared memory (missing, too small), the
// client program and the user's graphical session, each with its fix.
TEST(Check, LookingGlassModeChecksTheSharedMemoryTheClientAndTheSession) {
  Check c(std::string(kProfile) + "[display]\nmode = \"looking-glass\"\n[display.looking_glass]\n"
                                  "client = [\"/usr/local/bin/looking-glass-client\", \"-F\"]\nuser = \"alice\"\n");
  add_tuning_host(c.h, false);
  int rc = -1;
  auto f = c.findings(Domain{}, &rc);
  ASSERT_TRUE(f.count("lg-shmem-missing")) << ids(f);
  EXPECT_EQ(std::string(f.at("lg-shmem-missing").at("severity").as_string()), "error");
  EXPECT_NE(std::string(f.at("lg-shmem-missing").at("fix").as_string()).find("<size unit='M'>32</size>"), std::string::npos);
  EXPECT_EQ(rc, 1);
  ASSERT_TRUE(f.count("display-unsupported")) << "the client is not installed: " << ids(f);
  EXPECT_FALSE(f.count("lg-no-session")) << "alice's Wayland session runs";

  Domain small;
  small.devices += "    <shmem name='looking-glass'><model type='ivshmem-plain'/><size unit='M'>16</size></shmem>\n";
  f = c.findings(small);
  ASSERT_TRUE(f.count("lg-shmem-size")) << ids(f);
  EXPECT_NE(std::string(f.at("lg-shmem-size").at("message").as_string()).find("16777216 bytes"), std::string::npos);

  c.h.fs.put_file("/usr/local/bin/looking-glass-client", "#!/bin/sh\n", 0755);
  c.h.kernel.kill(2000, 9);  // alice logs out
  Domain good;
  good.devices += "    <shmem name='looking-glass'><model type='ivshmem-plain'/><size unit='M'>32</size></shmem>\n";
  f = c.findings(good, &rc);
  EXPECT_FALSE(f.count("lg-shmem-missing") || f.count("lg-shmem-size") || f.count("display-unsupported")) << ids(f);
  ASSERT_TRUE(f.count("lg-no-session")) << ids(f);
  EXPECT_EQ(std::string(f.at("lg-no-session").at("severity").as_string()), "warning");
  EXPECT_EQ(rc, 0) << "a missing session is a warning: the VM may start before login";
}

}  // namespace
}  // namespace gpuhook::fixtures

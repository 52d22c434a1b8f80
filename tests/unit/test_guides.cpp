// The mistakes passthrough guides leave behind (issue 11), each a finding of doctor or check that
// names the offending value and its fix: kernel options the kernel does not know, static vfio-pci
// ids parsed the way the kernel's sscanf parses them, host-critical hostdevs, ROM settings, a
// domain XML that does not parse, reset health.
//
// Real data: tests/data/real/33 (Threadripper; its kernel command line is the one its header
// quotes from the post) and 31 (Navi 10 single GPU), tests/data/domains/08 (an ASUS X541UJ
// "attempt" passing the PCH's LPC bridge, PMC and SMBus, with a rom file= on the iGPU and rom
// bar='off' on the dGPU) and 02 (with the '>' of its <domain> tag removed, as in the seed-style
// mistake). No listing of the X541UJ exists: its host here is a fake one with the devices the
// domain's own comment names (ids of the PCH functions are Sunrise Point-LP's).
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "support/cli.h"
#include "sysinfo/guides.h"

namespace gpuhook::fixtures {
namespace {

namespace json = boost::json;

std::string data(const std::string& rel) { return std::string(GPUHOOK_SOURCE_DIR) + "/tests/data/" + rel; }

// Findings of a verb's JSON, by id (several of one id joined with " | ").
std::map<std::string, std::string> findings(const CliResult& r) {
  std::map<std::string, std::string> m;
  json::value j = json_of(r.out);
  for (const auto& f : j.at("findings").as_array()) {
    std::string& s = m[std::string(f.at("id").as_string())];
    s += (s.empty() ? "" : " | ") + std::string(f.at("severity").as_string()) + ": " + std::string(f.at("message").as_string()) +
         " NEXT: " + std::string(f.at("fix").as_string());
  }
  return m;
}

std::string all(const std::map<std::string, std::string>& m) {
  std::string s;
  for (const auto& [k, v] : m) s += k + " = " + v + "\n";
  return s;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(VfioIds, EachEntryIsReadTheWayTheKernelsSscanfReadsIt) {
  auto e = parse_vfio_ids("10de:2191,10de:1aec.10de:1aed,,0x10DE:0x1aeb, 10de:1aed,10de,10de:1aed:1558:8550");
  ASSERT_EQ(e.size(), 6u) << "the empty entry is skipped, as the kernel does";
  EXPECT_TRUE(e[0].valid && e[0].rest.empty());
  EXPECT_TRUE(e[1].valid);
  EXPECT_EQ(e[1].device, 0x1aecu) << "the kernel reads '10de:1aec' and stops at the '.'";
  EXPECT_EQ(e[1].rest, ".10de:1aed");
  EXPECT_TRUE(e[2].valid && e[2].vendor == 0x10de && e[2].device == 0x1aeb) << "%x takes 0x and capitals";
  EXPECT_TRUE(e[3].valid && e[3].rest.empty()) << "%x skips leading blanks";
  EXPECT_FALSE(e[4].valid) << "a vendor alone is ignored (fewer than 2 fields)";
  EXPECT_TRUE(e[5].valid && e[5].subvendor == 0x1558u && e[5].subdevice == 0x8550u);
}

struct Laptop {
  FakeHost h;
  Laptop() {
    build_reference_laptop(h);
    h.fs.put_file("/sys/class/dmi/id/chassis_type", "10\n");
    h.fs.put_file("/lib/systemd/system/nvidia-persistenced.service", "[Service]\n");
  }
  CliResult doctor() { return run_cli(h.host(), {"--json", "doctor"}); }
};

TEST(DoctorGuides, ADotForACommaInIdsNamesWhatTheKernelReadsAndTheIdItLoses) {
  Laptop l;
  l.h.fs.put_file("/etc/modprobe.d/vfio.conf", "# from a guide\noptions vfio-pci ids=10de:2191,10de:1aeb,10de:1aec.10de:1aed\n");
  auto r = l.doctor();
  auto f = findings(r);
  ASSERT_TRUE(f.count("vfio-ids-misread")) << all(f);
  const std::string& m = f["vfio-ids-misread"];
  EXPECT_TRUE(has(m, "/etc/modprobe.d/vfio.conf:2")) << m;
  EXPECT_TRUE(has(m, "as 10de:1aec and ignores '.10de:1aed'")) << m;
  EXPECT_TRUE(has(m, "10de:1aed is not bound")) << m;
  EXPECT_TRUE(has(m, "ids=10de:1aec,10de:1aed")) << "the fix writes the list right: " << m;
  ASSERT_TRUE(f.count("vfio-ids-partial")) << all(f);
  EXPECT_TRUE(has(f["vfio-ids-partial"], "but not 0000:01:00.3 (10de:1aed")) << f["vfio-ids-partial"];
  EXPECT_EQ(r.rc, 1);
  // Written right, none of the two.
  l.h.fs.put_file("/etc/modprobe.d/vfio.conf", "options vfio-pci ids=10de:2191,10de:1aeb,10de:1aec,10de:1aed\n");
  f = findings(l.doctor());
  EXPECT_FALSE(f.count("vfio-ids-misread") || f.count("vfio-ids-partial")) << all(f);
}

TEST(DoctorGuides, StaticIdsForACardAProfileNamesAreToldToChooseOne) {
  Laptop l;
  l.h.fs.put_file("/etc/modprobe.d/vfio.conf", "options vfio-pci ids=10de:2191,10de:1aeb,10de:1aec,10de:1aed\n");
  EXPECT_FALSE(findings(l.doctor()).count("vfio-ids-static")) << "no profile: static binding alone is a choice";
  put_profile(l.h, "win11", "[gpu]\naddress = \"0000:01:00.0\"\n");
  auto f = findings(l.doctor());
  ASSERT_TRUE(f.count("vfio-ids-static")) << all(f);
  EXPECT_TRUE(has(f["vfio-ids-static"], "remove /etc/modprobe.d/vfio.conf:1")) << f["vfio-ids-static"];
}

TEST(DoctorGuides, ARootPortsIdInIdsIsNamedAsABridgeVfioPciRefuses) {
  Laptop l;
  // The fake root port 00:01.0 is 8086:1901; a /lib file hidden by an /etc file of the same name is not read.
  l.h.fs.put_file("/usr/lib/modprobe.d/vfio.conf", "options vfio_pci ids=8086:1901,10de:2191,10de:1aeb,10de:1aec,10de:1aed\n");
  l.h.fs.put_file("/lib/modprobe.d/gpu.conf", "options vfio-pci ids=10de:2191\n");
  auto f = findings(l.doctor());
  ASSERT_TRUE(f.count("vfio-ids-bridge")) << all(f);
  EXPECT_TRUE(has(f["vfio-ids-bridge"], "/usr/lib/modprobe.d/vfio.conf:1")) << f["vfio-ids-bridge"];
  EXPECT_TRUE(has(f["vfio-ids-bridge"], "8086:1901 is the id of 0000:00:01.0 (PCI bridge)")) << f["vfio-ids-bridge"];
  l.h.fs.put_file("/etc/modprobe.d/vfio.conf", "options vfio-pci ids=10de:2191,10de:1aeb,10de:1aec,10de:1aed\n");
  f = findings(l.doctor());
  EXPECT_FALSE(f.count("vfio-ids-bridge")) << "/etc/modprobe.d/vfio.conf hides /usr/lib/modprobe.d/vfio.conf\n" << all(f);
}

TEST(DoctorGuides, ThreadrippersVfioPciIdsGrabThreeNvmeDrivesAndAmdIommuOnDoesNothing) {
  auto l = parse_listing(read_text(data("real/33-threadripper-1950x-x399-radeon-vii-rx580.txt")));
  auto h = host_from_listing(l);
  // The kernel command line the post quotes (the header's "host cmdline has ...").
  h->fs.put_file("/proc/cmdline", "BOOT_IMAGE=/vmlinuz-linux root=/dev/nvme0n1p2 rw vfio-pci.ids=1002:66af,1002:ab20,144d:a808,1b73:1100,1d6a:d107 amd_iommu=on iommu=pt\n");
  auto r = run_cli(h->host(), {"--json", "doctor"});
  auto f = findings(r);
  ASSERT_TRUE(f.count("vfio-ids-shared")) << all(f);
  const std::string& s = f["vfio-ids-shared"];
  EXPECT_TRUE(has(s, "error: /proc/cmdline: the vfio-pci id 144d:a808 matches 0000:09:00.0 (Non-Volatile memory controller), "
                     "0000:41:00.0 (Non-Volatile memory controller), 0000:42:00.0 (Non-Volatile memory controller)")) << s;
  EXPECT_TRUE(has(s, "warning: /proc/cmdline: the vfio-pci id 1b73:1100 matches 0000:44:00.0")) << "one device outside the card: a warning\n" << s;
  EXPECT_FALSE(has(s, "id 1002:66af matches") || has(s, "id 1002:ab20 matches")) << "the Radeon VII's own ids match only its card\n" << s;
  EXPECT_FALSE(f.count("vfio-ids-partial")) << "both functions of the Radeon VII are listed\n" << all(f);
  ASSERT_TRUE(f.count("cmdline-iommu-value")) << all(f);
  EXPECT_TRUE(has(f["cmdline-iommu-value"], "amd_iommu=on: amd_iommu= has no value 'on'")) << f["cmdline-iommu-value"];
  EXPECT_TRUE(has(f["cmdline-iommu-value"], "NEXT: remove amd_iommu=on")) << f["cmdline-iommu-value"];
  EXPECT_FALSE(has(f["cmdline-iommu-value"], "iommu=pt:")) << "iommu=pt is a value the kernel knows";
  // Vega 20 and Polaris 10: the reset bug, without vendor-reset.
  ASSERT_TRUE(f.count("gpu-reset-bug")) << all(f);
  EXPECT_TRUE(has(f["gpu-reset-bug"], "0000:0d:00.0 (1002:66af) is an AMD Vega 20 GPU")) << f["gpu-reset-bug"];
  EXPECT_TRUE(has(f["gpu-reset-bug"], "0000:43:00.0 (1002:67df) is an AMD Polaris 10 GPU")) << f["gpu-reset-bug"];
  h->fs.put_dir("/sys/module/vendor_reset");
  EXPECT_FALSE(findings(run_cli(h->host(), {"--json", "doctor"})).count("gpu-reset-bug")) << "vendor-reset loaded";
}

TEST(DoctorGuides, IommuOnIsNoValueAndTwoOptionsWrittenAsOneAreNamed) {
  FakeHost h;
  h.kernel.add_bridge("0000:00:01.0", -1);
  h.kernel.add_pci({"0000:01:00.0", "10de", "13c2", "1458", "3679", "030000", "", "", -1, true, "/sys/devices/pci0000:00/0000:00:01.0"});
  h.fs.put_file("/proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\n");
  h.fs.put_file("/proc/sys/kernel/osrelease", "6.1.0-test\n");
  h.fs.put_file("/boot/config-6.1.0-test", "#\nCONFIG_INTEL_IOMMU=y\n# CONFIG_INTEL_IOMMU_DEFAULT_ON is not set\n");
  h.fs.put_file("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro iommu=on quiet\n");
  auto f = findings(run_cli(h.host(), {"--json", "doctor"}));
  ASSERT_TRUE(f.count("cmdline-iommu-value")) << all(f);
  EXPECT_TRUE(has(f["cmdline-iommu-value"], "error: the kernel command line has iommu=on: iommu= has no value 'on'")) << f["cmdline-iommu-value"];
  EXPECT_TRUE(has(f["cmdline-iommu-value"], "replace iommu=on with intel_iommu=on")) << f["cmdline-iommu-value"];
  ASSERT_TRUE(f.count("cmdline-intel-iommu-missing")) << all(f);
  EXPECT_TRUE(has(f["cmdline-intel-iommu-missing"], "6.1.0-test turns the Intel IOMMU off by default"));
  h.fs.put_file("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro iommu=on,iommu=pt quiet\n");
  f = findings(run_cli(h.host(), {"--json", "doctor"}));
  EXPECT_TRUE(has(f["cmdline-iommu-value"], "no value 'on', 'iommu=pt'")) << f["cmdline-iommu-value"];
  EXPECT_TRUE(has(f["cmdline-iommu-value"], "write each option on its own")) << f["cmdline-iommu-value"];
  h.fs.put_file("/proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro intel_iommu=on iommu=pt quiet\n");
  f = findings(run_cli(h.host(), {"--json", "doctor"}));
  EXPECT_FALSE(f.count("cmdline-iommu-value") || f.count("cmdline-intel-iommu-missing")) << all(f);
}

TEST(DoctorGuides, ANavi10WithoutVendorResetAndAnEmptyResetMethodAreWarned) {
  auto l = parse_listing(read_text(data("real/31-x570-aorus-pro-5900x-rx5700xt-single-gpu.txt")));
  auto h = host_from_listing(l);
  const std::string dev = *h->fs.canonical("/sys/bus/pci/devices/0000:0b:00.0");
  h->fs.put_file(dev + "/reset_method", "\n");
  auto f = findings(run_cli(h->host(), {"--json", "doctor"}));
  EXPECT_TRUE(has(f["gpu-reset-bug"], "0000:0b:00.0 (1002:731f) is an AMD Navi 10 GPU")) << all(f);
  EXPECT_TRUE(has(f["gpu-reset-bug"], "echo vendor-reset > /etc/modules-load.d/vendor-reset.conf")) << all(f);
  EXPECT_TRUE(has(f["gpu-reset-none"], "0000:0b:00.0 offers no reset method")) << all(f);
  h->fs.put_file(dev + "/reset_method", "flr bus\n");
  EXPECT_FALSE(findings(run_cli(h->host(), {"--json", "doctor"})).count("gpu-reset-none"));
}

struct Check {
  FakeHost h;
  std::string vm;
  CliResult run(const std::string& xml_file) { return run_cli(h.host(), {"--json", "check", vm, "--xml", xml_file}); }
  std::string file(const std::string& content) {
    std::string p = ::testing::TempDir() + "gpuhook-guides-" + std::to_string(::getpid()) + ".xml";
    std::ofstream(p) << content;
    return p;
  }
};

// The ASUS X541UJ of tests/data/domains/08, as far as its domain says: HD 620 00:02.0, GeForce
// 920M 01:00.0 (10de:1299, subsystem 1043:18d0: the ids its own override gives) behind root port
// 00:1c.0, and the PCH functions 00:1f.0 (LPC), 00:1f.2 (PMC), 00:1f.3 (audio), 00:1f.4 (SMBus).
void build_x541uj(FakeHost& h) {
  auto& k = h.kernel;
  k.add_module({"i915", {}, "i915", false, true});
  k.add_module({"nouveau", {}, "nouveau", false, true});
  k.add_module({"snd_hda_intel", {}, "snd_hda_intel", false, true});
  k.add_module({"i801_smbus", {}, "i801_smbus", false, true});
  k.add_pci({"0000:00:00.0", "8086", "5904", "1043", "1a00", "060000", "", "", 0});
  k.add_pci({"0000:00:02.0", "8086", "5916", "1043", "1a00", "030000", "i915", "i915", 1, true});
  k.add_bridge("0000:00:1c.0", 7);
  k.add_pci({"0000:01:00.0", "10de", "1299", "1043", "18d0", "030200", "nouveau", "nouveau", 7, false,
             "/sys/devices/pci0000:00/0000:00:1c.0"});
  k.add_pci({"0000:00:1f.0", "8086", "9d58", "1043", "1a00", "060100", "", "", 8});
  k.add_pci({"0000:00:1f.2", "8086", "9d21", "1043", "1a00", "058000", "", "", 8});
  k.add_pci({"0000:00:1f.3", "8086", "9d71", "1043", "1a00", "040300", "snd_hda_intel", "snd_hda_intel", 8});
  k.add_pci({"0000:00:1f.4", "8086", "9d23", "1043", "1a00", "0c0500", "i801_smbus", "i801_smbus", 8});
  h.fs.put_file("/sys/class/dmi/id/chassis_type", "10\n");
}

TEST(CheckGuides, TheX541ujAttemptPassesTheChipsetsLpcAndSmbusAndCarriesRomMistakes) {
  Check c;
  build_x541uj(c.h);
  c.vm = "win10-nvidia-attempt";
  put_profile(c.h, c.vm, "[gpu]\naddress = \"0000:01:00.0\"\n");
  auto r = c.run(data("domains/08-asus-x541uj-laptop-igd-plus-920m-attempt-errors.xml"));
  EXPECT_EQ(r.rc, 1);
  auto f = findings(r);
  ASSERT_TRUE(f.count("hostdev-host-critical")) << all(f);
  const std::string& hc = f["hostdev-host-critical"];
  EXPECT_TRUE(has(hc, "error: domain win10-nvidia-attempt line 241: <hostdev> 0000:00:1f.0 ISA bridge [0601]")) << hc;
  EXPECT_TRUE(has(hc, "LPC/eSPI bridge")) << hc;
  EXPECT_TRUE(has(hc, "line 255: <hostdev> 0000:00:1f.4 SMBus [0c05] 8086:9d23 on i801_smbus")) << hc;
  EXPECT_FALSE(has(hc, "0000:00:1f.3")) << "the PCH's audio is no chipset function the host needs\n" << hc;
  ASSERT_TRUE(f.count("rom-missing")) << all(f);
  EXPECT_TRUE(has(f["rom-missing"], "<rom file='/home/manuel/.libvirt/i915ovmf_new.rom'/> of hostdev 0000:00:02.0 cannot be read")) << f["rom-missing"];
  ASSERT_TRUE(f.count("rom-bar-off")) << all(f);
  EXPECT_TRUE(has(f["rom-bar-off"], "the GPU 0000:01:00.0 has <rom bar='off'/>")) << f["rom-bar-off"];
  EXPECT_TRUE(has(f["hostdev-address"], "0000:01:00.1 does not exist on this host")) << all(f);
}

TEST(CheckGuides, RomFilesAreReadForTheirSignatureAndBelongOnTheDisplayFunctionOnly) {
  Check c;
  build_reference_laptop(c.h);
  c.h.fs.put_file("/sys/class/dmi/id/chassis_type", "3\n");
  c.vm = "win11";
  put_profile(c.h, "win11", "[gpu]\naddress = \"0000:01:00.0\"\n");
  c.h.fs.put_file("/var/lib/gpuhook/good.rom", std::string("\x55\xaa\x40\x00", 4));
  c.h.fs.put_file("/var/lib/gpuhook/nvflash.rom", std::string("NVGI\x55\xaa", 6));
  auto hd = [](const std::string& fn, const std::string& rom) {
    return "<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x" + fn +
           "'/></source>" + rom + "</hostdev>\n";
  };
  auto dom = [&](const std::string& devs) {
    return "<domain type='kvm'><name>win11</name><os firmware='efi'><type machine='pc-q35-7.2'>hvm</type></os><devices>\n" + devs + "</devices></domain>\n";
  };
  auto f = findings(c.run(c.file(dom(hd("0", "<rom file='/var/lib/gpuhook/good.rom'/>") + hd("1", "<rom file='/var/lib/gpuhook/good.rom'/>") +
                                     hd("2", "") + hd("3", "")))));
  EXPECT_FALSE(f.count("rom-signature") || f.count("rom-missing")) << all(f);
  ASSERT_TRUE(f.count("rom-wrong-function")) << all(f);
  EXPECT_TRUE(has(f["rom-wrong-function"], "hostdev 0000:01:00.1 (Audio device) carries <rom file='/var/lib/gpuhook/good.rom'/>")) << all(f);
  f = findings(c.run(c.file(dom(hd("0", "<rom file='/var/lib/gpuhook/nvflash.rom'/>") + hd("1", "") + hd("2", "") + hd("3", "")))));
  ASSERT_TRUE(f.count("rom-signature")) << all(f);
  EXPECT_TRUE(has(f["rom-signature"], "starts with 0x4e56, not the PCI option ROM signature 0x55aa")) << f["rom-signature"];
  EXPECT_FALSE(f.count("rom-wrong-function"));
}

TEST(CheckGuides, TheRootFileSystemsControllerAndTheDefaultRoutesNicAreHostCritical) {
  Check c;
  build_reference_laptop(c.h);
  c.vm = "win11";
  put_profile(c.h, "win11", "[gpu]\naddress = \"0000:01:00.0\"\n");
  auto& k = c.h.kernel;
  k.add_bridge("0000:00:1d.0", 9);
  k.add_bridge("0000:00:1c.2", 10);
  k.add_pci({"0000:02:00.0", "144d", "a808", "144d", "a801", "010802", "", "", 9, false, "/sys/devices/pci0000:00/0000:00:1d.0"});
  k.add_pci({"0000:03:00.0", "10ec", "8168", "1558", "8550", "020000", "", "", 10, false, "/sys/devices/pci0000:00/0000:00:1c.2"});
  const std::string nvme = "/sys/devices/pci0000:00/0000:00:1d.0/0000:02:00.0/nvme/nvme0/nvme0n1/nvme0n1p2";
  c.h.fs.put_dir(nvme);
  c.h.fs.put_link("/sys/class/block/nvme0n1p2", nvme);
  const std::string nic = "/sys/devices/pci0000:00/0000:00:1c.2/0000:03:00.0/net/enp3s0";
  c.h.fs.put_dir(nic);
  c.h.fs.put_link("/sys/class/net/enp3s0", nic);
  c.h.fs.put_file("/proc/mounts", "sysfs /sys sysfs rw 0 0\n/dev/nvme0n1p2 / ext4 rw,relatime 0 0\n");
  c.h.fs.put_file("/proc/net/route", "Iface\tDestination\tGateway\tFlags\nenp3s0\t0000A8C0\t00000000\t0001\nenp3s0\t00000000\t0100A8C0\t0003\n");
  std::string xml = "<domain type='kvm'><name>win11</name><devices>\n"
                    "<hostdev mode='subsystem' type='pci' managed='no'><source><address bus='0x02' slot='0x00' function='0x0'/></source></hostdev>\n"
                    "<hostdev mode='subsystem' type='pci' managed='no'><source><address bus='0x03' slot='0x00' function='0x0'/></source></hostdev>\n"
                    "</devices></domain>\n";
  auto f = findings(c.run(c.file(xml)));
  const std::string& hc = f["hostdev-host-critical"];
  EXPECT_TRUE(has(hc, "0000:02:00.0 Non-Volatile memory controller [0108] 144d:a808 (no driver) gives the VM a device the host needs: "
                      "the host loses the controller of the host's root file system (/dev/nvme0n1p2 on /)")) << all(f);
  EXPECT_TRUE(has(hc, "the network device of the host's default route (enp3s0)")) << all(f);
  // Booted with root=/dev/root (what /proc/mounts then says): mountinfo's major:minor finds it.
  c.h.fs.put_file("/proc/mounts", "/dev/root / ext4 rw,relatime 0 0\n");
  f = findings(c.run(c.file(xml)));
  EXPECT_FALSE(has(f["hostdev-host-critical"], "root file system")) << "without mountinfo /dev/root says nothing";
  c.h.fs.put_file("/proc/self/mountinfo", "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/root rw\n");
  c.h.fs.put_link("/sys/dev/block/259:2", nvme);
  f = findings(c.run(c.file(xml)));
  EXPECT_TRUE(has(f["hostdev-host-critical"], "the controller of the host's root file system (block device 259:2 on /)")) << all(f);
}

TEST(CheckGuides, StaticIdsForTheProfilesCardNameTheLinesToRemove) {
  Check c;
  build_reference_laptop(c.h);
  c.vm = "win11";
  put_profile(c.h, "win11", "[gpu]\naddress = \"0000:01:00.0\"\n");
  c.h.fs.put_file("/etc/modprobe.d/vfio.conf", "softdep nvidia pre: vfio-pci\noptions vfio-pci ids=10de:2191,10de:1aeb,10de:1aec,10de:1aed\n");
  std::string xml = "<domain type='kvm'><name>win11</name><devices/></domain>\n";
  auto f = findings(c.run(c.file(xml)));
  ASSERT_TRUE(f.count("vfio-ids-static")) << all(f);
  EXPECT_TRUE(has(f["vfio-ids-static"], "remove /etc/modprobe.d/vfio.conf:2 `options vfio-pci ids=10de:2191,10de:1aeb,10de:1aec,10de:1aed`"))
      << f["vfio-ids-static"];
  c.h.fs.erase("/etc/modprobe.d/vfio.conf");
  EXPECT_FALSE(findings(c.run(c.file(xml))).count("vfio-ids-static"));
}

TEST(CheckGuides, ADomainXmlWithoutTheClosingBracketOfItsDomainTagNamesLineAndColumn) {
  Check c;
  build_reference_laptop(c.h);
  c.vm = "macOS";
  std::string xml = read_text(data("domains/02-ashtonian-macos-opencore-rx560.xml"));
  const std::string tag = "<domain xmlns:qemu=\"http://libvirt.org/schemas/domain/qemu/1.0\" type=\"kvm\">";
  auto at = xml.find(tag);
  ASSERT_NE(at, std::string::npos);
  xml.erase(at + tag.size() - 1, 1);  // the '>' of <domain ...>
  auto r = c.run(c.file(xml));
  auto f = findings(r);
  ASSERT_TRUE(f.count("domain-xml-invalid")) << all(f);
  EXPECT_TRUE(has(f["domain-xml-invalid"], "does not parse: line 11, column ")) << f["domain-xml-invalid"];
  EXPECT_EQ(r.rc, 1);
}

}  // namespace
}  // namespace gpuhook::fixtures

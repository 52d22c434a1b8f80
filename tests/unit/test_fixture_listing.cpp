// The listing reader and the sysfs tree generator (tests/support): every listing format people
// post, messy input, and a tree the kernel's way (relative links, attribute formats, bridges).
#include <gtest/gtest.h>

#include <filesystem>

#include "host/real_host.h"
#include "support/cli.h"

namespace gpuhook::fixtures {
namespace {

TEST(Listing, ReadsTheShellLoopWithPromptsErrorsPrefixesAndUnsortedGroups) {
  Listing l = parse_listing(
      "user@host:~$ ./iommu.sh\n"
      "lsiommu: 3: shopt: not found\n"
      "IOMMU Group 10 02:00.0 Ethernet controller [0200]: Realtek [10ec:8168] (rev 15)\n"
      "IOMMU group 1 0000:01:00.0 VGA compatible controller [0300]: NVIDIA Corporation GP106M [GeForce GTX 1060 Mobile] [10de:1c20] (rev a1)\n"
      "IOMMU Group 1 00:01.0 PCI bridge [0604]: Intel Corporation Device [8086:1901] (rev 07)\n"
      "...\n");
  ASSERT_EQ(l.devices.size(), 3u);
  EXPECT_TRUE(l.has_groups);
  EXPECT_EQ(l.devices[0].address.str(), "0000:00:01.0") << "sorted by address";
  EXPECT_EQ(l.devices[1].address.str(), "0000:01:00.0") << "the 0000: prefix is understood";
  EXPECT_EQ(l.devices[1].vendor, "10de");
  EXPECT_EQ(l.devices[1].device, "1c20") << "the ids are the last [vvvv:dddd], not [GeForce ...]";
  EXPECT_EQ(l.devices[1].class4, "0300");
  EXPECT_EQ(*l.devices[1].group, 1);
  EXPECT_EQ(*l.devices[2].group, 10);
  EXPECT_EQ(l.ignored.size(), 3u) << "prompt, error and '...' are kept aside, not guessed at";
}

TEST(Listing, ReadsGroupHeadersWithIndentedDevicesAndMergesALaterLspciBlock) {
  Listing l = parse_listing(
      "IOMMU Group 10:\n"
      "        01:00.0 VGA compatible controller [0300]: NVIDIA Corporation TU106M [10de:1f15] (rev a1)\n"
      "        01:00.1 Audio device [0403]: NVIDIA Corporation TU106 [10de:10f9] (rev a1)\n"
      "...\n"
      "IOMMU Group 11:\n"
      "        02:00.0 Ethernet controller [0200]: Realtek [10ec:8168] (rev 15)\n"
      "\n"
      "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation TU106M [10de:1f15] (rev a1)\n"
      "        Subsystem: ASUSTeK Computer Inc. TU106M [GeForce RTX 2060 Mobile] [1043:1e21]\n"
      "        Kernel driver in use: vfio-pci\n"
      "        Kernel modules: nvidiafb, nouveau\n");
  ASSERT_EQ(l.devices.size(), 3u);
  EXPECT_TRUE(l.problems.empty());
  const ListedDevice* gpu = l.find("0000:01:00.0");
  ASSERT_NE(gpu, nullptr);
  EXPECT_EQ(*gpu->group, 10) << "the lspci block does not lose the group";
  EXPECT_EQ(gpu->subsystem_vendor, "1043");
  EXPECT_EQ(gpu->subsystem_device, "1e21");
  EXPECT_EQ(gpu->driver, "vfio-pci");
  EXPECT_EQ(*l.find("0000:02:00.0")->group, 11);
  EXPECT_FALSE(l.find("0000:01:00.1")->subsystem_vendor.size()) << "details belong to the device above them only";
}

TEST(Listing, LspciOnlyHasNoGroupsAndAPastedCmdlineIsKept) {
  Listing l = parse_listing(
      "BOOT_IMAGE=/boot/vmlinuz root=UUID=x ro quiet intel_iommu=on\n"
      "00:02.0 VGA compatible controller [0300]: Intel Corporation UHD Graphics 630 [8086:3e9b]\n"
      "\tSubsystem: Lenovo UHD Graphics 630 [17aa:225f]\n"
      "\tKernel driver in use: i915\n"
      "01:00.0 3D controller [0302]: NVIDIA Corporation GP107M [GeForce GTX 1050 Mobile] [10de:1c8d] (rev a1)\n");
  ASSERT_EQ(l.devices.size(), 2u);
  EXPECT_FALSE(l.has_groups);
  EXPECT_EQ(l.cmdline, "BOOT_IMAGE=/boot/vmlinuz root=UUID=x ro quiet intel_iommu=on");
  EXPECT_EQ(l.devices[0].driver, "i915");
  EXPECT_EQ(l.devices[1].class4, "0302");
  EXPECT_EQ(l.devices[1].driver, "");
}

TEST(Listing, OneAddressInTwoGroupsIsReportedNotSilentlyMerged) {
  Listing l = parse_listing(
      "IOMMU Group 1 01:00.0 VGA compatible controller [0300]: X [10de:1c20]\n"
      "IOMMU Group 2 01:00.0 VGA compatible controller [0300]: X [10de:1c20]\n");
  ASSERT_EQ(l.problems.size(), 1u);
  EXPECT_NE(l.problems[0].find("0000:01:00.0 is in IOMMU group 1"), std::string::npos) << l.problems[0];
}

TEST(Listing, HeaderLinesAreReadOnlyAtTheTop) {
  Listing l = parse_listing("# source: somewhere\n# kind: muxed-laptop\n# note: a\n# note: b\n"
                            "01:00.0 VGA compatible controller [0300]: X [10de:1c20]\n# later comment\n");
  EXPECT_EQ(l.header.at("source"), "somewhere");
  EXPECT_EQ(l.header.at("kind"), "muxed-laptop");
  EXPECT_EQ(l.header.at("note"), "a | b");
  EXPECT_EQ(l.ignored.size(), 1u);
}

TEST(SysfsTree, RelativeLinksAreComputedLikeTheKernels) {
  EXPECT_EQ(relative_link("/sys/bus/pci/devices", "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0"),
            "../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0");
  EXPECT_EQ(relative_link("/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0", "/sys/kernel/iommu_groups/1"),
            "../../../../kernel/iommu_groups/1");
  EXPECT_EQ(relative_link("/a/b", "/a/b"), ".");
}

// Fixture 05 (a Ryzen desktop): the chipset hangs off 00:01.3 and the GPU off 00:03.1 in reality;
// the listing only tells it through the IOMMU groups, which the placement uses.
TEST(SysfsTree, BridgesArePlacedFromTheGroupsAndAttributesHaveTheKernelsFormat) {
  Listing l = parse_listing(read_text(std::string(GPUHOOK_SOURCE_DIR) +
                                      "/tests/data/real/05-desktop-ryzen-radeon-r7-240-single.txt"));
  auto h = host_from_listing(l);
  auto& fs = h->fs;
  EXPECT_EQ(*fs.canonical("/sys/bus/pci/devices/0000:23:00.0"), "/sys/devices/pci0000:00/0000:00:03.1/0000:23:00.0");
  EXPECT_EQ(*fs.canonical("/sys/bus/pci/devices/0000:04:00.0"),
            "/sys/devices/pci0000:00/0000:00:01.3/0000:03:00.2/0000:04:00.0");
  EXPECT_EQ(*fs.readlink("/sys/bus/pci/devices/0000:23:00.0"), "../../../devices/pci0000:00/0000:00:03.1/0000:23:00.0");
  EXPECT_EQ(*fs.read("/sys/bus/pci/devices/0000:23:00.0/class"), "0x030000\n");
  EXPECT_EQ(*fs.read("/sys/bus/pci/devices/0000:23:00.0/vendor"), "0x1002\n");
  EXPECT_EQ(*fs.read("/sys/bus/pci/devices/0000:23:00.0/boot_vga"), "1\n") << "the only VGA device of a desktop";
  EXPECT_FALSE(fs.exists("/sys/bus/pci/devices/0000:23:00.1/boot_vga")) << "the kernel has boot_vga on VGA devices only";
  EXPECT_FALSE(fs.exists("/sys/bus/pci/devices/0000:23:00.0/subsystem_vendor")) << "not in the listing: not invented";
  EXPECT_EQ(*fs.canonical("/sys/kernel/iommu_groups/13/devices/0000:23:00.1"),
            "/sys/devices/pci0000:00/0000:00:03.1/0000:23:00.1");
  EXPECT_EQ(link_name(fs, "/sys/bus/pci/devices/0000:23:00.0/iommu_group"), "13");
  EXPECT_EQ(*fs.read("/sys/class/dmi/id/chassis_type"), "3\n") << "kind: desktop-single-gpu";
}

TEST(SysfsTree, AListingWithoutBridgesOrGroupsStillPutsBusOneBehindABridgeDirectory) {
  Listing l = parse_listing("01:00.0 3D controller [0302]: NVIDIA Corporation GP107M [10de:1c8d] (rev a1)\n"
                            "\tKernel driver in use: nvidia\n");
  auto h = host_from_listing(l);
  EXPECT_EQ(*h->fs.canonical("/sys/bus/pci/devices/0000:01:00.0"),
            "/sys/devices/pci0000:00/bridge-to-bus-01/0000:01:00.0");
  EXPECT_FALSE(h->fs.exists("/sys/bus/pci/devices/0000:00:01.0")) << "no invented PCI device";
  EXPECT_EQ(*h->fs.list("/sys/kernel/iommu_groups"), std::vector<std::string>{}) << "the directory exists, empty";
  EXPECT_FALSE(h->fs.exists("/sys/bus/pci/devices/0000:01:00.0/iommu_group"));
  EXPECT_EQ(link_name(h->fs, "/sys/bus/pci/devices/0000:01:00.0/driver"), "nvidia");
  EXPECT_EQ(*h->fs.canonical("/sys/bus/pci/drivers/nvidia/0000:01:00.0"),
            "/sys/devices/pci0000:00/bridge-to-bus-01/0000:01:00.0");
}

// The same tree written to a directory reads the same through the real Fs as through the FakeFs.
TEST(SysfsTree, ADirectoryTreeReadsLikeTheFakeOne) {
  Listing l = parse_listing(read_text(std::string(GPUHOOK_SOURCE_DIR) +
                                      "/tests/data/real/06-desktop-z97-two-hd7970-same-group.txt"));
  Tree t = build_sysfs_tree(l);
  std::string dir = ::testing::TempDir() + "gpuhook-tree-06";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(write_tree_dir(dir, t).ok());
  EXPECT_FALSE(write_tree_dir(dir, t).ok()) << "a non-empty directory is refused";
  FakeHost fake;
  write_tree(fake.fs, t);
  RealFs real(dir);
  PciSysfs a(real), b(fake.fs);
  EXPECT_EQ(a.groups(), b.groups());
  EXPECT_EQ(a.addresses(), b.addresses());
  for (const auto& addr : a.addresses()) {
    auto x = a.device(addr), y = b.device(addr);
    ASSERT_TRUE(x && y) << addr;
    EXPECT_EQ(x->class_code, y->class_code);
    EXPECT_EQ(x->iommu_group, y->iommu_group);
    EXPECT_EQ(x->driver, y->driver);
    EXPECT_EQ(*real.canonical("/sys/bus/pci/devices/" + addr), *fake.fs.canonical("/sys/bus/pci/devices/" + addr));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gpuhook::fixtures

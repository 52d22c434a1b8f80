// gpuhook ids: hex and decimal ids, and domain XML that libvirt's own schema accepts (checked with
// virt-xml-validate from libvirt-clients) and that gpuhook's domain parser reads back.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "domain/domain_xml.h"
#include "support/cli.h"

namespace gpuhook::fixtures {
namespace {

namespace json = boost::json;

std::string domain_with(const std::string& qemu_part) {
  return "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
         "  <name>win11</name>\n  <memory unit='KiB'>4194304</memory>\n"
         "  <os firmware='efi'><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>\n"
         "  <devices>\n"
         "    <hostdev mode='subsystem' type='pci' managed='no'>\n"
         "      <source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source>\n"
         "    </hostdev>\n"
         "  </devices>\n" +
         qemu_part + "</domain>\n";
}

// Validates a domain XML against libvirt's RelaxNG schema; -1 when the validator is not installed.
int libvirt_validate(const std::string& xml) {
  if (std::system("command -v virt-xml-validate >/dev/null 2>&1") != 0) return -1;
  std::string path = ::testing::TempDir() + "gpuhook-ids-domain.xml";
  std::ofstream(path) << xml;
  std::string cmd = "virt-xml-validate '" + path + "' domain >/dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  std::remove(path.c_str());
  return WEXITSTATUS(rc);
}

TEST(Ids, TheReferenceLaptopsSubsystemIdsAre5464And34128) {
  FakeHost h;
  build_reference_laptop(h);
  auto r = run_cli(h.host(), {"ids", "0000:01:00.0"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("subsystem vendor  1558   5464"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("subsystem device  8550   34128"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vendor            10de   4318"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"), std::string::npos);
  EXPECT_NE(r.out.find("<qemu:property name='x-pci-sub-vendor-id' type='unsigned' value='5464'/>"), std::string::npos);
  EXPECT_NE(r.out.find("<qemu:arg value='device.hostdev0.x-pci-sub-device-id=34128'/>"), std::string::npos);
  auto j = json_of(run_cli(h.host(), {"--json", "ids", "01:00.0"}).out);
  EXPECT_EQ(j.at("subsystem_vendor").at("decimal").as_int64(), 5464);
  EXPECT_EQ(j.at("subsystem_device").at("decimal").as_int64(), 34128);
  EXPECT_EQ(j.at("subsystem_device").at("hex").as_string(), "8550");
  EXPECT_EQ(j.at("xml").at("alias").as_string(), "hostdev0");
}

TEST(Ids, BothXmlFormsAreValidLibvirtDomainXmlAndReadBack) {
  FakeHost h;
  build_reference_laptop(h);
  auto j = json_of(run_cli(h.host(), {"--json", "ids", "0000:01:00.0"}).out);
  for (const char* form : {"override", "commandline"}) {
    SCOPED_TRACE(form);
    std::string xml = domain_with(std::string(j.at("xml").at(form).as_string()));
    int v = libvirt_validate(xml);
    if (v < 0) GTEST_SKIP() << "virt-xml-validate (libvirt-clients) is not installed";
    EXPECT_EQ(v, 0) << xml;
    auto d = parse_domain_xml(xml);
    ASSERT_TRUE(d.ok());
    EXPECT_TRUE(d->has_qemu_namespace);
    std::vector<std::string> want = {std::string("hostdev0 x-pci-sub-vendor-id=5464 ") + form,
                                     std::string("hostdev0 x-pci-sub-device-id=34128 ") + form};
    std::vector<std::string> got;
    for (const auto& q : d->qemu_props) got.push_back(q.alias + " " + q.name + "=" + q.value + " " + q.form);
    EXPECT_EQ(got, want);
  }
  // The validator does reject what is not libvirt XML, so the check above can fail.
  int bogus = libvirt_validate(domain_with("  <qemu:override><qemu:nonsense/></qemu:override>\n"));
  EXPECT_NE(bogus, 0);
}

TEST(Ids, BadAddressIsAUsageErrorAndAMissingDeviceAProblem) {
  FakeHost h;
  build_reference_laptop(h);
  EXPECT_EQ(run_cli(h.host(), {"ids", "1:0.0"}).rc, 2);
  EXPECT_EQ(run_cli(h.host(), {"ids", "0000:01:00.8"}).rc, 2);
  auto r = run_cli(h.host(), {"ids", "0000:05:00.0"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("no PCI device 0000:05:00.0"), std::string::npos) << r.err;
  auto shortform = run_cli(h.host(), {"--json", "ids", "01:00.0"});
  auto full = run_cli(h.host(), {"--json", "ids", "0000:01:00.0"});
  EXPECT_EQ(json_of(shortform.out), json_of(full.out)) << "01:00.0 means domain 0000";
  EXPECT_EQ(json_of(run_cli(h.host(), {"--json", "ids", "0000:00:1F.3"}).out).at("address").as_string(), "0000:00:1f.3")
      << "addresses are printed lowercase whatever was typed";
}

TEST(Ids, WithoutSubsystemAttributesThereIsNoXmlAndExitIsOne) {
  FakeHost h;
  h.kernel.add_pci({"0000:00:02.0", "8086", "3e9b", "", "", "030000", "", "", 2, true});
  h.fs.erase("/sys/devices/pci0000:00/0000:00:02.0/subsystem_vendor");
  h.fs.erase("/sys/devices/pci0000:00/0000:00:02.0/subsystem_device");
  auto r = run_cli(h.host(), {"--json", "ids", "00:02.0"});
  EXPECT_EQ(r.rc, 1);
  auto j = json_of(r.out);
  EXPECT_TRUE(j.at("xml").is_null());
  EXPECT_TRUE(j.at("subsystem_vendor").is_null());
  EXPECT_EQ(j.at("vendor").at("decimal").as_int64(), 0x8086);
}

}  // namespace
}  // namespace gpuhook::fixtures

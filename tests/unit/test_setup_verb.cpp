// gpuhook setup VM: the verb with libvirt replaced by an in-memory domain store (DomainStore), on
// the fake reference laptop and the fake single-GPU desktop. What it proves: the domain gets one
// managed='no' hostdev per function of the card (managed='yes' replaced, missing ones added) and
// the NVIDIA laptop's subsystem ids in decimal on the GPU's alias; the profile is written 0600
// with the marker and loads; the old domain XML is kept as a 0600 backup; a second run changes
// nothing; --undo restores the exact old XML and removes the profile; --dry-run, a declined
// question and a missing terminal change nothing (exit 0, 1, 2); an ambiguous choice and a foreign
// profile are refused, naming what to do. The real libvirtd is in tests/libvirt/scenarios/setup.sh.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "app/setup.h"
#include "domain/domain_xml.h"
#include "fake/fake_host.h"
#include "profile/profile.h"

namespace gpuhook {
namespace {

struct MemoryStore : DomainStore {
  std::map<std::string, std::string> domains;
  int defines = 0;
  Result<std::string> xml(const std::string& vm) override {
    auto it = domains.find(vm);
    if (it == domains.end()) {
      Error e;
      e.what = "libvirt has no domain named " + vm;
      return e;
    }
    return it->second;
  }
  Status define(const std::string& xml) override {
    auto d = parse_domain_xml(xml);
    if (!d) return d.error();
    domains[d->name] = xml;
    ++defines;
    return Status::success();
  }
};

// What `virsh dumpxml --inactive` gives for a VM made in virt-manager with the GPU added: only its
// first function, managed='yes'.
std::string dumpxml(const std::string& machine = "pc-q35-7.2") {
  return "<domain type='kvm'>\n"
         "  <name>win11</name>\n"
         "  <memory unit='KiB'>4194304</memory>\n"
         "  <os firmware='efi'>\n"
         "    <type arch='x86_64' machine='" + machine + "'>hvm</type>\n"
         "  </os>\n"
         "  <devices>\n"
         "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
         "    <hostdev mode='subsystem' type='pci' managed='yes'>\n"
         "      <source>\n"
         "        <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>\n"
         "      </source>\n"
         "      <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>\n"
         "    </hostdev>\n"
         "    <memballoon model='virtio'/>\n"
         "  </devices>\n"
         "</domain>\n";
}

struct SetupRun {
  FakeHost h;
  MemoryStore store;
  std::string out, err;
  explicit SetupRun(bool laptop = true) {
    if (laptop) {
      build_reference_laptop(h);
      h.fs.put_file("/sys/class/dmi/id/chassis_type", "10\n");
      h.fs.put_file("/lib/systemd/system/nvidia-persistenced.service", "[Service]\n");
    } else {
      build_single_gpu_desktop(h);
    }
    h.fs.put_dir("/etc/gpuhook/vms");
    store.domains["win11"] = dumpxml();
  }
  int run(std::vector<std::string> args, bool tty = false, const std::string& answer = "") {
    args.insert(args.begin(), {"gpuhook", "setup"});
    Invocation inv = parse_args(args);
    EXPECT_EQ(inv.kind, Invocation::Kind::verb) << inv.error;
    AppContext app{h.host(), "/", {}, {}, {}};
    std::istringstream in(answer);
    std::ostringstream o, e;
    int rc = run_setup(app, inv, store, tty, in, o, e);
    out = o.str(), err = e.str();
    return rc;
  }
  std::vector<std::string> backups() {
    auto l = h.fs.list(kBackupDir);
    return l ? *l : std::vector<std::string>{};
  }
};

TEST(SetupVerb, ALaptopDomainWithTheGpuAsManagedYesGetsEveryFunctionTheOverrideAndAProfileThenUndoRestoresIt) {
  SetupRun s;
  const std::string before = s.store.domains["win11"];
  s.run({"win11", "--yes"});
  EXPECT_EQ(s.store.defines, 1) << s.out << s.err;
  auto d = parse_domain_xml(s.store.domains["win11"]);
  ASSERT_TRUE(d) << s.store.domains["win11"];
  std::vector<std::string> addrs;
  for (const auto& hd : d->hostdevs) {
    addrs.push_back(hd.address);
    EXPECT_FALSE(hd.managed) << hd.address << " must be managed='no'";
  }
  EXPECT_EQ(addrs, (std::vector<std::string>{"0000:01:00.0", "0000:01:00.1", "0000:01:00.2", "0000:01:00.3"}));
  EXPECT_TRUE(d->has_qemu_namespace);
  int found = 0;
  for (const auto& p : d->qemu_props) {
    EXPECT_EQ(p.alias, "hostdev0");
    EXPECT_EQ(p.form, "override");
    if (p.name == "x-pci-sub-vendor-id") found += p.value == "5464";
    if (p.name == "x-pci-sub-device-id") found += p.value == "34128";
  }
  EXPECT_EQ(found, 2) << "1558:8550 in decimal\n" << s.store.domains["win11"];
  // The guest-side <address> of the GPU's hostdev is kept: only managed= changed in that element.
  EXPECT_NE(s.store.domains["win11"].find("<address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>"),
            std::string::npos);
  // The profile: root's, 0600, setup's marker, and it loads.
  FileInfo fi = s.h.fs.stat("/etc/gpuhook/vms/win11.toml");
  EXPECT_EQ(fi.mode & 0777, 0600u);
  EXPECT_EQ(fi.uid, 0u);
  auto text = *s.h.fs.read("/etc/gpuhook/vms/win11.toml");
  EXPECT_EQ(text.rfind(kSetupMarker, 0), 0u);
  EXPECT_NE(text.find("address = \"0000:01:00.0\""), std::string::npos) << text;
  EXPECT_NE(text.find("mode = \"external\""), std::string::npos) << "the iGPU drives the panel\n" << text;
  ConfigErrors pe;
  auto p = load_profile(s.h.fs, "/etc/gpuhook/vms/win11.toml", {}, &pe);
  EXPECT_TRUE(p) << pe.text();
  // The backup is the old XML, 0600 in a 0700 directory.
  ASSERT_EQ(s.backups(), std::vector<std::string>{"win11.0001.xml"});
  EXPECT_EQ(*s.h.fs.read(std::string(kBackupDir) + "/win11.0001.xml"), before);
  EXPECT_EQ(s.h.fs.stat(std::string(kBackupDir) + "/win11.0001.xml").mode & 0777, 0600u);
  EXPECT_EQ(s.h.fs.stat(kBackupDir).mode & 0777, 0700u);
  EXPECT_NE(s.out.find("Check of VM win11"), std::string::npos) << "it ends with check's report\n" << s.out;

  // A second setup changes nothing.
  const std::string after = s.store.domains["win11"];
  s.run({"win11", "--yes"});
  EXPECT_EQ(s.store.defines, 1) << s.out;
  EXPECT_EQ(s.store.domains["win11"], after);
  EXPECT_EQ(s.backups().size(), 1u);
  EXPECT_NE(s.out.find("nothing to change"), std::string::npos) << s.out;

  // --undo: the exact old definition, the profile gone.
  int rc = s.run({"win11", "--undo", "--yes"});
  EXPECT_EQ(rc, 0) << s.err;
  EXPECT_EQ(s.store.domains["win11"], before);
  EXPECT_FALSE(s.h.fs.exists("/etc/gpuhook/vms/win11.toml"));
}

TEST(SetupVerb, DryRunADeclinedQuestionAndNoTerminalChangeNothing) {
  SetupRun s;
  const std::string before = s.store.domains["win11"];
  EXPECT_EQ(s.run({"win11", "--dry-run"}), 0);
  EXPECT_NE(s.out.find("+    <hostdev mode='subsystem' type='pci' managed='no'>"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("-    <hostdev mode='subsystem' type='pci' managed='yes'>"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("+++ /etc/gpuhook/vms/win11.toml (after setup)"), std::string::npos) << s.out;
  EXPECT_EQ(s.run({"win11"}, false), 2) << "no terminal, no --yes";
  EXPECT_NE(s.err.find("nothing changed"), std::string::npos);
  EXPECT_EQ(s.run({"win11"}, true, "n\n"), 1);
  EXPECT_EQ(s.store.defines, 0);
  EXPECT_EQ(s.store.domains["win11"], before);
  EXPECT_FALSE(s.h.fs.exists("/etc/gpuhook/vms/win11.toml"));
  EXPECT_TRUE(s.backups().empty());
  s.run({"win11"}, true, "y\n");
  EXPECT_EQ(s.store.defines, 1) << "answered yes on the terminal";
}

TEST(SetupVerb, AForeignProfileIsNeverOverwrittenAndTheDomainIsLeftAlone) {
  SetupRun s;
  put_profile(s.h, "win11", "[gpu]\naddress = \"0000:01:00.0\"\n");
  EXPECT_EQ(s.run({"win11", "--yes"}), 1);
  EXPECT_NE(s.err.find("was not written by setup"), std::string::npos) << s.err;
  EXPECT_NE(s.err.find("move it away"), std::string::npos) << s.err;
  EXPECT_EQ(s.store.defines, 0);
}

TEST(SetupVerb, ItsOwnUneditedProfileIsReplacedButAnEditedOneIsNot) {
  SetupRun s;
  s.run({"win11", "--yes"});
  ASSERT_TRUE(s.h.fs.exists("/etc/gpuhook/vms/win11.toml")) << s.err;
  // Another choice: setup's own, unedited profile is replaced (shown in the diff).
  EXPECT_EQ(s.run({"win11", "--yes", "--mode", "takeover"}), 0) << s.err;
  EXPECT_NE(s.out.find("+mode = \"takeover\""), std::string::npos) << s.out;
  EXPECT_NE(s.h.fs.read("/etc/gpuhook/vms/win11.toml")->find("mode = \"takeover\""), std::string::npos);
  // Edited by hand: never replaced, and --undo leaves it too.
  std::string edited = *s.h.fs.read("/etc/gpuhook/vms/win11.toml");
  edited.replace(edited.find("mode = \"takeover\""), 17, "mode = \"external\"");
  s.h.fs.put_file("/etc/gpuhook/vms/win11.toml", edited, 0600);
  EXPECT_EQ(s.run({"win11", "--yes"}), 1);
  EXPECT_NE(s.err.find("was edited since setup wrote it"), std::string::npos) << s.err;
  EXPECT_EQ(s.run({"win11", "--undo", "--yes"}), 0) << s.err;
  EXPECT_EQ(*s.h.fs.read("/etc/gpuhook/vms/win11.toml"), edited);
  EXPECT_NE(s.out.find("was edited since: it stays"), std::string::npos) << s.out;
}

TEST(SetupVerb, TheSingleGpuDesktopGetsTakeoverAndAnOldMachineTypeTheCommandlineForm) {
  SetupRun s(false);
  s.run({"win11", "--yes"});
  auto text = s.h.fs.read("/etc/gpuhook/vms/win11.toml");
  ASSERT_TRUE(text) << s.err;
  EXPECT_NE(text->find("mode = \"takeover\""), std::string::npos) << *text;
  EXPECT_EQ(s.store.domains["win11"].find("x-pci-sub-vendor-id"), std::string::npos) << "an AMD card needs no override";
  // An NVIDIA laptop on a machine type before QEMU 7.0: qemu:commandline -set.
  SetupRun l;
  l.store.domains["win11"] = dumpxml("pc-q35-6.2");
  l.run({"win11", "--yes"});
  EXPECT_NE(l.store.domains["win11"].find("<qemu:arg value='device.hostdev0.x-pci-sub-vendor-id=5464'/>"), std::string::npos)
      << l.store.domains["win11"];
}

TEST(SetupVerb, TwoCleanGpusAreRefusedWithTheListAndGpuChoosesOne) {
  SetupRun s;
  // A second clean NVIDIA card in its own group behind its own root port.
  s.h.kernel.add_bridge("0000:00:1c.0", 20);
  s.h.kernel.add_pci({"0000:05:00.0", "10de", "1c82", "10de", "11bf", "030000", "", "", 21, false, "/sys/devices/pci0000:00/0000:00:1c.0"});
  EXPECT_EQ(s.run({"win11", "--yes"}), 1);
  EXPECT_NE(s.err.find("more than one discrete GPU"), std::string::npos) << s.err;
  EXPECT_NE(s.err.find("0000:05:00.0 (10de:1c82"), std::string::npos) << s.err;
  EXPECT_EQ(s.store.defines, 0);
  s.run({"win11", "--yes", "--gpu", "05:00.0"});
  auto d = parse_domain_xml(s.store.domains["win11"]);
  ASSERT_TRUE(d);
  std::vector<std::string> addrs;
  for (const auto& hd : d->hostdevs) addrs.push_back(hd.address);
  EXPECT_EQ(addrs, (std::vector<std::string>{"0000:01:00.0", "0000:05:00.0"}))
      << "01:00.0 stays in the domain as it was (managed='yes'): setup only adds the chosen card";
}

}  // namespace
}  // namespace gpuhook

// Looking Glass (issue 16) and host tuning (issue 13), in-process on the fake host: the profile
// keys, the domain reader, the planner's refusals and notes, and each step's effect while the VM
// runs and its exact restore after release, kills included. What only the fake proves is listed
// in tests/README.md ("What only the fake proves").
#include <gtest/gtest.h>
#include <signal.h>

#include <functional>
#include <sstream>

#include "app/verbs.h"
#include "harness.h"
#include "plan/planner.h"
#include "sysinfo/tuning_facts.h"

namespace gpuhook {
namespace {

using test::Harness;

// The reference laptop's [host]: nvidia-persistenced holds /dev/nvidia0 and is stopped first.
#define LAPTOP_HOST "[host]\nstop_services = [\"nvidia-persistenced.service\"]\nunload_modules = [\"nvidia_drm\", \"nvidia_modeset\", \"nvidia_uvm\", \"nvidia\"]\n"

const char* kLgProfile = LAPTOP_HOST R"(
[gpu]
address = "0000:01:00.0"
[display]
mode = "looking-glass"
[display.looking_glass]
client = ["/usr/local/bin/looking-glass-client", "-F"]
user = "alice"
)";

const char* kTunedProfile = LAPTOP_HOST R"(
[gpu]
address = "0000:01:00.0"
[tuning]
hugepages = true
isolate_cpus = true
governor = "performance"
inhibit_sleep = true
)";

std::string domain_xml(const std::string& extra_devices, const std::string& extra = "", const std::string& memory = "65536") {
  return "<domain type='kvm'><name>win11</name><memory unit='KiB'>" + memory + "</memory>" + extra +
         "<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os><devices>"
         "<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev>" +
         extra_devices + "</devices></domain>";
}
const std::string kShmem32 = "<shmem name='looking-glass'><model type='ivshmem-plain'/><size unit='M'>32</size></shmem>";
const std::string kPinned =
    "<memoryBacking><hugepages/></memoryBacking><cputune><vcpupin vcpu='0' cpuset='2'/><vcpupin vcpu='1' cpuset='3'/>"
    "<emulatorpin cpuset='1'/></cputune>";

struct Vm {
  Harness t;
  std::string xml;
  std::string err;
  int start() {
    for (const char* op : {"prepare", "start", "started"}) {
      int rc = t.event("win11", op, &err, {}, op == std::string("prepare") ? xml : "");
      if (rc) return rc;
    }
    return 0;
  }
};

std::string env_of(const FakeKernel::Spawned& s, const std::string& key) {
  for (const auto& kv : s.spec.env)
    if (kv.rfind(key + "=", 0) == 0) return kv.substr(key.size() + 1);
  return "(unset)";
}

// ---- profile and domain ----

TEST(TuningProfile, LookingGlassNeedsClientAndUserAndRefusesRootWithPositions) {
  ConfigErrors e;
  auto p = parse_profile("[gpu]\naddress = \"01:00.0\"\n[display]\nmode = \"looking-glass\"\n", "/p.toml", {}, &e);
  ASSERT_FALSE(p);
  EXPECT_NE(e.text().find("/p.toml:3:1: [display] mode 'looking-glass' needs [display.looking_glass] client"), std::string::npos) << e.text();
  ConfigErrors e2;
  auto p2 = parse_profile("[gpu]\naddress = \"01:00.0\"\n[display.looking_glass]\nclient = [\"lg\"]\nuser = \"root\"\n"
                          "[tuning]\ngovernor = \"--x\"\nhugepage = true\n", "/p.toml", {}, &e2);
  ASSERT_FALSE(p2);
  EXPECT_NE(e2.text().find("/p.toml:4:11: [display.looking_glass] client[0] 'lg' must be an absolute path"), std::string::npos) << e2.text();
  EXPECT_NE(e2.text().find("/p.toml:5:8: [display.looking_glass] user must not be root"), std::string::npos) << e2.text();
  EXPECT_NE(e2.text().find("/p.toml:7:12: [tuning] governor '--x' is not a cpufreq governor name"), std::string::npos) << e2.text();
  EXPECT_NE(e2.text().find("/p.toml:8:1: unknown key 'hugepage' in [tuning]; did you mean 'hugepages'?"), std::string::npos) << e2.text();
  ConfigErrors e3;
  auto ok = parse_profile(kLgProfile, "/p.toml", {}, &e3);
  ASSERT_TRUE(ok) << e3.text();
  EXPECT_EQ(ok->mode, DisplayMode::looking_glass);
  EXPECT_EQ(ok->looking_glass.client, (std::vector<std::string>{"/usr/local/bin/looking-glass-client", "-F"}));
  EXPECT_EQ(ok->looking_glass.width, 1920);
}

TEST(TuningDomain, ReadsShmemMemoryHugepagesPinningAndKvmfr) {
  auto d = parse_domain_xml(domain_xml(kShmem32, kPinned + std::string("<numatune><memory mode='strict' nodeset='0'/></numatune>")));
  ASSERT_TRUE(d);
  ASSERT_EQ(d->shmems.size(), 1u);
  EXPECT_EQ(d->shmems[0].name, "looking-glass");
  EXPECT_EQ(d->shmems[0].size_bytes, 32ll << 20);
  EXPECT_EQ(d->memory_kib, 65536);
  EXPECT_TRUE(d->hugepages);
  EXPECT_EQ(d->cpu_pins, (std::vector<std::string>{"2", "3", "1"}));
  EXPECT_EQ(d->numatune_nodeset, "0");
  auto k = parse_domain_xml(
      "<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>x</name><memory unit='GiB'>8</memory>"
      "<qemu:commandline><qemu:arg value='-object'/><qemu:arg value='memory-backend-file,id=looking-glass,mem-path=/dev/kvmfr0,size=64M,share=yes'/>"
      "</qemu:commandline></domain>");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->kvmfr_device, "/dev/kvmfr0");
  EXPECT_EQ(k->kvmfr_size, 64ll << 20);
  EXPECT_EQ(k->memory_kib, 8ll << 20);
}

TEST(TuningFacts, CpuListsAndLookingGlassSize) {
  EXPECT_EQ(format_cpu_list(*parse_cpu_list("0-7,^2,^5-6")), "0-1,3-4,7");
  EXPECT_FALSE(parse_cpu_list("3-1"));
  EXPECT_FALSE(parse_cpu_list("a"));
  // 1920x1080: 16,588,800 + 10 MiB = 27,074,560 -> 32 MiB; 3840x2160: 66,355,200 + 10 MiB -> 128 MiB
  EXPECT_EQ(looking_glass_min_size(1920, 1080), 32ll << 20);
  EXPECT_EQ(looking_glass_min_size(3840, 2160), 128ll << 20);
}

// ---- Looking Glass ----

TEST(LookingGlass, DetachedClientWithoutUserManagerRunsAsTheUserWithTheSessionEnvironmentAndIsUndone) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  vm.t.h.kernel.enable_systemd(false);
  vm.t.h.kernel.kill(900, SIGKILL);  // no systemd to stop nvidia-persistenced: not running here  // as in tests/realkernel: no systemd, no user manager
  add_tuning_host(vm.t.h, false);
  put_profile(vm.t.h, "win11", kLgProfile);
  vm.xml = domain_xml(kShmem32);
  auto before = vm.t.h.state();
  ASSERT_EQ(vm.start(), 0) << vm.err << vm.t.log.text();
  FileInfo fi = vm.t.h.fs.stat("/dev/shm/looking-glass", false);
  EXPECT_EQ(fi.type, FileType::regular);
  EXPECT_EQ(fi.size, 32ll << 20);
  EXPECT_EQ(fi.uid, 1000u);
  EXPECT_EQ(fi.gid, 994u) << "QEMU's group: qemu.conf has none here, so kvm";
  EXPECT_EQ(fi.mode, 0660u);
  ASSERT_EQ(vm.t.h.kernel.spawned.size(), 1u);
  const auto& s = vm.t.h.kernel.spawned[0];
  EXPECT_EQ(s.spec.argv, (std::vector<std::string>{"/usr/local/bin/looking-glass-client", "-F"}));
  EXPECT_EQ(s.spec.uid, 1000u);
  EXPECT_EQ(s.spec.gid, 1000u);
  EXPECT_EQ(s.spec.groups, (std::vector<unsigned>{1000, 994}));
  EXPECT_EQ(env_of(s, "WAYLAND_DISPLAY"), "wayland-0");
  EXPECT_EQ(env_of(s, "XDG_RUNTIME_DIR"), "/run/user/1000");
  EXPECT_EQ(env_of(s, "HOME"), "/home/alice");
  EXPECT_TRUE(vm.t.h.kernel.process_alive(s.pid));
  EXPECT_TRUE(vm.t.h.fs.exists("/run/gpuhook/win11.lg-client"));
  vm.t.stop_vm("win11");
  EXPECT_FALSE(vm.t.h.kernel.process_alive(s.pid));
  EXPECT_FALSE(vm.t.h.fs.exists("/dev/shm/looking-glass"));
  EXPECT_FALSE(vm.t.h.fs.exists("/run/gpuhook/win11.lg-client"));
  EXPECT_EQ(vm.t.restored_diff(before), "");
}

TEST(LookingGlass, WithAUserManagerTheClientIsATransientUnitOfThatUser) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  add_tuning_host(vm.t.h, true);
  put_profile(vm.t.h, "win11", kLgProfile);
  vm.xml = domain_xml(kShmem32);
  auto before = vm.t.h.state();
  ASSERT_EQ(vm.start(), 0) << vm.err << vm.t.log.text();
  bool found = false;
  for (const auto& c : vm.t.h.runner.calls)
    found |= c.find("systemd-run --user --machine=alice@.host --unit=gpuhook-lg-win11.service --collect") == 0 &&
             c.find("-- /usr/local/bin/looking-glass-client -F") != std::string::npos;
  EXPECT_TRUE(found) << vm.t.log.text();
  ASSERT_EQ(vm.t.h.kernel.spawned.size(), 1u);
  int pid = vm.t.h.kernel.spawned[0].pid;
  EXPECT_TRUE(vm.t.h.kernel.process_alive(pid));
  vm.t.stop_vm("win11");
  EXPECT_FALSE(vm.t.h.kernel.process_alive(pid));
  EXPECT_EQ(vm.t.restored_diff(before), "");
}

// Found on the real systemd of tests/desktop d10: `systemd-run --user --machine=USER@.host` goes
// through the system D-Bus and the user's bus socket (dbus-user-session), not the manager's
// private socket. A manager without them cannot be reached that way: the client starts detached.
TEST(LookingGlass, AUserManagerWithoutItsBusSocketGetsADetachedClient) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  add_tuning_host(vm.t.h, true);
  ASSERT_TRUE(vm.t.h.fs.remove("/run/user/1000/bus"));
  put_profile(vm.t.h, "win11", kLgProfile);
  vm.xml = domain_xml(kShmem32);
  auto before = vm.t.h.state();
  ASSERT_EQ(vm.start(), 0) << vm.err << vm.t.log.text();
  for (const auto& c : vm.t.h.runner.calls) EXPECT_EQ(c.find("systemd-run --user"), std::string::npos) << c;
  ASSERT_EQ(vm.t.h.kernel.spawned.size(), 1u);
  EXPECT_EQ(env_of(vm.t.h.kernel.spawned[0], "WAYLAND_DISPLAY"), "wayland-0");
  EXPECT_NE(vm.t.log.text().find("/run/user/1000/bus (their D-Bus session bus: dbus-user-session) is missing"), std::string::npos)
      << vm.t.log.text();
  int pid = vm.t.h.kernel.spawned[0].pid;
  vm.t.stop_vm("win11");
  EXPECT_FALSE(vm.t.h.kernel.process_alive(pid));
  EXPECT_EQ(vm.t.restored_diff(before), "");
}

// Also from d10: the first start through --machine (a PAM session, the user's bus, the start job)
// took over 10 s on the loaded test machine and was killed at the deadline of one command. A unit
// start gets [timeouts] service, like every other unit start.
TEST(LookingGlass, TheClientUnitsStartHasTheTimeoutOfAUnitStart) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  add_tuning_host(vm.t.h, true);
  auto real = vm.t.h.runner.programs["systemd-run"];
  vm.t.h.runner.programs["systemd-run"] = [&vm, real](const std::vector<std::string>& a, const Deadline& d) {
    if (d.remaining() <= 12000) return RunResult{-1, false, true, "", ""};  // still starting at the deadline
    vm.t.h.clock.advance(12000);
    return real(a, d);
  };
  put_profile(vm.t.h, "win11", kLgProfile);
  vm.xml = domain_xml(kShmem32);
  auto before = vm.t.h.state();
  ASSERT_EQ(vm.start(), 0) << vm.err << vm.t.log.text();
  ASSERT_EQ(vm.t.h.kernel.spawned.size(), 1u);
  vm.t.stop_vm("win11");
  EXPECT_EQ(vm.t.restored_diff(before), "");
}

TEST(LookingGlass, AClientThatExitsAtOnceIsLoggedAndTheVmRunsOn) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  vm.t.h.kernel.enable_systemd(false);
  vm.t.h.kernel.kill(900, SIGKILL);  // no systemd to stop nvidia-persistenced: not running here
  add_tuning_host(vm.t.h, false);
  vm.t.h.kernel.exits_at_once.insert("/usr/local/bin/looking-glass-client");
  put_profile(vm.t.h, "win11", kLgProfile);
  vm.xml = domain_xml(kShmem32);
  auto before = vm.t.h.state();
  ASSERT_EQ(vm.start(), 0) << vm.err;
  EXPECT_NE(vm.t.log.text().find("exited at once"), std::string::npos) << vm.t.log.text();
  vm.t.stop_vm("win11");
  EXPECT_EQ(vm.t.restored_diff(before), "");
}

TEST(LookingGlass, AReusedPidIsNeverSignalled) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  vm.t.h.kernel.enable_systemd(false);
  vm.t.h.kernel.kill(900, SIGKILL);  // no systemd to stop nvidia-persistenced: not running here
  add_tuning_host(vm.t.h, false);
  put_profile(vm.t.h, "win11", kLgProfile);
  vm.xml = domain_xml(kShmem32);
  ASSERT_EQ(vm.start(), 0) << vm.err;
  int pid = vm.t.h.kernel.spawned[0].pid;
  // The client died and its pid now names another process (another start time).
  vm.t.h.kernel.kill(pid, SIGKILL);
  vm.t.h.clock.advance(5000);
  vm.t.h.kernel.add_user_process({pid, "bash", {}, false, ""}, 1000, {});
  vm.t.stop_vm("win11");
  EXPECT_TRUE(vm.t.h.kernel.process_alive(pid)) << "the process that reuses the pid must live";
  EXPECT_FALSE(vm.t.h.fs.exists("/run/gpuhook/win11.journal")) << vm.t.log.text();
}

TEST(LookingGlass, KilledAfterStartedThenReleaseStopsTheClientAndRemovesTheFile) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  vm.t.h.kernel.enable_systemd(false);
  vm.t.h.kernel.kill(900, SIGKILL);  // no systemd to stop nvidia-persistenced: not running here
  add_tuning_host(vm.t.h, false);
  put_profile(vm.t.h, "win11", kLgProfile);
  vm.xml = domain_xml(kShmem32);
  auto before = vm.t.h.state();
  ASSERT_EQ(vm.t.event("win11", "prepare", &vm.err, {}, vm.xml), 0) << vm.err;
  ASSERT_EQ(vm.t.event("win11", "start", &vm.err), 0);
  // A throw at a fault point leaves the event like a SIGKILL (run_hook_event swallows it, as
  // the kernel would end the process): nothing after that point runs.
  bool killed = false;
  try {
    vm.t.event("win11", "started", &vm.err, [&](std::string_view p, int, const std::string& kind) {
      if (p == "after-apply" && kind == "lg.client") killed = true, throw test::KilledForTest{};
    });
  } catch (const test::KilledForTest&) {
  }
  ASSERT_TRUE(killed);
  EXPECT_TRUE(vm.t.h.fs.exists("/run/gpuhook/win11.journal"));
  int pid = vm.t.h.kernel.spawned.at(0).pid;
  EXPECT_TRUE(vm.t.h.kernel.process_alive(pid));
  vm.t.stop_vm("win11");
  EXPECT_FALSE(vm.t.h.kernel.process_alive(pid));
  EXPECT_EQ(vm.t.restored_diff(before), "");
}

TEST(LookingGlass, RefusesAMissingOrTooSmallShmemAndAForeignFileBeforeAnyChange) {
  struct Case {
    std::string devices, expect;
  } cases[] = {
      {"", "the domain has no Looking Glass shared memory"},
      {"<shmem name='looking-glass'><model type='ivshmem-plain'/><size unit='M'>16</size></shmem>",
       "size is 16777216 bytes: Looking Glass needs a power of two of at least 32 MiB for 1920x1080"},
      {"<shmem name='looking-glass'><model type='ivshmem-plain'/><size unit='M'>48</size></shmem>", "size is 50331648 bytes"},
  };
  for (const auto& c : cases) {
    Vm vm;
    build_reference_laptop(vm.t.h);
    add_tuning_host(vm.t.h, false);
    put_profile(vm.t.h, "win11", kLgProfile);
    vm.xml = domain_xml(c.devices);
    auto before = vm.t.h.state();
    EXPECT_EQ(vm.t.event("win11", "prepare", &vm.err, {}, vm.xml), 1);
    EXPECT_NE(vm.err.find(c.expect), std::string::npos) << vm.err;
    EXPECT_EQ(vm.t.restored_diff(before), "");
  }
  // A file already there with another owner: refused, left alone.
  Vm vm;
  build_reference_laptop(vm.t.h);
  add_tuning_host(vm.t.h, false);
  vm.t.h.fs.put_file("/dev/shm/looking-glass", "x", 0644, 0);
  put_profile(vm.t.h, "win11", kLgProfile);
  vm.xml = domain_xml(kShmem32);
  EXPECT_EQ(vm.t.event("win11", "prepare", &vm.err, {}, vm.xml), 1);
  EXPECT_NE(vm.err.find("/dev/shm/looking-glass already exists and is of 1 bytes, uid 0"), std::string::npos) << vm.err;
  vm.t.stop_vm("win11");
  EXPECT_EQ(*vm.t.h.fs.read("/dev/shm/looking-glass"), "x");
}

TEST(LookingGlass, WithKvmfrTheModuleItsSizeAndTheDevicesOwnerAreCheckedAndNothingIsCreated) {
  const std::string kvmfr =
      "<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:arg value='-object'/>"
      "<qemu:arg value='memory-backend-file,id=looking-glass,mem-path=/dev/kvmfr0,size=32M,share=yes'/></qemu:commandline>";
  auto run = [&](const std::function<void(FakeHost&)>& setup, std::string* err) {
    Vm vm;
    build_reference_laptop(vm.t.h);
    add_tuning_host(vm.t.h, false);
    setup(vm.t.h);
    put_profile(vm.t.h, "win11", kLgProfile);
    vm.xml = domain_xml("", kvmfr);
    int rc = vm.t.event("win11", "prepare", err, {}, vm.xml);
    EXPECT_FALSE(vm.t.h.fs.exists("/dev/shm/looking-glass")) << "kvmfr: the module makes the memory, gpuhook creates nothing";
    vm.t.stop_vm("win11");
    return rc;
  };
  std::string err;
  EXPECT_EQ(run([](FakeHost&) {}, &err), 1);
  EXPECT_NE(err.find("the domain uses /dev/kvmfr0 but the kvmfr module is not loaded"), std::string::npos) << err;
  EXPECT_EQ(run([](FakeHost& h) {
              h.fs.put_file("/sys/module/kvmfr/parameters/static_size_mb", "16\n");
              h.fs.put_file("/dev/kvmfr0", "", 0660, 1000);
            }, &err), 1);
  EXPECT_NE(err.find("kvmfr's static_size_mb is 16, the domain maps 32 MiB"), std::string::npos) << err;
  EXPECT_EQ(run([](FakeHost& h) {
              h.fs.put_file("/sys/module/kvmfr/parameters/static_size_mb", "32\n");
              h.fs.put_file("/dev/kvmfr0", "", 0600, 0);
            }, &err), 1);
  EXPECT_NE(err.find("/dev/kvmfr0 is owned by uid 0, not alice"), std::string::npos) << err;
  EXPECT_EQ(run([](FakeHost& h) {
              h.fs.put_file("/sys/module/kvmfr/parameters/static_size_mb", "32\n");
              h.fs.put_file("/dev/kvmfr0", "", 0660, 1000);
            }, &err), 0) << err;
}

TEST(LookingGlass, AUserWithUidZeroUnderAnotherNameIsRefused) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  add_tuning_host(vm.t.h, false);
  vm.t.h.fs.put_file("/etc/passwd", "root:x:0:0::/root:/bin/sh\nalice:x:0:0::/home/alice:/bin/sh\n");
  put_profile(vm.t.h, "win11", kLgProfile);
  vm.xml = domain_xml(kShmem32);
  auto before = vm.t.h.state();
  EXPECT_EQ(vm.t.event("win11", "prepare", &vm.err, {}, vm.xml), 1);
  EXPECT_NE(vm.err.find("user 'alice' has uid 0"), std::string::npos) << vm.err;
  EXPECT_EQ(vm.t.restored_diff(before), "");
}

TEST(Tuning, HugepagesOfASingleNumaNodeDomainComeFromThatNodesPool) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  add_tuning_host(vm.t.h, false);
  const std::string node1 = "/sys/devices/system/node/node1/hugepages/hugepages-2048kB";
  vm.t.h.fs.put_file(node1 + "/nr_hugepages", "0\n");
  vm.t.h.fs.put_file(node1 + "/free_hugepages", "0\n");
  vm.t.h.kernel.set_hugepage_capacity(node1, 64);
  put_profile(vm.t.h, "win11", LAPTOP_HOST "[gpu]\naddress = \"0000:01:00.0\"\n[tuning]\nhugepages = true\n");
  vm.xml = domain_xml("", "<memoryBacking><hugepages/></memoryBacking><numatune><memory mode='strict' nodeset='1'/></numatune>");
  auto before = vm.t.h.state();
  ASSERT_EQ(vm.start(), 0) << vm.err << vm.t.log.text();
  EXPECT_EQ(*vm.t.h.fs.read(node1 + "/nr_hugepages"), "32\n");
  EXPECT_EQ(*vm.t.h.fs.read("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"), "0\n") << "not the system-wide pool";
  vm.t.stop_vm("win11");
  EXPECT_EQ(vm.t.restored_diff(before), "");
}

// ---- tuning ----

TEST(Tuning, HugepagesReserveExactlyTheDomainsPagesAndGiveBackThePreviousCount) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  add_tuning_host(vm.t.h, false);
  put_profile(vm.t.h, "win11", LAPTOP_HOST "[gpu]\naddress = \"0000:01:00.0\"\n[tuning]\nhugepages = true\n");
  // 4 pages reserved and in use by someone else before: the count goes to 4 + 32, then back to 4.
  vm.t.h.fs.put_file("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "4\n");
  vm.xml = domain_xml("", "<memoryBacking><hugepages/></memoryBacking>");
  auto before = vm.t.h.state();
  ASSERT_EQ(vm.start(), 0) << vm.err << vm.t.log.text();
  EXPECT_EQ(*vm.t.h.fs.read("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"), "36\n");
  auto& w = vm.t.h.fs.writes;
  auto at = [&](const std::string& s) { return std::find_if(w.begin(), w.end(), [&](const std::string& x) { return x.find(s) != std::string::npos; }) - w.begin(); };
  EXPECT_LT(at("drop_caches <- 3"), at("nr_hugepages <- 36"));
  EXPECT_LT(at("compact_memory <- 1"), at("nr_hugepages <- 36"));
  vm.t.stop_vm("win11");
  EXPECT_EQ(*vm.t.h.fs.read("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"), "4\n");
  EXPECT_EQ(vm.t.restored_diff(before), "");
}

TEST(Tuning, HugepagesTheKernelCannotReserveRefuseWithTheNumbersAndLeaveTheCount) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  add_tuning_host(vm.t.h, false);
  vm.t.h.kernel.set_hugepage_capacity("/sys/kernel/mm/hugepages/hugepages-2048kB", 20);
  put_profile(vm.t.h, "win11", LAPTOP_HOST "[gpu]\naddress = \"0000:01:00.0\"\n[tuning]\nhugepages = true\n");
  vm.xml = domain_xml("", "<memoryBacking><hugepages/></memoryBacking>");
  auto before = vm.t.h.state();
  EXPECT_EQ(vm.t.event("win11", "prepare", &vm.err, {}, vm.xml), 1);
  EXPECT_NE(vm.err.find("wanted 32 pages of 2048 KiB (64 MiB), the kernel reserved 20 of the 32 needed"), std::string::npos) << vm.err;
  EXPECT_NE(vm.t.log.text().find("MemFree 4096 MiB"), std::string::npos) << vm.t.log.text();
  EXPECT_NE(vm.t.log.text().find("hugepagesz=2M hugepages=32"), std::string::npos);
  EXPECT_EQ(*vm.t.h.fs.read("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"), "0\n");
  vm.t.stop_vm("win11");
  EXPECT_EQ(vm.t.restored_diff(before), "");
}

TEST(Tuning, WithoutHugepagesOrPinningInTheDomainPlanSaysThereIsNothingToDo) {
  Harness t;
  build_reference_laptop(t.h);
  add_tuning_host(t.h, false);
  ConfigErrors e;
  auto p = parse_profile(kTunedProfile, "/p.toml", {}, &e);
  ASSERT_TRUE(p) << e.text();
  auto d = parse_domain_xml(domain_xml(""));
  Host host = t.h.host();
  Plan plan = make_plan(host, *p, &*d, "win11");
  std::string notes;
  for (const auto& n : plan.notes) notes += n + "\n";
  EXPECT_NE(notes.find("the domain has no <memoryBacking><hugepages/>: nothing to reserve"), std::string::npos) << notes;
  EXPECT_NE(notes.find("the domain pins no CPU"), std::string::npos) << notes;
  for (const auto& s : plan.prepare) EXPECT_NE(s->kind(), "hugepages.reserve");
}

TEST(Tuning, SystemdHostConfinesTheSlicesToTheFreeCpusSetsTheGovernorInhibitsSleepAndRestoresAll) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  add_tuning_host(vm.t.h, false);
  vm.t.h.fs.put_file("/sys/fs/cgroup/user.slice/cpuset.cpus", "0-7\n");  // a previous value that must come back exactly
  put_profile(vm.t.h, "win11", kTunedProfile);
  vm.xml = domain_xml("", kPinned);
  auto before = vm.t.h.state();
  ASSERT_EQ(vm.start(), 0) << vm.err << vm.t.log.text();
  for (const char* u : {"system.slice", "user.slice", "init.scope"})
    EXPECT_EQ(*vm.t.h.fs.read(std::string("/sys/fs/cgroup/") + u + "/cpuset.cpus"), "0,4-7\n") << u;
  EXPECT_EQ(*vm.t.h.fs.read("/sys/fs/cgroup/machine.slice/cpuset.cpus"), "\n") << "the VMs' slice is not confined";
  for (int c : {1, 2, 3})
    EXPECT_EQ(*vm.t.h.fs.read("/sys/devices/system/cpu/cpu" + std::to_string(c) + "/cpufreq/scaling_governor"), "performance\n");
  EXPECT_EQ(*vm.t.h.fs.read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"), "powersave\n") << "not pinned";
  EXPECT_TRUE(vm.t.h.kernel.unit_active("gpuhook-inhibit-win11.service"));
  EXPECT_TRUE(vm.t.h.fs.exists("/run/fake-logind/inhibitors/gpuhook-inhibit-win11.service"));
  vm.t.stop_vm("win11");
  EXPECT_FALSE(vm.t.h.kernel.unit_active("gpuhook-inhibit-win11.service"));
  EXPECT_EQ(vm.t.restored_diff(before), "");
}

TEST(Tuning, WithoutSystemdTheTopLevelCgroupsAreConfinedDirectlyAndTheInhibitorIsANote) {
  // services and users had an empty cpuset.cpus (the parent's CPUs) and have processes: the
  // kernel refuses to empty it again, so release names the parent's CPUs, 0-7. Same CPUs.
  Vm vm;
  build_reference_laptop(vm.t.h);
  vm.t.h.kernel.enable_systemd(false);
  vm.t.h.kernel.kill(900, SIGKILL);  // no systemd to stop nvidia-persistenced: not running here
  add_tuning_host(vm.t.h, false);
  put_profile(vm.t.h, "win11", kTunedProfile);
  vm.xml = domain_xml("", kPinned);
  auto before = vm.t.h.state();
  ASSERT_EQ(vm.start(), 0) << vm.err << vm.t.log.text();
  EXPECT_EQ(*vm.t.h.fs.read("/sys/fs/cgroup/services/cpuset.cpus"), "0,4-7\n");
  EXPECT_EQ(*vm.t.h.fs.read("/sys/fs/cgroup/users/cpuset.cpus"), "0,4-7\n");
  EXPECT_EQ(*vm.t.h.fs.read("/sys/fs/cgroup/machine/cpuset.cpus"), "\n");
  EXPECT_NE(vm.t.log.text().find("systemd-logind is not running"), std::string::npos);
  vm.t.stop_vm("win11");
  EXPECT_EQ(*vm.t.h.fs.read("/sys/fs/cgroup/services/cpuset.cpus"), "0-7\n");
  EXPECT_EQ(*vm.t.h.fs.read("/sys/fs/cgroup/users/cpuset.cpus"), "0-7\n");
  EXPECT_NE(vm.t.log.text().find("the kernel does not empty the cpuset of a group with processes"), std::string::npos);
  before["/sys/fs/cgroup/services/cpuset.cpus"] = before["/sys/fs/cgroup/users/cpuset.cpus"] = "file:0-7\n";
  EXPECT_EQ(vm.t.restored_diff(before), "");
  EXPECT_FALSE(vm.t.h.fs.exists("/run/gpuhook/win11.journal")) << "the undo succeeded: nothing kept";
}

TEST(Tuning, PinningToCpusTheHostLacksIsRefusedAndAHostWithoutCpufreqIsANote) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  add_tuning_host(vm.t.h, false);
  put_profile(vm.t.h, "win11", kTunedProfile);
  vm.xml = domain_xml("", "<cputune><vcpupin vcpu='0' cpuset='6-9'/></cputune>");
  auto before = vm.t.h.state();
  EXPECT_EQ(vm.t.event("win11", "prepare", &vm.err, {}, vm.xml), 1);
  EXPECT_NE(vm.err.find("the domain pins to CPU(s) 8-9, which this host does not have"), std::string::npos) << vm.err;
  EXPECT_EQ(vm.t.restored_diff(before), "");

  Vm v2;
  build_reference_laptop(v2.t.h);
  add_tuning_host(v2.t.h, false);
  v2.t.h.fs.erase_tree("/sys/devices/system/cpu/cpu2/cpufreq");
  put_profile(v2.t.h, "win11", LAPTOP_HOST "[gpu]\naddress = \"0000:01:00.0\"\n[tuning]\ngovernor = \"performance\"\n");
  v2.xml = domain_xml("", kPinned);
  ASSERT_EQ(v2.start(), 0) << v2.err;
  EXPECT_NE(v2.t.log.text().find("1 CPU(s) without cpufreq (2): left as they are"), std::string::npos) << v2.t.log.text();
  v2.t.stop_vm("win11");
}

TEST(Tuning, TheInhibitorOfAKilledReleaseIsStoppedByTheNextRelease) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  add_tuning_host(vm.t.h, false);
  put_profile(vm.t.h, "win11", LAPTOP_HOST "[gpu]\naddress = \"0000:01:00.0\"\n[tuning]\ninhibit_sleep = true\n");
  vm.xml = domain_xml("");
  auto before = vm.t.h.state();
  ASSERT_EQ(vm.start(), 0) << vm.err;
  bool killed = false;
  try {
    vm.t.event("win11", "release", nullptr, [&](std::string_view p, int, const std::string& kind) {
      if (p == "before-undo" && kind == "sleep.inhibit") killed = true, throw test::KilledForTest{};
    });
  } catch (const test::KilledForTest&) {
  }
  vm.t.h.locker.held.clear();
  ASSERT_TRUE(killed);
  EXPECT_TRUE(vm.t.h.kernel.unit_active("gpuhook-inhibit-win11.service"));
  vm.t.event("win11", "release");
  EXPECT_FALSE(vm.t.h.kernel.unit_active("gpuhook-inhibit-win11.service"));
  EXPECT_EQ(vm.t.restored_diff(before), "");
}

TEST(Tuning, PlanWithTheDomainXmlShowsEveryTuningStepAndWithoutItNamesThem) {
  Harness t;
  build_reference_laptop(t.h);
  add_tuning_host(t.h, false);
  put_profile(t.h, "win11", kTunedProfile);
  std::string file = ::testing::TempDir() + "gpuhook-plan-" + std::to_string(::getpid()) + ".xml";
  FILE* f = std::fopen(file.c_str(), "w");
  std::string xml = domain_xml(kShmem32, kPinned);
  std::fwrite(xml.data(), 1, xml.size(), f);
  std::fclose(f);
  auto before = t.h.state();
  AppContext a = t.app();
  std::ostringstream out, err;
  ASSERT_EQ(run_verb(a, parse_args({"gpuhook", "plan", "win11", "--xml", file}), out, err), 0) << err.str();
  for (const char* want : {"reserve 32 huge pages of 2048 KiB", "confine system.slice to CPUs 0,4-7", "confine user.slice to CPUs 0,4-7",
                           "confine init.scope to CPUs 0,4-7", "CPU 1 governor performance", "CPU 3 governor performance",
                           "inhibit sleep and idle while the VM runs (gpuhook-inhibit-win11.service)"})
    EXPECT_NE(out.str().find(want), std::string::npos) << want << "\n" << out.str();
  std::ostringstream out2, err2;
  ASSERT_EQ(run_verb(a, parse_args({"gpuhook", "plan", "win11"}), out2, err2), 0) << err2.str();
  EXPECT_NE(out2.str().find("[tuning] hugepages: the domain's <memoryBacking> decides"), std::string::npos) << out2.str();
  EXPECT_EQ(t.restored_diff(before), "") << "plan changes nothing";
  std::remove(file.c_str());
}

TEST(Tuning, StatusShowsWhatIsInForceForARunningVm) {
  Vm vm;
  build_reference_laptop(vm.t.h);
  vm.t.h.kernel.enable_systemd(false);
  vm.t.h.kernel.kill(900, SIGKILL);
  add_tuning_host(vm.t.h, false);
  put_profile(vm.t.h, "win11", kLgProfile + std::string("[tuning]\nhugepages = true\nisolate_cpus = true\ngovernor = \"performance\"\n"));
  vm.xml = domain_xml(kShmem32, kPinned);
  ASSERT_EQ(vm.start(), 0) << vm.err << vm.t.log.text();
  Invocation inv = parse_args({"gpuhook", "status"});
  AppContext a = vm.t.app();
  std::ostringstream out, err;
  EXPECT_EQ(run_verb(a, inv, out, err), 0) << out.str() << err.str();
  for (const char* want : {"in force: huge pages: 32 of 2048 KiB for the VM in /sys/kernel/mm/hugepages/hugepages-2048kB (count before: 0)",
                           "in force: CPU isolation: /sys/fs/cgroup/services/cpuset.cpus = 0,4-7 (before: '')",
                           "in force: governor: /sys/devices/system/cpu/cpu2/cpufreq/scaling_governor = performance (before: powersave)",
                           "in force: shared memory: /dev/shm/looking-glass (33554432 bytes, uid 1000, gid 994, created)",
                           "in force: Looking Glass client as alice: pid file /run/gpuhook/win11.lg-client"})
    EXPECT_NE(out.str().find(want), std::string::npos) << want << "\n" << out.str();
  vm.t.stop_vm("win11");
}

}  // namespace
}  // namespace gpuhook

// Freeing the GPU and putting the VM on a screen (issue 4), in-process on the fake kernel:
// takeover on a single-GPU desktop, the MUX modes on the reference laptop, DDC and command
// modes, services, consoles, framebuffers and holders. Each flow is checked for its effect while
// the VM runs and for an exact restore afterwards, and every write of a full takeover and a full
// mux prepare is made to fail once to prove the rollback.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>

#include "harness.h"

namespace gpuhook {
namespace {

using test::Harness;

const char* kTakeover = R"(
[gpu]
address = "0000:0b:00.0"
[display]
mode = "takeover"
[host]
holders = "terminate"
)";

const char* kMuxSwitcheroo = R"(
[gpu]
address = "0000:01:00.0"
[display]
mode = "mux"
[display.mux]
method = "switcheroo"
[host]
stop_services = ["nvidia-persistenced.service"]
unload_modules = ["nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"]
)";

const char* kMuxAcpi = R"(
[gpu]
address = "0000:01:00.0"
[display]
mode = "mux"
[display.mux]
method = "acpi"
acpi_dgpu = '\_SB.PCI0.PEG0.PEGP'
acpi_igpu = '\_SB.PCI0.GFX0'
[host]
stop_services = ["nvidia-persistenced.service"]
unload_modules = ["nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"]
)";

size_t index_of(const std::vector<std::string>& v, const std::string& needle, size_t from = 0) {
  for (size_t i = from; i < v.size(); ++i)
    if (v[i].find(needle) != std::string::npos) return i;
  return std::string::npos;
}

TEST(Takeover, SingleGpuDesktopGivesTheOnlyScreenToTheVmAndGetsItBack) {
  Harness t;
  build_single_gpu_desktop(t.h);
  put_profile(t.h, "win11", kTakeover);
  auto before = t.h.state();
  std::string err;
  ASSERT_EQ(t.start_vm("win11", &err), 0) << err << t.log.text();
  EXPECT_FALSE(t.h.kernel.unit_active("display-manager.service"));
  EXPECT_FALSE(t.h.kernel.process_alive(1000)) << "Xorg goes with the display manager";
  EXPECT_FALSE(t.h.kernel.process_alive(1200)) << "pipewire held the HDMI audio: terminated by policy";
  // fbcon's vtconsole was unbound, then vanished with amdgpu's framebuffer (the real kernel does).
  EXPECT_FALSE(t.h.fs.exists("/sys/class/vtconsole/vtcon1"));
  EXPECT_FALSE(t.h.fs.exists("/sys/class/graphics/fb0"));
  EXPECT_EQ(*t.h.fs.read("/sys/class/vtconsole/vtcon0/bind"), "0\n") << "untouched (it was not bound)";
  EXPECT_EQ(t.h.kernel.driver_of("0000:0b:00.0"), "vfio-pci");
  EXPECT_EQ(t.h.kernel.driver_of("0000:0b:00.1"), "vfio-pci");
  // The order is deliberate: the display manager stops before the console goes, the console
  // before the GPU's driver.
  auto& calls = t.h.runner.calls;
  auto& writes = t.h.fs.writes;
  EXPECT_NE(index_of(calls, "systemctl stop display-manager.service"), std::string::npos);
  EXPECT_LT(index_of(writes, "vtcon1/bind <- 0"), index_of(writes, "0000:0b:00.0/driver_override <- vfio-pci"));
  t.stop_vm("win11");
  EXPECT_EQ(*t.h.fs.read("/sys/class/vtconsole/vtcon1/bind"), "1\n") << "amdgpu's fb0 brought fbcon back";
  EXPECT_FALSE(t.log.contains("cannot be restored")) << t.log.text();
  test::give_back_kept_modules(t.h.host(), t.log);  // [host] unload_vfio = false kept vfio-pci
  auto after = t.h.state();
  // pipewire was terminated and is not brought back: that is the documented cost of "terminate".
  auto expected = before;
  for (auto it = expected.begin(); it != expected.end();)
    it = it->first.rfind("/proc/1200", 0) == 0 ? expected.erase(it) : std::next(it);
  EXPECT_EQ(diff_states(expected, after), "") << t.log.text();
  EXPECT_TRUE(t.h.kernel.unit_active("display-manager.service")) << "the desktop comes back";
  EXPECT_TRUE(t.log.contains("processes terminated at prepare are not restarted: 1200:pipewire"));
}

// Refuse before touching: stopping the display manager ends the user's session and unsaved work,
// so a holder it does not run (a user service: pipewire) is refused before anything is stopped.
// Before: the display manager was stopped, the holders step refused, and the desktop restarted.
TEST(Takeover, WithTheRefusePolicyAHolderTheDisplayManagerDoesNotRunIsRefusedBeforeAnyChange) {
  Harness t;
  build_single_gpu_desktop(t.h);
  std::string p = kTakeover;
  p.replace(p.find("terminate"), 9, "refuse");
  put_profile(t.h, "win11", p);
  auto before = t.h.state();
  std::string err;
  EXPECT_EQ(t.event("win11", "prepare", &err), 1);
  EXPECT_NE(err.find("pipewire (1200) holds /dev/snd/controlC1 (0000:0b:00.1) and runs in pipewire.service"),
            std::string::npos) << err;
  EXPECT_NE(err.find("refused before stopping anything"), std::string::npos) << err;
  EXPECT_NE(err.find("nothing on the host was changed"), std::string::npos) << err;
  EXPECT_FALSE(err.find("Xorg") != std::string::npos) << "the display manager's own Xorg goes with it: not a reason";
  for (const auto& c : t.h.runner.calls) EXPECT_EQ(c.find("stop"), std::string::npos) << "nothing stopped: " << c;
  EXPECT_EQ(t.restored_diff(before), "");
  t.stop_vm("win11");
  EXPECT_EQ(t.restored_diff(before), "") << t.log.text();
  EXPECT_TRUE(t.h.kernel.unit_active("display-manager.service"));
}

// Found on the real kernel (tests/desktop d04): a process with the GPU's fbdev node open (/dev/fb0
// of the DRM driver's fbdev emulation) pins the driver's module. It was not a holder: prepare
// stopped the display manager, `modprobe -r` failed, and the desktop was restarted by the rollback.
// Now it is found with the other holders, before anything is stopped (and terminated by that policy).
TEST(Takeover, AProcessHoldingTheGpusFbdevNodeIsAHolderRefusedBeforeAnyChange) {
  Harness t;
  build_single_gpu_desktop(t.h);
  t.h.kernel.kill(1200, 9);  // no pipewire: the fbdev holder is the only one
  t.h.kernel.add_process({1300, "fbi", {"/dev/fb0"}, false, "fbi.service"});
  t.h.kernel.add_unit("fbi.service", true);
  std::string p = kTakeover;
  p.replace(p.find("holders = \"terminate\""), 21, "holders = \"refuse\"\nunload_modules = [\"amdgpu\"]");
  put_profile(t.h, "win11", p);
  auto before = t.h.state();
  std::string err;
  EXPECT_EQ(t.event("win11", "prepare", &err), 1) << t.log.text();
  EXPECT_NE(err.find("fbi (1300) holds /dev/fb0 (0000:0b:00.0) and runs in fbi.service"), std::string::npos) << err;
  EXPECT_NE(err.find("refused before stopping anything"), std::string::npos) << err;
  for (const auto& c : t.h.runner.calls) EXPECT_EQ(c.find("stop"), std::string::npos) << "nothing stopped: " << c;
  EXPECT_EQ(diff_states(before, t.h.state()), "");
  // With holders = "terminate" it ends after the display manager stopped, before amdgpu is unloaded.
  p.replace(p.find("holders = \"refuse\""), 18, "holders = \"terminate\"");
  put_profile(t.h, "win11", p);
  ASSERT_EQ(t.event("win11", "prepare", &err), 0) << err << t.log.text();
  EXPECT_FALSE(t.h.kernel.process_alive(1300));
  EXPECT_TRUE(t.log.contains("terminating: fbi (1300) holds /dev/fb0 (0000:0b:00.0)")) << t.log.text();
}

TEST(Takeover, AHolderThatIgnoresSigtermIsKilledWithinTheBound) {
  Harness t;
  build_single_gpu_desktop(t.h);
  t.h.kernel.add_process({1300, "stubborn", {"/dev/dri/renderD128"}, true, ""});
  put_profile(t.h, "win11", kTakeover);
  Millis t0 = t.h.clock.now_ms();
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  EXPECT_FALSE(t.h.kernel.process_alive(1300));
  EXPECT_LT(t.h.clock.now_ms() - t0, 10000) << "SIGTERM, at most [timeouts] terminate, then SIGKILL";
}

TEST(Takeover, WithoutSystemdServicesAreSkippedWithANoteAndNothingObscureFails) {
  Harness t;
  build_single_gpu_desktop(t.h);
  t.h.kernel.enable_systemd(false);
  t.h.runner.programs.erase("systemctl");
  put_profile(t.h, "win11", kTakeover);
  auto before = t.h.state();
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  EXPECT_TRUE(t.log.contains("systemd is not running: [host] stop_services skipped (1 unit(s))")) << t.log.text();
  EXPECT_EQ(index_of(t.h.runner.calls, "systemctl"), std::string::npos);
  t.stop_vm("win11");
  auto expected = before;
  for (auto pid : {"/proc/1000", "/proc/1200"})
    for (auto it = expected.begin(); it != expected.end();) it = it->first.rfind(pid, 0) == 0 ? expected.erase(it) : std::next(it);
  EXPECT_EQ(t.restored_diff(expected), "");
}

TEST(Services, AServiceStoppedBeforeTheVmStartedIsNotStartedOnRelease) {
  Harness t;
  build_reference_laptop(t.h);
  t.h.runner.run({"systemctl", "stop", "nvidia-persistenced.service"}, Deadline(t.h.clock, 1000)).value();
  put_profile(t.h, "win11", kMuxAcpi);
  t.h.kernel.enable_acpi_call();
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  t.stop_vm("win11");
  EXPECT_FALSE(t.h.kernel.unit_active("nvidia-persistenced.service"));
  EXPECT_EQ(index_of(t.h.runner.calls, "systemctl start nvidia-persistenced.service"), std::string::npos);
}

TEST(Mux, SwitcherooMovesThePanelBeforeTheDriverGoesAndBackAfterItReturns) {
  Harness t;
  build_reference_laptop(t.h);
  t.h.kernel.enable_switcheroo("0000:00:02.0", "0000:01:00.0");
  put_profile(t.h, "win11", kMuxSwitcheroo);
  auto before = t.h.state();
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  EXPECT_EQ(t.h.kernel.mux(), "dgpu");
  auto& w = t.h.fs.writes;
  size_t mdis = index_of(w, "vgaswitcheroo/switch <- MDIS");
  ASSERT_NE(mdis, std::string::npos);
  EXPECT_LT(mdis, index_of(w, "0000:01:00.0/driver_override <- vfio-pci")) << "MDIS while the dGPU driver is registered";
  EXPECT_LT(mdis, index_of(t.h.fs.writes, "drivers/nvidia")) << "and before NVIDIA lets go of it";
  size_t n = w.size();
  t.stop_vm("win11");
  EXPECT_EQ(t.h.kernel.mux(), "igpu");
  size_t migd = index_of(w, "vgaswitcheroo/switch <- MIGD", n);
  ASSERT_NE(migd, std::string::npos);
  EXPECT_GT(migd, index_of(w, "0000:01:00.0/driver_override <- ", n)) << "MIGD after the dGPU is back";
  EXPECT_EQ(t.restored_diff(before), "") << t.log.text();
}

TEST(Mux, AcpiMxdsSwitchesThePanelAndBack) {
  Harness t;
  build_reference_laptop(t.h);
  t.h.kernel.enable_acpi_call();
  put_profile(t.h, "win11", kMuxAcpi);
  auto before = t.h.state();
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  EXPECT_EQ(t.h.kernel.mux(), "dgpu");
  EXPECT_NE(index_of(t.h.fs.writes, "/proc/acpi/call <- \\_SB.PCI0.PEG0.PEGP.MXDS 0x1"), std::string::npos);
  t.stop_vm("win11");
  EXPECT_EQ(t.h.kernel.mux(), "igpu");
  EXPECT_NE(index_of(t.h.fs.writes, "/proc/acpi/call <- \\_SB.PCI0.GFX0.MXDS 0x1"), std::string::npos);
  test::give_back_kept_modules(t.h.host(), t.log);  // [host] unload_vfio = false kept vfio-pci
  auto after = t.h.state();
  before.erase("/proc/acpi/call");  // holds the last call's result, like the real file
  after.erase("/proc/acpi/call");
  EXPECT_EQ(diff_states(before, after), "");
}

TEST(Mux, ARebootOnlyVendorMuxIsReportedNeverWritten) {
  Harness t;
  build_reference_laptop(t.h);
  t.h.fs.put_file("/sys/devices/platform/asus-nb-wmi/gpu_mux_mode", "1\n");
  put_profile(t.h, "win11", kMuxSwitcheroo);
  auto before = t.h.state();
  std::string err;
  EXPECT_EQ(t.event("win11", "prepare", &err), 1);
  EXPECT_NE(err.find("display mode 'mux' with method 'switcheroo' is not available on this machine"), std::string::npos) << err;
  EXPECT_NE(err.find("asus gpu_mux_mode only switches after a reboot"), std::string::npos) << err;
  EXPECT_EQ(index_of(t.h.fs.writes, "gpu_mux_mode"), std::string::npos) << "never written during a VM start";
  EXPECT_EQ(t.restored_diff(before), "");
}

TEST(Ddc, TheMonitorInputSwitchesOnceQemuRunsAndBackOnRelease) {
  Harness t;
  build_reference_laptop(t.h);
  put_profile(t.h, "win11", R"(
[gpu]
address = "0000:01:00.0"
[display]
mode = "ddc"
[display.ddc]
bus = 4
vm_input = 0x0f
[host]
stop_services = ["nvidia-persistenced.service"]
unload_modules = ["nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"]
)");
  auto before = t.h.state();
  ASSERT_EQ(t.event("win11", "prepare"), 0);
  EXPECT_EQ(t.h.kernel.monitor_input(4), 0x11) << "not before QEMU drives the output";
  ASSERT_EQ(t.event("win11", "start"), 0);
  ASSERT_EQ(t.event("win11", "started"), 0) << t.log.text();
  EXPECT_EQ(t.h.kernel.monitor_input(4), 0x0f);
  t.stop_vm("win11");
  EXPECT_EQ(t.h.kernel.monitor_input(4), 0x11) << "the input read before the switch";
  EXPECT_EQ(t.restored_diff(before), "");
}

TEST(Ddc, StartedStepsComeFromTheProfileNotFromAFreshLookAtTheHost) {
  Harness t;
  build_reference_laptop(t.h);
  put_profile(t.h, "win11", "[gpu]\naddress = \"0000:01:00.0\"\n[display]\nmode = \"ddc\"\n[display.ddc]\nbus = 4\n"
                            "vm_input = 0x0f\n[host]\nstop_services = [\"nvidia-persistenced.service\"]\n"
                            "unload_modules = [\"nvidia_drm\", \"nvidia_modeset\", \"nvidia_uvm\", \"nvidia\"]\n");
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  // A device with a driver shows up in the GPU's group while the VM starts (a prepare now would
  // refuse): the VM already has the GPU, and its started steps still run.
  t.h.kernel.add_module({"r8169", {}, "r8169", false, true});
  t.h.kernel.add_pci({"0000:02:00.0", "10ec", "8168", "1558", "8550", "020000", "r8169", "r8169", 1});
  size_t reads_before = t.h.runner.calls.size();
  ASSERT_EQ(t.event("win11", "start"), 0);
  ASSERT_EQ(t.event("win11", "started"), 0) << t.log.text();
  EXPECT_EQ(t.h.kernel.monitor_input(4), 0x0f);
  EXPECT_EQ(t.h.runner.calls.size(), reads_before + 2) << "started ran ddcutil getvcp and setvcp, nothing else";
  t.stop_vm("win11");
  EXPECT_EQ(t.h.kernel.monitor_input(4), 0x11);
}

TEST(Command, SwitchAndRestoreRunWithDeadlinesAndAFailureRollsBack) {
  Harness t;
  build_reference_laptop(t.h);
  std::vector<std::string> ran;
  auto prog = [&](const std::vector<std::string>& a, const Deadline&) {
    ran.push_back(format_argv(a));
    RunResult r;
    r.exit_code = 0;
    return r;
  };
  t.h.runner.programs["/usr/local/bin/panel"] = prog;
  t.h.runner.programs["/usr/bin/cpupower"] = prog;
  put_profile(t.h, "win11", R"(
[gpu]
address = "0000:01:00.0"
[display]
mode = "command"
[display.command]
switch = ["/usr/local/bin/panel", "dgpu"]
restore = ["/usr/local/bin/panel", "igpu"]
[host]
unload_modules = ["nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"]
stop_services = ["nvidia-persistenced.service"]
[[commands]]
when = "started"
run = ["/usr/bin/cpupower", "frequency-set", "-g", "performance"]
undo = ["/usr/bin/cpupower", "frequency-set", "-g", "schedutil"]
)");
  auto before = t.h.state();
  ASSERT_EQ(t.start_vm("win11"), 0) << t.log.text();
  t.stop_vm("win11");
  EXPECT_EQ(ran, (std::vector<std::string>{"/usr/local/bin/panel dgpu", "/usr/bin/cpupower frequency-set -g performance",
                                           "/usr/bin/cpupower frequency-set -g schedutil", "/usr/local/bin/panel igpu"}));
  EXPECT_EQ(t.restored_diff(before), "");
  // A switch command that hangs is killed at its deadline and the prepare rolls back.
  ran.clear();
  t.h.kernel.fault_command("/usr/local/bin/panel dgpu", FakeKernel::Fault::hang);
  std::string err;
  EXPECT_EQ(t.event("win11", "prepare", &err), 1);
  EXPECT_NE(err.find("display switch failed"), std::string::npos) << err;
  EXPECT_NE(err.find("killed at its deadline"), std::string::npos) << err;
  t.stop_vm("win11");
  EXPECT_EQ(ran, (std::vector<std::string>{"/usr/local/bin/panel igpu"})) << "restore runs on rollback";
  EXPECT_EQ(t.restored_diff(before), "");
}

// Every write and every command of a full takeover and of a full mux prepare, failed once:
// rolled back exactly.
void fail_every_write(void (*build)(FakeHost&), const std::string& profile, void (*extra)(FakeHost&)) {
  Harness probe;
  build(probe.h);
  if (extra) extra(probe.h);
  put_profile(probe.h, "vm", profile);
  ASSERT_EQ(probe.event("vm", "prepare"), 0) << probe.log.text();
  std::vector<std::string> paths;
  for (const auto& w : probe.h.fs.writes) {
    std::string p = w.substr(0, w.find(" <- "));
    if (std::find(paths.begin(), paths.end(), p) == paths.end()) paths.push_back(p);
  }
  ASSERT_GE(paths.size(), 6u);
  size_t n_writes = paths.size();
  for (const auto& c : probe.h.runner.calls)
    if (std::find(paths.begin(), paths.end(), c) == paths.end()) paths.push_back(c);
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::string& p = paths[i];
    Harness t;
    build(t.h);
    if (extra) extra(t.h);
    put_profile(t.h, "vm", profile);
    auto before = t.h.state();
    if (i < n_writes) {
      t.h.kernel.fault_write(p, FakeKernel::Fault::fail);
    } else {
      t.h.kernel.fault_command(p, FakeKernel::Fault::fail);
    }
    EXPECT_EQ(t.event("vm", "prepare"), 1) << p;
    t.stop_vm("vm");
    test::give_back_kept_modules(t.h.host(), t.log);  // [host] unload_vfio = false kept vfio-pci
  auto after = t.h.state();
    for (auto* s : {&before, &after})
      for (auto it = s->begin(); it != s->end();) it = it->first.rfind("/proc/1200", 0) == 0 ? s->erase(it) : std::next(it);
    EXPECT_EQ(diff_states(before, after), "") << "failed write: " << p << "\n" << t.log.text();
  }
}

TEST(Rollback, AFailureAtAnyWriteOfATakeoverPrepareRestoresTheHost) {
  fail_every_write(build_single_gpu_desktop, kTakeover, nullptr);
}

TEST(Rollback, AFailureAtAnyWriteOfAMuxPrepareRestoresTheHost) {
  fail_every_write(build_reference_laptop, kMuxSwitcheroo,
                   [](FakeHost& h) { h.kernel.enable_switcheroo("0000:00:02.0", "0000:01:00.0"); });
}

}  // namespace
}  // namespace gpuhook

// The journal is the only authority: release, reconnect and restore bring the host back from
// the journal whatever a person did meanwhile to the profile or the global config, whatever
// program failed to launch, whatever else holds the locks. Each test is one way this failed on
// the main branch before the session work (issue 10), on the fake reference laptop.
#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>

#include "app/verbs.h"
#include "engine/journal.h"
#include "engine/session.h"
#include "fake/fake_host.h"
#include "harness.h"

namespace gpuhook {
namespace {

struct Harness : test::Harness {
  Harness() { build_reference_laptop(h); }
  std::string journal() { return h.fs.read("/run/gpuhook/win11.journal").value_or(""); }
  bool has_journal() { return h.fs.exists("/run/gpuhook/win11.journal"); }
  // The host without gpuhook's own files and the test's edits of /etc/gpuhook.
  std::map<std::string, std::string> host() const { return h.fs.snapshot({"/run/gpuhook", "/var/log", "/etc/gpuhook"}); }
  std::string restored_host_diff(const std::map<std::string, std::string>& before) {
    test::give_back_kept_modules(h.host(), log);
    return diff_states(before, host());
  }
};

// Removing (or renaming) a profile is how people switch gpuhook off for a VM; doing it while
// the VM runs must not strand the GPU on vfio-pci. Before: the fast path saw no profile and
// release exited 0 without reading the journal.
TEST(Authority, ReleaseRestoresAfterTheProfileWasRemovedWhileTheVmRan) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  auto before = t.host();
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  ASSERT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "vfio-pci");
  ASSERT_TRUE(t.h.fs.remove("/etc/gpuhook/vms/win11.toml").ok());
  EXPECT_TRUE(is_managed(t.h.fs, "win11")) << "a journal alone makes the VM ours";
  EXPECT_FALSE(has_profile(t.h.fs, "win11"));
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.restored_host_diff(before), "") << t.log.text();
  EXPECT_FALSE(t.has_journal());
  EXPECT_FALSE(is_managed(t.h.fs, "win11")) << "once restored, the VM's events cost a stat() again";
}

// A journal without a profile: prepare does nothing (no profile to start from), and says so.
TEST(Authority, PrepareWithAJournalButNoProfileChangesNothingAndSaysWhy) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  ASSERT_EQ(t.event("win11", "prepare"), 0);
  ASSERT_TRUE(t.h.fs.remove("/etc/gpuhook/vms/win11.toml").ok());
  std::string j = t.journal();
  auto during = t.h.state();
  EXPECT_EQ(t.event("win11", "prepare"), 0);
  EXPECT_EQ(t.restored_diff(during), "");
  EXPECT_EQ(t.journal(), j);
  EXPECT_TRUE(t.log.contains("has a journal but no profile")) << t.log.text();
}

// The profile edited while the VM runs (another GPU, other timeouts, a syntax error): release
// follows the journal, not the new text.
TEST(Authority, ReleaseIgnoresAProfileThatWasEditedOrBrokenWhileTheVmRan) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  auto before = t.host();
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  put_profile(t.h, "win11", "[gpu]\naddress = \"0000:00:02.0\"\n[host]\nholders = 3\n[timeouts]\nevent = 1\n");
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.restored_host_diff(before), "") << t.log.text();
  EXPECT_FALSE(t.has_journal());
}

// The global config broken at release (and it named another [state] dir before, which is now
// refused outright): release still finds the journal in /run/gpuhook and undoes it.
TEST(Authority, ReleaseRestoresWithABrokenGlobalConfig) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  auto before = t.host();
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  t.h.fs.put_file("/etc/gpuhook/gpuhook.toml", "[log\nlevel = \n", 0644);
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.restored_host_diff(before), "") << t.log.text();
  EXPECT_FALSE(t.has_journal());
  EXPECT_TRUE(t.log.contains("goes on from the journal alone")) << t.log.text();
}

TEST(Authority, AGlobalConfigNamingAnotherStateDirIsRefusedBeforeAnyChange) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  t.h.fs.put_file("/etc/gpuhook/gpuhook.toml", "[state]\ndir = \"/run/elsewhere\"\n", 0644);
  auto before = t.h.state();
  std::string err;
  EXPECT_EQ(t.event("win11", "prepare", &err), 1);
  EXPECT_NE(err.find("[state] dir '/run/elsewhere' is no longer supported"), std::string::npos) << err;
  EXPECT_EQ(t.restored_diff(before), "");
  EXPECT_FALSE(t.h.fs.exists("/run/elsewhere"));
}

// A [[commands]] undo that cannot be launched (a script without #!: exec fails with ENOEXEC,
// which Boost.Process reports by throwing). Before: release died with SIGABRT before the
// pci.vfio undos, and every later release died the same way. Now the failure is that one step's:
// named in the log and on stderr, kept in the journal; every other step is undone.
TEST(Authority, AnUndoProgramThatCannotBeLaunchedFailsAloneAndEverythingElseIsRestored) {
  Harness t;
  put_profile(t.h, "win11", std::string(test::kLaptopProfile) +
                                "[[commands]]\nwhen = \"prepare\"\nrun = [\"/usr/local/bin/fan\", \"max\"]\n"
                                "undo = [\"/usr/local/bin/fan-undo\"]\n");
  t.h.runner.programs["/usr/local/bin/fan"] = [](const std::vector<std::string>&, const Deadline&) {
    return RunResult{0, false, false, "", ""};
  };
  t.h.runner.programs["/usr/local/bin/fan-undo"] = [](const std::vector<std::string>&, const Deadline&) -> RunResult {
    throw std::runtime_error("execve /usr/local/bin/fan-undo: Exec format error");
  };
  auto before = t.h.state();
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  std::string err;
  EXPECT_EQ(t.event("win11", "release", &err), 0);
  EXPECT_TRUE(t.h.kernel.module_loaded("nvidia")) << t.log.text();
  EXPECT_TRUE(t.h.kernel.unit_active("nvidia-persistenced.service"));
  EXPECT_EQ(t.restored_diff(before), "") << "everything but the command is back\n" << t.log.text();
  EXPECT_TRUE(t.log.contains("Exec format error")) << t.log.text();
  EXPECT_NE(err.find("release of VM win11 incomplete"), std::string::npos) << err;
  EXPECT_NE(err.find("Exec format error"), std::string::npos) << err;
  ASSERT_TRUE(t.has_journal());
  // The failed step stays, and so do the older ones (undone already; replayed in order next
  // time, every undo being idempotent): nothing is lost for the next try.
  Journal j = Journal::parse(t.journal());
  ASSERT_FALSE(j.entries.empty()) << t.journal();
  EXPECT_EQ(j.entries.back().kind, "command");
  // Once the script is fixed, the next release (or `gpuhook restore`) finishes the job.
  t.h.runner.programs["/usr/local/bin/fan-undo"] = [](const std::vector<std::string>&, const Deadline&) {
    return RunResult{0, false, false, "", ""};
  };
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_FALSE(t.has_journal()) << t.log.text();
}

// A journal of a version this gpuhook does not know is not undone by guesswork: reported,
// kept byte for byte, nothing on the host touched. Before: undone as version 1.
TEST(Authority, AJournalOfAnUnknownVersionIsKeptAndNotUndone) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  ASSERT_EQ(t.event("win11", "prepare"), 0);
  std::string text = t.journal();
  auto pos = text.find("gpuhook-journal 2");
  ASSERT_NE(pos, std::string::npos) << text;
  text.replace(pos, 17, "gpuhook-journal 9");
  t.h.fs.put_file("/run/gpuhook/win11.journal", text, 0600);
  auto during = t.h.state();
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.restored_diff(during), "");
  EXPECT_EQ(t.journal(), text);
  EXPECT_TRUE(t.log.contains("of a version this gpuhook does not know")) << t.log.text();
  // Nor can a new prepare add to it.
  std::string err;
  EXPECT_EQ(t.event("win11", "prepare", &err), 1);
  EXPECT_EQ(t.journal(), text);
}

// Out-of-order and unreadable lines are reported and kept, never erased by the next rewrite.
TEST(Authority, UnreadableJournalLinesAreKeptThroughRelease) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  ASSERT_EQ(t.event("win11", "prepare"), 0);
  std::string text = t.journal() + "step 2 pci.vfio phase=prepare address=0000:01:00.1 driver=snd_hda_intel\n"
                                   "garbage that is no journal line\n";
  t.h.fs.put_file("/run/gpuhook/win11.journal", text, 0600);
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "nvidia") << "the readable steps are undone\n" << t.log.text();
  ASSERT_TRUE(t.has_journal()) << "a journal with unreadable lines stays for a person to check";
  Journal j = Journal::parse(t.journal());
  EXPECT_TRUE(j.entries.empty());
  ASSERT_EQ(j.damaged.size(), 2u) << t.journal();
  EXPECT_EQ(j.damaged[0], "step 2 pci.vfio phase=prepare address=0000:01:00.1 driver=snd_hda_intel");
  EXPECT_EQ(j.damaged[1], "garbage that is no journal line");
  // A second release keeps them too, and says so.
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(Journal::parse(t.journal()).damaged, j.damaged);
  EXPECT_TRUE(t.log.contains("is damaged")) << t.log.text();
}

TEST(Authority, JournalKeysAreEscapedLikeValues) {
  Journal j;
  j.vm = "win11";
  JournalEntry e;
  e.seq = 1;
  e.kind = "command";
  e.phase = "prepare";
  e.fields["odd key=x"] = "v a=l%ue";
  e.fields["undo.0"] = "/bin/true";
  j.entries.push_back(e);
  std::string text = j.serialize();
  EXPECT_NE(text.find("odd%20key%3Dx=v%20a%3Dl%25ue"), std::string::npos) << text;
  Journal k = Journal::parse(text);
  EXPECT_TRUE(k.problems.empty());
  ASSERT_EQ(k.entries.size(), 1u);
  EXPECT_EQ(k.entries[0].fields, e.fields);
}

// Release waits by the timeouts journaled at prepare, not by the profile's new ones.
TEST(Authority, TimeoutsAreJournaledAtPrepare) {
  Harness t;
  put_profile(t.h, "win11", std::string(test::kLaptopProfile) + "[timeouts]\nevent = 45\nunbind = 3\n");
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  Journal j = Journal::parse(t.journal());
  EXPECT_EQ(j.timeouts.at("event"), "45000");
  EXPECT_EQ(j.timeouts.at("unbind"), "3000");
  Timeouts r = timeouts_from(j.timeouts, Timeouts{});
  EXPECT_EQ(r.event_ms, 45000);
  EXPECT_EQ(r.unbind_ms, 3000);
  EXPECT_EQ(timeouts_from({{"event", "-5"}, {"unbind", "x"}}, Timeouts{}).event_ms, 30000) << "garbage: defaults";
}

// A session that cannot get a lock names the event that holds it; release never undoes a
// journal that another event is writing (two writers of one journal lose steps).
TEST(Authority, ALockedVmIsNamedAndReleaseLeavesItsJournalAlone) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  ASSERT_EQ(t.event("win11", "prepare"), 0);
  std::string text = t.journal();
  t.h.locker.held.insert("/run/gpuhook/locks/vm.win11.lock");
  t.h.fs.put_file("/run/gpuhook/locks/vm.win11.owner", "3131 restore win11\n", 0600);
  auto during = t.h.state();
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.restored_diff(during), "");
  EXPECT_EQ(t.journal(), text);
  EXPECT_TRUE(t.log.contains("held by another gpuhook (pid 3131 restore win11)")) << t.log.text();
  t.h.locker.held.clear();
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_FALSE(t.has_journal());
}

// The host lock orders host-wide changes between VMs: a prepare waits for (and then names) an
// event of another VM that holds it, before planning anything.
TEST(Authority, PrepareWaitsForTheHostLockOfAnotherVmsEvent) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  t.h.locker.held.insert("/run/gpuhook/locks/host.lock");
  t.h.fs.put_file("/run/gpuhook/locks/host.owner", "777 release linux\n", 0600);
  auto before = t.h.state();
  std::string err;
  EXPECT_EQ(t.event("win11", "prepare", &err), 1);
  EXPECT_NE(err.find("gpuhook's host lock is held by another gpuhook (pid 777 release linux)"), std::string::npos) << err;
  EXPECT_EQ(t.restored_diff(before), "");
}

// `gpuhook restore` beside a running VM: the VM's QEMU holds /dev/vfio/<group>. Restoring would
// pull the GPU from under it; refused, naming the process, unless --force.
TEST(Authority, RestoreRefusesWhileTheVmsQemuHoldsItsVfioGroup) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  ASSERT_EQ(t.event("win11", "prepare"), 0);
  t.h.kernel.add_process({5150, "qemu-system-x86", {"/dev/vfio/1"}, false, ""});
  auto during = t.h.state();
  AppContext app = t.app();
  Invocation inv;
  inv.kind = Invocation::Kind::verb;
  inv.verb = "restore";
  inv.args = {"win11"};
  std::ostringstream out, err;
  EXPECT_EQ(run_verb(app, inv, out, err), 1);
  EXPECT_NE(err.str().find("qemu-system-x86 (pid 5150) holds /dev/vfio/1"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("--force"), std::string::npos);
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "vfio-pci");
  EXPECT_TRUE(t.has_journal());
  inv.force = true;
  std::ostringstream out2, err2;
  EXPECT_EQ(run_verb(app, inv, out2, err2), 0) << err2.str();
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "nvidia");
  EXPECT_FALSE(t.has_journal());
}

// Restore needs no profile and ignores a broken global config.
TEST(Authority, RestoreWorksWithoutAProfileAndWithABrokenGlobalConfig) {
  Harness t;
  put_profile(t.h, "win11", test::kLaptopProfile);
  auto before = t.h.state();
  ASSERT_EQ(t.event("win11", "prepare"), 0);
  ASSERT_TRUE(t.h.fs.remove("/etc/gpuhook/vms/win11.toml").ok());
  t.h.fs.put_file("/etc/gpuhook/gpuhook.toml", "[[[", 0644);
  before.erase("/etc/gpuhook/vms/win11.toml");
  AppContext app = t.app();
  Invocation inv;
  inv.kind = Invocation::Kind::verb;
  inv.verb = "restore";
  inv.args = {"win11"};
  inv.all_modules = true;  // and vfio-pci, which the default [host] unload_vfio = false keeps
  std::ostringstream out, err;
  EXPECT_EQ(run_verb(app, inv, out, err), 0) << err.str();
  auto after = t.h.state();
  after.erase("/etc/gpuhook/gpuhook.toml");
  EXPECT_EQ(diff_states(before, after), "") << out.str();
}

}  // namespace
}  // namespace gpuhook

namespace gpuhook {
namespace {

// A desktop with two NVIDIA cards: the host's desktop on 0000:02:00.0 (/dev/nvidia1 open by its
// Xorg, nvidiactl too), the guest's card 0000:01:00.0. Before: every /dev/nvidia* counted as a
// holder of any NVIDIA GPU, so prepare always refused, or with `terminate` killed the host's own
// display server. Now only the guest card's own node counts (its minor read from
// /proc/driver/nvidia/gpus/<address>/information); nvidiactl only when NVIDIA's modules go.
struct TwoNvidia : test::Harness {
  TwoNvidia() {
    build_reference_laptop(h);
    h.fs.put_dir("/sys/devices/pci0000:00/0000:00:03.0");
    h.kernel.add_bridge("0000:00:03.0", 2);
    h.kernel.add_pci({"0000:02:00.0", "10de", "2484", "10de", "146b", "030000", "nvidia", "nvidia", 2, false,
                      "/sys/devices/pci0000:00/0000:00:03.0"});
    h.kernel.add_process({1400, "Xorg", {"/dev/nvidiactl", "/dev/nvidia1"}, false, ""});
  }
};

TEST(Holders, AnotherNvidiaCardsDesktopIsNeitherAReasonToRefuseNorTerminated) {
  TwoNvidia t;
  ASSERT_EQ(read_attr(t.h.fs, "/proc/driver/nvidia/gpus/0000:02:00.0/information").empty(), false);
  put_profile(t.h, "win11", "[gpu]\naddress = \"0000:01:00.0\"\n[host]\nstop_services = [\"nvidia-persistenced.service\"]\n");
  std::string err;
  ASSERT_EQ(t.event("win11", "prepare", &err), 0) << err << t.log.text();
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "vfio-pci");
  EXPECT_EQ(t.h.kernel.driver_of("0000:02:00.0"), "nvidia");
  EXPECT_TRUE(t.h.kernel.process_alive(1400));
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "nvidia");

  put_profile(t.h, "win11", "[gpu]\naddress = \"0000:01:00.0\"\n[host]\nstop_services = [\"nvidia-persistenced.service\"]\n"
                            "holders = \"terminate\"\n");
  ASSERT_EQ(t.event("win11", "prepare", &err), 0) << err << t.log.text();
  EXPECT_TRUE(t.h.kernel.process_alive(1400)) << "the host's Xorg on the other card is never signalled";
  EXPECT_EQ(t.event("win11", "release"), 0);
}

TEST(Holders, TheGuestCardsOwnNodeIsAHolder) {
  TwoNvidia t;
  t.h.kernel.add_process({1500, "cuda-app", {"/dev/nvidia0"}, false, ""});
  put_profile(t.h, "win11", "[gpu]\naddress = \"0000:01:00.0\"\n");
  auto before = t.h.state();
  std::string err;
  EXPECT_EQ(t.event("win11", "prepare", &err), 1);
  EXPECT_NE(err.find("cuda-app (1500) holds /dev/nvidia0"), std::string::npos) << err;
  EXPECT_EQ(err.find("Xorg"), std::string::npos) << err;
  EXPECT_EQ(t.restored_diff(before), "");
}

// A module to unload that another loaded module uses, which the profile does not unload:
// `modprobe -r` would fail after the desktop had stopped. Refused before any change.
TEST(Modules, AModuleUsedByAModuleTheProfileKeepsIsRefusedBeforeAnyChange) {
  test::Harness t;
  build_reference_laptop(t.h);
  t.h.fs.put_dir("/sys/module/nvidia/holders/nvidia_peermem");
  put_profile(t.h, "win11", test::kLaptopProfile);
  auto before = t.h.state();
  std::string err;
  EXPECT_EQ(t.event("win11", "prepare", &err), 1);
  EXPECT_NE(err.find("module nvidia in [host] unload_modules is used by module nvidia_peermem"), std::string::npos) << err;
  EXPECT_NE(err.find("nothing on the host was changed"), std::string::npos) << err;
  EXPECT_TRUE(t.h.kernel.unit_active("nvidia-persistenced.service"));
  EXPECT_EQ(t.restored_diff(before), "");
}

}  // namespace
}  // namespace gpuhook

namespace gpuhook {
namespace {

// Release verifies that the host came back: each function on its driver with its DRM nodes,
// each stopped unit running with a live main process, the frame buffer console bound. A clean
// release says so; one that left the host different says what and what to run, in the log and in
// `gpuhook status`, until a clean release clears it.
TEST(ReleaseCheck, ACleanReleaseSaysTheHostIsBack) {
  test::Harness t;
  build_single_gpu_desktop(t.h);
  put_profile(t.h, "win11", "[gpu]\naddress = \"0000:0b:00.0\"\n[display]\nmode = \"takeover\"\n[host]\nholders = \"terminate\"\n");
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  ASSERT_EQ(t.event("win11", "release"), 0);
  EXPECT_TRUE(t.log.contains("release check: the host is back as the journal says it was")) << t.log.text();
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/win11.release"));
}

TEST(ReleaseCheck, ADisplayManagerWhoseServerDiesOnStartIsReportedInTheLogAndStatus) {
  test::Harness t;
  build_single_gpu_desktop(t.h);
  put_profile(t.h, "win11", "[gpu]\naddress = \"0000:0b:00.0\"\n[display]\nmode = \"takeover\"\n[host]\nholders = \"terminate\"\n");
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  // The display server starts with the unit and dies at once (the classic black screen).
  auto systemctl = t.h.runner.programs["systemctl"];
  t.h.runner.programs["systemctl"] = [&, systemctl](const std::vector<std::string>& a, const Deadline& d) {
    RunResult r = systemctl(a, d);
    if (a.size() == 3 && a[1] == "start" && a[2] == "display-manager.service") t.h.kernel.kill(1000, 9);
    return r;
  };
  ASSERT_EQ(t.event("win11", "release"), 0);
  EXPECT_TRUE(t.log.contains("release check: NOT BACK: display-manager.service is active but its main process is gone"))
      << t.log.text();
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/win11.journal")) << "every undo worked: nothing to replay";
  ASSERT_TRUE(t.h.fs.exists("/run/gpuhook/win11.release"));
  AppContext app = t.app();
  Invocation inv;
  inv.kind = Invocation::Kind::verb;
  inv.verb = "status";
  std::ostringstream out, err;
  EXPECT_EQ(run_verb(app, inv, out, err), 1);
  EXPECT_NE(out.str().find("after the last release, NOT BACK: display-manager.service is active but its main process is "
                           "gone: `systemctl status display-manager.service`"),
            std::string::npos)
      << out.str();
  // The next clean cycle clears it.
  t.h.runner.programs["systemctl"] = systemctl;
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  ASSERT_EQ(t.event("win11", "release"), 0);
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/win11.release"));
}

}  // namespace
}  // namespace gpuhook

namespace gpuhook {
namespace {

// A driver stuck in unbind: the guarded writer is still in the kernel (D state) at its deadline,
// and its write may land at any time later. Before: rollback assumed it had not happened and
// deleted the journal; the late unbind then left the GPU with no driver, and nothing knew. Now
// the step stays journaled while that writer lives; once it is gone, release (or restore) checks
// the real driver link and gives the GPU back.
TEST(Authority, AWriteStillInTheKernelKeepsItsStepJournaledUntilItsWriterIsGone) {
  test::Harness t;
  build_reference_laptop(t.h);
  put_profile(t.h, "win11", std::string(test::kLaptopProfile) + "[timeouts]\nunbind = 1\n");
  auto before = t.h.state();
  t.h.kernel.fault_write("drivers/snd_hda_intel/unbind", FakeKernel::Fault::late);
  std::string err;
  EXPECT_EQ(t.event("win11", "prepare", &err), 1);
  EXPECT_NE(err.find("rollback was INCOMPLETE"), std::string::npos) << err << t.log.text();
  ASSERT_TRUE(t.h.fs.exists("/run/gpuhook/win11.journal")) << "the journal outlives the writer\n" << t.log.text();
  EXPECT_TRUE(t.log.contains("a write of it is still in the kernel")) << t.log.text();
  // libvirt's release right after: the writer still sleeps in the kernel; the step stays.
  EXPECT_EQ(t.event("win11", "release"), 0);
  ASSERT_TRUE(t.h.fs.exists("/run/gpuhook/win11.journal")) << t.log.text();
  EXPECT_TRUE(t.log.contains("waits for a write still in the kernel")) << t.log.text();
  // The driver finally returns: the unbind lands, the function is left without a driver.
  ASSERT_EQ(t.h.kernel.complete_late_writes(), 1);
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.1"), "");
  // Now the journal is all that knows: the next release gives it back.
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.1"), "snd_hda_intel") << t.log.text();
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/win11.journal")) << t.log.text();
  EXPECT_EQ(t.restored_diff(before), "");
}

}  // namespace
}  // namespace gpuhook

namespace gpuhook {
namespace {

// The same during release: the undo's own write (vfio-pci's unbind) is stuck in the kernel. The
// step stays journaled with that writer, across a second release, until the writer is gone.
TEST(Authority, AnUndoWriteStillInTheKernelKeepsItsStepJournaledToo) {
  test::Harness t;
  build_reference_laptop(t.h);
  put_profile(t.h, "win11", std::string(test::kLaptopProfile) + "[timeouts]\nunbind = 1\n");
  auto before = t.h.state();
  ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
  t.h.kernel.fault_write("drivers/vfio-pci/unbind", FakeKernel::Fault::late);
  EXPECT_EQ(t.event("win11", "release"), 0);
  ASSERT_TRUE(t.h.fs.exists("/run/gpuhook/win11.journal")) << t.log.text();
  EXPECT_EQ(t.event("win11", "release"), 0);
  ASSERT_TRUE(t.h.fs.exists("/run/gpuhook/win11.journal")) << "the writer still sleeps\n" << t.log.text();
  ASSERT_EQ(t.h.kernel.complete_late_writes(), 1);
  EXPECT_EQ(t.event("win11", "release"), 0);
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/win11.journal")) << t.log.text();
  EXPECT_EQ(t.restored_diff(before), "");
}

}  // namespace
}  // namespace gpuhook

namespace gpuhook {
namespace {

// Two VMs on two GPUs, the second started while the first runs: the first loaded vfio-pci, the
// second found it loaded. Before: the first's release left vfio-pci loaded (the second's devices
// used it) and the second's release had no record of it: loaded for good, owned by nobody (found
// by realkernel-16). Now the module becomes the host's (/run/gpuhook/.host.journal) and the last
// release unloads it: the host ends exactly as before both VMs.
TEST(Authority, AModuleLoadedForOneVmAndUsedByAnotherIsUnloadedByTheLastRelease) {
  test::Harness t;
  build_reference_laptop(t.h);
  t.h.fs.put_dir("/sys/devices/pci0000:00/0000:00:03.0");
  t.h.kernel.add_bridge("0000:00:03.0", 7);
  t.h.kernel.add_pci({"0000:02:00.0", "10de", "2484", "10de", "146b", "030000", "nvidia", "nvidia", 7, false,
                      "/sys/devices/pci0000:00/0000:00:03.0"});
  const char* prof = "[gpu]\naddress = \"%s\"\n[host]\nstop_services = [\"nvidia-persistenced.service\"]\nunload_vfio = true\n";
  char a[256], b[256];
  std::snprintf(a, sizeof a, prof, "0000:01:00.0");
  std::snprintf(b, sizeof b, prof, "0000:02:00.0");
  put_profile(t.h, "a", a);
  put_profile(t.h, "b", b);
  auto before = t.h.state();
  ASSERT_EQ(t.event("a", "prepare"), 0) << t.log.text();
  ASSERT_EQ(t.event("b", "prepare"), 0) << t.log.text();
  ASSERT_TRUE(t.h.kernel.module_loaded("vfio_pci"));
  EXPECT_EQ(t.event("a", "release"), 0);
  EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "nvidia");
  EXPECT_EQ(t.h.kernel.driver_of("0000:02:00.0"), "vfio-pci") << "b keeps its GPU";
  EXPECT_TRUE(t.h.kernel.module_loaded("vfio_pci")) << "b's devices use it";
  EXPECT_TRUE(t.h.fs.exists("/run/gpuhook/.host.journal")) << t.log.text();
  {
    AppContext app = t.app();
    Invocation inv;
    inv.kind = Invocation::Kind::verb;
    inv.verb = "status";
    std::ostringstream out, err;
    (void)run_verb(app, inv, out, err);
    EXPECT_NE(out.str().find("host: modules gpuhook loaded that outlived their VM:\n"
                             "  vfio-pci (loaded for VM a): kept while another VM uses it; the last release unloads it\n"),
              std::string::npos)
        << out.str();
    EXPECT_EQ(out.str().find(".host:"), std::string::npos) << "the host's journal is no VM\n" << out.str();
  }
  EXPECT_EQ(t.event("b", "release"), 0);
  EXPECT_FALSE(t.h.kernel.module_loaded("vfio_pci")) << t.log.text();
  EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/.host.journal"));
  EXPECT_EQ(t.restored_diff(before), "") << t.log.text();
}

}  // namespace
}  // namespace gpuhook

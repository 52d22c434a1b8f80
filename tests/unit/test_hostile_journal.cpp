// A journal is data gpuhook wrote, but it is read back after crashes, power cuts and hands that
// edited it: release must never follow what it says outside gpuhook's own places. Every run here
// goes through host_guard.h's SafetyPolicy: no write outside the sysfs/procfs places gpuhook may
// touch and /run/gpuhook, no path with '..', no option smuggled to modprobe/systemctl as a name.
#include <gtest/gtest.h>

#include "../fuzz/host_guard.h"
#include "harness.h"
#include "app/hook_event.h"
#include "engine/journal.h"
#include "fake/fake_host.h"

namespace gpuhook {
namespace {

const char* kProfile = R"([gpu]
address = "0000:01:00.0"
[host]
stop_services = ["nvidia-persistenced.service"]
unload_modules = ["nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"]
)";

struct Guarded {
  FakeHost h;
  test::GuardedHost g{h};
  MemoryLog log;
  test::SafetyPolicy policy;
  std::vector<std::string> violations;
  Guarded() {
    build_reference_laptop(h);
    put_profile(h, "win11", kProfile);
  }
  void watch() {
    g.guard(&policy, [this](const std::string& why) { violations.push_back(why); });
  }
  int event(const std::string& vm, const std::string& op) { return test::run_event(g.host(), log, vm, op); }
  void put_journal(const std::string& text) {
    h.fs.put_dir("/run/gpuhook", 0700);
    h.fs.put_file("/run/gpuhook/win11.journal", text, 0600);
  }
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& l : v) s += "  " + l + "\n";
  return s;
}

// The journal file of one VM names another VM (edited, or copied from another file): release of
// this VM must write this VM's journal only, and say that the file names another VM.
TEST(HostileJournal, AJournalNamingAnotherVmNeverWritesThatVmsFiles) {
  for (const char* other : {"other", "../../etc/cron.d/gpuhook", "a b"}) {
    Guarded t;
    t.h.fs.put_dir("/run/gpuhook", 0700);
    t.h.fs.put_file("/run/gpuhook/other.journal", "gpuhook-journal 1\nvm other\n", 0600);
    t.watch();
    t.put_journal(std::string("gpuhook-journal 1\nvm ") + escape_value(other) +
                  "\nstep 1 module.load phase=prepare module=vfio_pci driver_dir=/sys/bus/pci/drivers/vfio-pci "
                  "was_loaded=0\nstep 2 claim phase=prepare address=0000:01:00.0 vm=win11\n");
    EXPECT_EQ(t.event("win11", "release"), 0);
    EXPECT_EQ(t.violations, std::vector<std::string>{}) << other << "\n" << joined(t.violations);
    EXPECT_EQ(*t.h.fs.read("/run/gpuhook/other.journal"), "gpuhook-journal 1\nvm other\n") << other;
    auto names = *t.h.fs.list("/run/gpuhook");
    for (const auto& n : names) EXPECT_TRUE(n == "win11.journal" || n == "other.journal" || n == "locks") << n;
    EXPECT_TRUE(t.log.contains("names VM")) << other << "\n" << t.log.text();
  }
}

// Field values no gpuhook ever writes, each of which would make an undo act on something else:
// a driver name that climbs out of /sys/bus/pci/drivers, module and unit names that are options.
TEST(HostileJournal, HostileFieldValuesAreRefusedNotFollowed) {
  struct Case {
    const char* name;
    bool prepared;
    std::string steps;
  };
  const std::vector<Case> cases = {
      {"pci.vfio driver climbing out of drivers/", true,
       "step 1 pci.vfio phase=prepare address=0000:01:00.0 driver=../../../bus/pci override=\n"},
      {"pci.vfio driver_at_plan climbing out", true,
       "step 1 pci.vfio phase=prepare address=0000:01:00.0 driver= driver_at_plan=../../../bus/pci override=\n"},
      {"pci.vfio override that is not a driver name", true,
       "step 1 pci.vfio phase=prepare address=0000:01:00.1 driver=snd_hda_intel override=/./\n"},
      {"pci.vfio driver '..' on a fresh host", false,
       "step 1 pci.vfio phase=prepare address=0000:01:00.0 driver=.. override=\n"},
      {"module.load with an option as module", true,
       "step 1 module.load phase=prepare module=--all driver_dir=/sys/bus/pci/drivers/vfio-pci was_loaded=0\n"},
      {"module.unload with an option as module", false,
       "step 1 module.unload phase=prepare module=-a was_loaded=1\n"},
      {"module.unload with a path as module", false,
       "step 1 module.unload phase=prepare module=/tmp/evil.ko was_loaded=1\n"},
      {"service.stop with an option as unit", false,
       "step 1 service.stop phase=prepare unit=--now was_active=1 state=active\n"},
      {"claim of an address with a NUL (the real Fs would cut the path there)", true,
       "step 1 claim phase=prepare address=00wi%00x vm=win11\n"},
      {"claim of '..'", true, "step 1 claim phase=prepare address=.. vm=win11\n"},
      {"service.stop with a path as unit", false,
       "step 1 service.stop phase=prepare unit=/etc/systemd/system/x.service was_active=1 state=active\n"},
      // Looking Glass and tuning (issues 16, 13): the same rule for their paths and names.
      {"shm.create of /etc/passwd", false, "step 1 shm.create phase=prepare path=/etc/passwd existed=0 size=1\n"},
      {"shm.create climbing out of /dev/shm", false,
       "step 1 shm.create phase=prepare path=/dev/shm/../../etc/passwd existed=0 size=1\n"},
      {"lg.client pid file outside /run/gpuhook", false, "step 1 lg.client phase=started how=pid pidfile=/etc/passwd user=alice\n"},
      {"lg.client unit that is an option", false, "step 1 lg.client phase=started how=unit unit=--all user=alice\n"},
      {"lg.client user that is an option", false, "step 1 lg.client phase=started how=unit unit=x.service user=-H\n"},
      {"hugepages.reserve outside the pools", false, "step 1 hugepages.reserve phase=prepare dir=/etc previous=3\n"},
      {"hugepages.reserve climbing out", false,
       "step 1 hugepages.reserve phase=prepare dir=/sys/kernel/mm/hugepages/hugepages-2048kB/../../../../etc previous=3\n"},
      {"cpuset.cpus outside /sys/fs/cgroup", false, "step 1 cpuset.cpus phase=prepare path=/etc/cpuset.cpus previous=0\n"},
      {"cpuset.cpus climbing out", false,
       "step 1 cpuset.cpus phase=prepare path=/sys/fs/cgroup/../../etc/cpuset.cpus previous=0\n"},
      {"cpuset.cpus previous that is not a CPU list", false,
       "step 1 cpuset.cpus phase=prepare path=/sys/fs/cgroup/system.slice/cpuset.cpus previous=0%3Breboot\n"},
      {"cpu.governor outside cpufreq", false, "step 1 cpu.governor phase=prepare path=/etc/passwd previous=powersave\n"},
      {"cpu.governor previous that is an option", false,
       "step 1 cpu.governor phase=prepare path=/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor previous=--x\n"},
      {"cpus.allowed unit that is an option", false, "step 1 cpus.allowed phase=prepare unit=--now previous=\n"},
      {"sleep.inhibit unit that is a path", false, "step 1 sleep.inhibit phase=prepare unit=/etc/systemd/system/x.service\n"},
  };
  for (const auto& c : cases) {
    Guarded t;
    if (c.prepared) {
      ASSERT_EQ(t.event("win11", "prepare"), 0) << t.log.text();
    }
    t.watch();
    t.put_journal("gpuhook-journal 1\nvm win11\n" + c.steps);
    EXPECT_EQ(t.event("win11", "release"), 0) << c.name;
    EXPECT_EQ(t.event("win11", "release"), 0) << c.name << ": the next release (or `gpuhook restore`) too";
    EXPECT_EQ(t.violations, std::vector<std::string>{}) << c.name << "\n" << joined(t.violations) << t.log.text();
    EXPECT_TRUE(t.log.contains("FAILED")) << c.name << ": a refused undo is reported\n" << t.log.text();
    EXPECT_TRUE(t.h.fs.exists("/run/gpuhook/win11.journal")) << c.name << ": the refused step stays in the journal";
  }
}

// A journal cut at every byte (a torn write can only happen through other tools, but a disk can
// lose a tail): release reads what it can, restores that, says what it could not, never crashes.
TEST(HostileJournal, AJournalTruncatedAtEveryByteIsReleasedSafely) {
  Guarded probe;
  ASSERT_EQ(probe.event("win11", "prepare"), 0);
  std::string full = *probe.h.fs.read("/run/gpuhook/win11.journal");
  ASSERT_GT(full.size(), 500u);
  for (size_t cut = 0; cut <= full.size(); cut += 7) {
    Guarded t;
    ASSERT_EQ(t.event("win11", "prepare"), 0);
    t.watch();
    std::string text = full.substr(0, cut);
    Journal j = Journal::parse(text);
    t.put_journal(text);
    t.log.lines.clear();
    EXPECT_EQ(t.event("win11", "release"), 0) << cut;
    EXPECT_EQ(t.violations, std::vector<std::string>{}) << cut;
    if (!j.problems.empty()) {
      EXPECT_TRUE(t.log.contains("is damaged")) << cut << "\n" << t.log.text();
      EXPECT_TRUE(t.log.contains("truncated line") || t.log.contains("header")) << cut << "\n" << t.log.text();
    }
    // Every step that could be read was undone: its devices are off vfio-pci.
    for (const auto& e : j.entries) {
      if (e.kind == "pci.vfio") {
        EXPECT_NE(t.h.kernel.driver_of(e.fields.at("address")), "vfio-pci") << "cut at " << cut;
      }
    }
  }
}

}  // namespace
}  // namespace gpuhook

// Fuzz target: the journal reader and the release path. The input is a journal file (after one
// byte of setup flags); release runs on the fake reference laptop through run_hook_event, as
// libvirtd's release would. It must never crash or hang, must report a damaged journal and keep
// it, and must never follow garbage: every write stays in sysfs/procfs places gpuhook may touch
// and in /run/gpuhook, no path has a '..', and no program gets an option smuggled in as a name
// (host_guard.h's SafetyPolicy). Flags: bit 0 prepare first (the host as a running VM left it),
// bit 1 vga_switcheroo present, bit 2 acpi_call present.
#include <cstdint>
#include <cstdio>
#include <string>

#include "app/hook_event.h"
#include "engine/journal.h"
#include "fake/fake_host.h"
#include "host_guard.h"
#include "../unit/harness.h"

namespace {

using namespace gpuhook;

const char* kProfile = R"([gpu]
address = "0000:01:00.0"
[host]
stop_services = ["nvidia-persistenced.service"]
unload_modules = ["nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia"]
)";

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_journal: %s\n", what);
    __builtin_trap();
  }
}

bool same(const Journal& a, const Journal& b) {
  if (a.vm != b.vm || a.entries.size() != b.entries.size()) return false;
  for (size_t i = 0; i < a.entries.size(); ++i) {
    const auto &x = a.entries[i], &y = b.entries[i];
    if (x.seq != y.seq || x.kind != y.kind || x.phase != y.phase || x.fields != y.fields || x.done != y.done) return false;
  }
  return true;
}

int event(FakeHost&, test::GuardedHost& g, MemoryLog& log, const std::string& op) {
  return test::run_event(g.host(), log, "win11", op);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > (256u << 10)) return -1;
  uint8_t flags = data[0];
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);

  // The parser alone: what it reads survives a round trip through the writer unchanged.
  Journal j = Journal::parse(text);
  if (j.vm.empty()) j.vm = "win11";  // as JournalStore::load does
  Journal again = Journal::parse(j.serialize());
  // What could not be read is kept (as 'damaged' lines, an unknown header as it was), and is
  // reported again on every read: nothing is silently dropped, nothing new appears.
  require(again.damaged == j.damaged, "damaged lines change through serialize/parse");
  require(again.problems.size() == again.damaged.size() + (j.version_known() ? 0 : 1),
          "a serialized journal reports other problems than the lines it keeps");
  require(again.version == j.version, "the journal version changes through serialize/parse");
  require(same(j, again), "a journal changes through serialize/parse");

  FakeHost h;
  build_reference_laptop(h);
  if (flags & 2) h.kernel.enable_switcheroo("0000:00:02.0", "0000:01:00.0");
  if (flags & 4) h.kernel.enable_acpi_call();
  put_profile(h, "win11", kProfile);
  test::GuardedHost g(h);
  MemoryLog log;
  if (flags & 1) require(event(h, g, log, "prepare") == 0, "prepare of the reference laptop failed");

  static const test::SafetyPolicy policy;
  g.guard(&policy, [&](const std::string& why) {
    std::fprintf(stderr, "fuzz_journal: unsafe effect in release: %s\n", why.c_str());
    __builtin_trap();
  });
  h.fs.put_dir("/run/gpuhook", 0700);
  h.fs.put_file("/run/gpuhook/win11.journal", text, 0600);
  // What release must report: every problem the store finds in the file.
  std::vector<std::string> problems;
  if (auto jr = JournalStore(h.fs, "/run/gpuhook").load("win11"); jr) problems = jr->problems;
  Millis t0 = h.clock.now_ms();
  log.lines.clear();
  require(event(h, g, log, "release") == 0, "release did not exit 0");
  require(h.clock.now_ms() - t0 <= 31000, "release ran past its 30 s deadline");
  if (!problems.empty()) {
    for (const auto& p : problems)
      require(log.contains("journal /run/gpuhook/win11.journal: " + p), "a problem of the journal was not reported");
    require(log.contains("is damaged"), "release did not say the journal is damaged");
    require(h.fs.exists("/run/gpuhook/win11.journal"), "a damaged journal was deleted");
  }
  // Nothing but this VM's own state (its journal, its release report) and the host's journal of
  // modules that outlived their VM: a journal naming another VM must not write that VM's journal.
  if (auto l = h.fs.list("/run/gpuhook"); l)
    for (const auto& n : *l)
      require(n == "win11.journal" || n == "win11.release" || n == ".host.journal" || n == "claims" || n == "locks",
              "release wrote a state file of another VM");
  // A second release (or `gpuhook restore`) must be as safe as the first.
  log.lines.clear();
  require(event(h, g, log, "release") == 0, "the second release did not exit 0");
  return 0;
}

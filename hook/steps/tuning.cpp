// Host tuning for the VM's lifetime (issue 13). Each step records the value it replaces and its
// undo writes that value back, from the record alone:
//   hugepages.reserve  nr_hugepages of one pool (system-wide or one NUMA node) raised so that the
//                      domain's pages are free; read back; fewer than wanted refuses the start
//   cpus.allowed       systemd: AllowedCPUs= of one unit (system.slice, user.slice, init.scope),
//                      set with `systemctl set-property --runtime`
//   cpuset.cpus        without systemd: cpuset.cpus of one top-level cgroup v2 group
//   cpu.governor       scaling_governor of one CPU
//   sleep.inhibit      a transient system unit holding a logind sleep/idle inhibitor
#include <cerrno>

#include "steps/steps.h"
#include "sysinfo/tuning_facts.h"

namespace gpuhook {
namespace {

Error err(std::string what, std::string why, std::string hint) {
  Error e;
  e.what = std::move(what);
  e.why = std::move(why);
  e.hint = std::move(hint);
  return e;
}

long long to_ll(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(s);
}

// Paths an undo may write to, whatever the journal says.
bool hugepage_path_ok(const std::string& d) {
  bool sys = d.rfind("/sys/kernel/mm/hugepages/hugepages-", 0) == 0;
  bool node = d.rfind("/sys/devices/system/node/node", 0) == 0 && d.find("/hugepages/hugepages-") != std::string::npos;
  return (sys || node) && d.find("..") == std::string::npos && d.size() < 200;
}
bool cpuset_path_ok(const std::string& p) {
  if (p.rfind("/sys/fs/cgroup/", 0) != 0 || p.find("..") != std::string::npos) return false;
  std::string rest = p.substr(15);
  auto slash = rest.find('/');
  return slash != std::string::npos && rest.substr(slash) == "/cpuset.cpus" && slash > 0 && rest[0] != '.';
}
bool cpu_path_ok(const std::string& p) {
  return p.rfind("/sys/devices/system/cpu/cpu", 0) == 0 && p.find("..") == std::string::npos &&
         p.size() > 44 && p.compare(p.size() - 25, 25, "/cpufreq/scaling_governor") == 0;
}
bool cpu_list_ok(const std::string& v) { return v.size() < 4096 && parse_cpu_list(v).has_value(); }

// ---- huge pages ----

class HugepagesReserve : public Step {
 public:
  HugepagesReserve(long long size_kib, int node, long long pages) : kib_(size_kib), node_(node), pages_(pages) {}
  std::string kind() const override { return "hugepages.reserve"; }
  std::string describe() const override {
    return "reserve " + std::to_string(pages_) + " huge pages of " + std::to_string(kib_) + " KiB" +
           (node_ >= 0 ? " on NUMA node " + std::to_string(node_) : "");
  }
  Result<Record> record(StepContext& ctx) override {
    std::string dir = hugepage_dir(kib_, node_);
    long long nr = to_ll(read_attr(ctx.host.fs, dir + "/nr_hugepages"));
    long long fr = to_ll(read_attr(ctx.host.fs, dir + "/free_hugepages"));
    if (nr < 0 || fr < 0)
      return err("cannot reserve huge pages of " + std::to_string(kib_) + " KiB", dir + "/nr_hugepages is unreadable",
                 "this kernel has no such page size: use a size listed in /sys/kernel/mm/hugepages");
    return Record{{"dir", dir}, {"size_kib", std::to_string(kib_)}, {"wanted", std::to_string(pages_)},
                  {"previous", std::to_string(nr)}, {"free", std::to_string(fr)}};
  }
  Status apply(StepContext& ctx, const Record& rec) override {
    Fs& fs = ctx.host.fs;
    long long prev = to_ll(field(rec, "previous")), fr = to_ll(field(rec, "free"));
    long long target = prev + std::max(0ll, pages_ - fr);
    if (target == prev) {
      ctx.log.info(std::to_string(fr) + " huge pages of " + std::to_string(kib_) + " KiB are free already: none added");
      return Status::success();
    }
    // As Documentation/admin-guide/mm/hugetlbpage.rst advises: free the page cache and compact
    // memory first, so that the kernel finds contiguous memory.
    (void)fs.write("/proc/sys/vm/drop_caches", "3");
    if (fs.exists("/proc/sys/vm/compact_memory")) (void)fs.write("/proc/sys/vm/compact_memory", "1");
    std::string dir = field(rec, "dir");
    if (auto st = fs.write(dir + "/nr_hugepages", std::to_string(target)); !st) return st;
    long long got = to_ll(read_attr(fs, dir + "/nr_hugepages"));
    if (got >= target) return Status::success();
    long long memfree = meminfo_kib(fs, "MemFree");
    (void)fs.write(dir + "/nr_hugepages", std::to_string(prev));
    long long mib = pages_ * kib_ / 1024;
    return err("cannot reserve the VM's huge pages: wanted " + std::to_string(pages_) + " pages of " + std::to_string(kib_) +
                   " KiB (" + std::to_string(mib) + " MiB), the kernel reserved " + std::to_string(std::max(0ll, got - prev)) +
                   " of the " + std::to_string(target - prev) + " needed beyond the " + std::to_string(fr) + " free",
               "memory is too fragmented or too small (MemFree " + std::to_string(memfree / 1024) + " MiB); the count is back at " +
                   std::to_string(prev),
               "reserve them at boot: add hugepagesz=" + std::to_string(kib_ / 1024) + "M hugepages=" + std::to_string(prev + pages_) +
                   " to the kernel command line, or give the VM less memory");
  }

 private:
  long long kib_;
  int node_;
  long long pages_;
};

Status undo_hugepages(StepContext& ctx, const Record& rec) {
  std::string dir = field(rec, "dir");
  long long prev = to_ll(field(rec, "previous"));
  if (!hugepage_path_ok(dir) || prev < 0)
    return err("refusing the journal record: hugepages dir '" + escape_value(dir.substr(0, 80)) + "' or previous '" +
                   escape_value(field(rec, "previous").substr(0, 20)) + "'",
               "a journal written by gpuhook never holds this", "echo N > .../nr_hugepages by hand, then remove the journal");
  if (to_ll(read_attr(ctx.host.fs, dir + "/nr_hugepages")) == prev) return Status::success();
  auto st = ctx.host.fs.write(dir + "/nr_hugepages", std::to_string(prev));
  if (!st) return st;
  return Status::success();
}

std::string restored_hugepages(StepContext& ctx, const Record& rec) {
  std::string dir = field(rec, "dir");
  if (!hugepage_path_ok(dir)) return "";
  std::string now = read_attr(ctx.host.fs, dir + "/nr_hugepages");
  if (now != field(rec, "previous"))
    return dir + "/nr_hugepages is " + now + ", was " + field(rec, "previous") + " (pages still in use are freed when their user ends)";
  return "";
}

// ---- CPU isolation, systemd ----

std::string show_allowed(StepContext& ctx, const std::string& unit, bool* ok) {
  Deadline d = ctx.deadline.sub(ctx.timeouts.command_ms);
  auto r = ctx.host.runner.run({"systemctl", "show", "-p", "AllowedCPUs", "--value", unit}, d);
  *ok = r && r->success();
  return *ok ? trim(r->out) : "";
}

class CpusAllowed : public Step {
 public:
  CpusAllowed(std::string unit, std::string cpus) : unit_(std::move(unit)), cpus_(std::move(cpus)) {}
  std::string kind() const override { return "cpus.allowed"; }
  std::string describe() const override { return "confine " + unit_ + " to CPUs " + cpus_; }
  Result<Record> record(StepContext& ctx) override {
    bool ok = false;
    std::string prev = show_allowed(ctx, unit_, &ok);
    if (!ok || !cpu_list_ok(prev))
      return err("cannot read AllowedCPUs of " + unit_, "systemctl show -p AllowedCPUs " + unit_ + " failed or printed '" + prev + "'",
                 "systemd 244 or later is needed for AllowedCPUs=; or set [tuning] isolate_cpus = false");
    return Record{{"unit", unit_}, {"cpus", cpus_}, {"previous", prev}};
  }
  Status apply(StepContext& ctx, const Record&) override {
    auto r = run_checked(ctx, {"systemctl", "set-property", "--runtime", unit_, "AllowedCPUs=" + cpus_}, ctx.timeouts.command_ms,
                         "cannot confine " + unit_ + " to CPUs " + cpus_);
    if (!r) return r.error();
    return Status::success();
  }

 private:
  std::string unit_, cpus_;
};

Status undo_cpus_allowed(StepContext& ctx, const Record& rec) {
  if (auto s = check_journal_name(rec, "unit"); !s) return s;
  std::string unit = field(rec, "unit"), prev = field(rec, "previous");
  if (!cpu_list_ok(prev)) return err("refusing the journal record: AllowedCPUs '" + escape_value(prev.substr(0, 80)) + "'", "", "");
  bool ok = false;
  if (show_allowed(ctx, unit, &ok) == prev && ok) return Status::success();
  auto r = run_checked(ctx, {"systemctl", "set-property", "--runtime", unit, "AllowedCPUs=" + prev}, ctx.timeouts.command_ms,
                       "cannot give " + unit + " its CPUs back");
  if (!r) {
    Error e = r.error();
    e.hint = "systemctl set-property --runtime " + unit + " AllowedCPUs=" + prev;
    return e;
  }
  return Status::success();
}

std::string restored_cpus_allowed(StepContext& ctx, const Record& rec) {
  if (!check_journal_name(rec, "unit")) return "";
  bool ok = false;
  std::string now = show_allowed(ctx, field(rec, "unit"), &ok);
  if (ok && now != field(rec, "previous"))
    return field(rec, "unit") + " AllowedCPUs is '" + now + "', was '" + field(rec, "previous") + "'";
  return "";
}

// ---- CPU isolation, cgroup v2 directly ----

class CpusetCpus : public Step {
 public:
  CpusetCpus(std::string path, std::string cpus) : path_(std::move(path)), cpus_(std::move(cpus)) {}
  std::string kind() const override { return "cpuset.cpus"; }
  std::string describe() const override { return "confine cgroup " + dirname_of(path_) + " to CPUs " + cpus_; }
  Result<Record> record(StepContext& ctx) override {
    auto prev = ctx.host.fs.read(path_);
    if (!prev) return prev.error();
    return Record{{"path", path_}, {"cpus", cpus_}, {"previous", trim(*prev)}};
  }
  Status apply(StepContext& ctx, const Record&) override { return ctx.host.fs.write(path_, cpus_); }

 private:
  std::string path_, cpus_;
};

// The CPUs a group with an empty cpuset.cpus has: its parent's effective ones.
std::string parent_effective(Fs& fs, const std::string& path) {
  return trim(read_attr(fs, dirname_of(dirname_of(path)) + "/cpuset.cpus.effective"));
}

Status undo_cpuset(StepContext& ctx, const Record& rec) {
  std::string path = field(rec, "path"), prev = field(rec, "previous");
  if (!cpuset_path_ok(path) || !cpu_list_ok(prev))
    return err("refusing the journal record: cpuset '" + escape_value(path.substr(0, 80)) + "' = '" + escape_value(prev.substr(0, 80)) + "'",
               "a journal written by gpuhook never holds this", "write the previous value by hand, then remove the journal");
  Fs& fs = ctx.host.fs;
  auto now = fs.read(path);
  if (!now) return fs.exists(dirname_of(path)) ? Status(now.error()) : Status::success();  // the group is gone
  if (trim(*now) == prev) return Status::success();
  if (!prev.empty()) return fs.write(path, prev);
  // It was empty ("the parent's CPUs"). The kernel refuses to empty the cpuset of a group that
  // has processes (ENOSPC, kernel/cgroup/cpuset.c validate_change): then the parent's effective
  // CPUs are written, which gives the group the same CPUs it had.
  std::string parent = parent_effective(fs, path);
  if (!parent.empty() && trim(*now) == parent) return Status::success();
  auto st = fs.write(path, "\n");
  if (st || st.error().code != ENOSPC || parent.empty()) return st;
  ctx.log.info(path + " was empty (the parent's CPUs); the kernel does not empty the cpuset of a group with processes: "
               "it gets the parent's CPUs by name, " + parent);
  return fs.write(path, parent);
}

std::string restored_cpuset(StepContext& ctx, const Record& rec) {
  std::string path = field(rec, "path");
  if (!cpuset_path_ok(path)) return "";
  auto now = ctx.host.fs.read(path);
  std::string prev = field(rec, "previous");
  if (!now || trim(*now) == prev || (prev.empty() && trim(*now) == parent_effective(ctx.host.fs, path))) return "";
  return path + " is '" + trim(*now) + "', was '" + prev + "'";
}

// ---- governor ----

class CpuGovernor : public Step {
 public:
  CpuGovernor(int cpu, std::string gov) : cpu_(cpu), gov_(std::move(gov)) {}
  std::string kind() const override { return "cpu.governor"; }
  std::string describe() const override { return "CPU " + std::to_string(cpu_) + " governor " + gov_; }
  Result<Record> record(StepContext& ctx) override {
    std::string p = "/sys/devices/system/cpu/cpu" + std::to_string(cpu_) + "/cpufreq/scaling_governor";
    std::string prev = read_attr(ctx.host.fs, p);
    if (prev.empty()) return err("cannot read " + p, "", "");
    return Record{{"path", p}, {"governor", gov_}, {"previous", prev}};
  }
  Status apply(StepContext& ctx, const Record& rec) override { return ctx.host.fs.write(field(rec, "path"), gov_); }

 private:
  int cpu_;
  std::string gov_;
};

Status undo_governor(StepContext& ctx, const Record& rec) {
  std::string p = field(rec, "path");
  if (!cpu_path_ok(p)) return err("refusing the journal record: governor path '" + escape_value(p.substr(0, 80)) + "'", "", "");
  if (auto s = check_journal_name(rec, "previous"); !s) return s;
  if (!ctx.host.fs.exists(p)) return Status::success();  // the CPU went offline: nothing to give back
  if (read_attr(ctx.host.fs, p) == field(rec, "previous")) return Status::success();
  return ctx.host.fs.write(p, field(rec, "previous"));
}

std::string restored_governor(StepContext& ctx, const Record& rec) {
  std::string p = field(rec, "path");
  if (!cpu_path_ok(p) || !ctx.host.fs.exists(p)) return "";
  std::string now = read_attr(ctx.host.fs, p);
  return now == field(rec, "previous") ? "" : p + " is " + now + ", was " + field(rec, "previous");
}

// ---- sleep inhibitor ----

class SleepInhibit : public Step {
 public:
  explicit SleepInhibit(std::string unit) : unit_(std::move(unit)) {}
  std::string kind() const override { return "sleep.inhibit"; }
  std::string describe() const override { return "inhibit sleep and idle while the VM runs (" + unit_ + ")"; }
  Result<Record> record(StepContext&) override { return Record{{"unit", unit_}}; }
  Status apply(StepContext& ctx, const Record&) override {
    auto r = run_checked(ctx,
                         {"systemd-run", "--unit=" + unit_, "--collect", "--quiet", "--description=gpuhook: no sleep while VM " + ctx.vm + " runs",
                          "--", "systemd-inhibit", "--what=sleep:idle", "--who=gpuhook", "--why=VM " + ctx.vm + " runs with the GPU",
                          "--mode=block", "sleep", "infinity"},
                         ctx.timeouts.command_ms, "cannot start the sleep inhibitor " + unit_);
    if (!r) return r.error();
    return Status::success();
  }

 private:
  std::string unit_;
};

Status undo_inhibit(StepContext& ctx, const Record& rec) {
  if (auto s = check_journal_name(rec, "unit"); !s) return s;
  std::string unit = field(rec, "unit");
  // Only a clear "inactive"/"failed" (a --collect unit that is gone reads inactive) skips the
  // stop: when systemctl cannot tell, stopping is tried, never assumed unnecessary.
  Deadline d = ctx.deadline.sub(ctx.timeouts.command_ms);
  auto st = ctx.host.runner.run({"systemctl", "is-active", unit}, d);
  std::string state = st ? trim(st->out) : "";
  if (state == "inactive" || state == "failed") return Status::success();
  Deadline ds = ctx.deadline.sub(ctx.timeouts.service_ms);
  auto r = ctx.host.runner.run({"systemctl", "stop", unit}, ds);
  if (r && (r->success() || (!r->timed_out && !r->signaled && r->exit_code == 5))) return Status::success();  // 5: not loaded
  Error e;
  e.what = "cannot stop the sleep inhibitor " + unit;
  e.why = r ? "systemctl stop " + unit + ": " + r->summary() : r.error().message();
  e.hint = "systemctl stop " + unit;
  return e;
}

}  // namespace

std::string tuning_in_force(const std::string& kind, const Record& r) {
  auto f = [&](const char* k) { return escape_value(field(r, k).substr(0, 120)); };
  if (kind == "hugepages.reserve") return "huge pages: " + f("wanted") + " of " + f("size_kib") + " KiB for the VM in " + f("dir") +
                                          " (count before: " + f("previous") + ")";
  if (kind == "cpus.allowed") return "CPU isolation: " + f("unit") + " AllowedCPUs=" + f("cpus") + " (before: '" + f("previous") + "')";
  if (kind == "cpuset.cpus") return "CPU isolation: " + f("path") + " = " + f("cpus") + " (before: '" + f("previous") + "')";
  if (kind == "cpu.governor") return "governor: " + f("path") + " = " + f("governor") + " (before: " + f("previous") + ")";
  if (kind == "sleep.inhibit") return "no sleep: inhibitor unit " + f("unit");
  if (kind == "shm.create") return "shared memory: " + f("path") + " (" + f("size") + " bytes, uid " + f("uid") + ", gid " + f("gid") +
                                   (field(r, "existed") == "1" ? ", was there before)" : ", created)");
  if (kind == "lg.client") return "Looking Glass client as " + f("user") + ": " + (field(r, "how") == "unit" ? "unit " + f("unit") : "pid file " + f("pidfile"));
  return "";
}

std::unique_ptr<Step> make_hugepages_reserve(long long size_kib, int node, long long pages) {
  return std::make_unique<HugepagesReserve>(size_kib, node, pages);
}
std::unique_ptr<Step> make_cpus_allowed(const std::string& unit, const std::string& cpus) {
  return std::make_unique<CpusAllowed>(unit, cpus);
}
std::unique_ptr<Step> make_cpuset_cpus(const std::string& path, const std::string& cpus) {
  return std::make_unique<CpusetCpus>(path, cpus);
}
std::unique_ptr<Step> make_cpu_governor(int cpu, const std::string& governor) { return std::make_unique<CpuGovernor>(cpu, governor); }
std::unique_ptr<Step> make_sleep_inhibit(const std::string& unit) { return std::make_unique<SleepInhibit>(unit); }

StepKindInfo hugepages_kind() { return {undo_hugepages, {}, restored_hugepages}; }
StepKindInfo cpus_allowed_kind() { return {undo_cpus_allowed, {}, restored_cpus_allowed}; }
StepKindInfo cpuset_kind() { return {undo_cpuset, {}, restored_cpuset}; }
StepKindInfo governor_kind() { return {undo_governor, {}, restored_governor}; }
StepKindInfo inhibit_kind() { return {undo_inhibit, {}, {}}; }

}  // namespace gpuhook

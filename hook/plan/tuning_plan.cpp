#include "plan/tuning_plan.h"

#include <algorithm>

#include "steps/steps.h"
#include "sysinfo/tuning_facts.h"

namespace gpuhook {
namespace {

std::string mib(long long bytes) { return std::to_string(bytes >> 20) + " MiB"; }

void plan_shared_memory(Host& host, const Profile& p, const DomainInfo* d, const std::string& vm, TuningPlan& t) {
  Fs& fs = host.fs;
  const auto& lg = p.looking_glass;
  if (!d) {
    t.notes.push_back("Looking Glass: the shared memory follows the domain's <shmem>, which prepare reads from libvirt");
    return;
  }
  if (lg.user.empty()) {
    t.refusals.push_back(refusal("lg-user-missing", "[tuning] shared_memory needs the user who reads it",
                                 "the file is owned by that user and QEMU's group",
                                 "set [display.looking_glass] user = \"NAME\" in " + p.path));
    return;
  }
  long long need = looking_glass_min_size(lg.width, lg.height);
  std::string res = std::to_string(lg.width) + "x" + std::to_string(lg.height);
  auto user = lookup_user(fs, lg.user);
  if (!user)
    t.refusals.push_back(refusal("lg-user-unknown", "[display.looking_glass] user '" + lg.user + "' does not exist on this host",
                                 "the shared memory is owned by that user and the client runs as them",
                                 "fix user in " + p.path + " (a desktop user of this machine)"));
  if (user && user->uid == 0)
    t.refusals.push_back(refusal("lg-user-unknown", "[display.looking_glass] user '" + lg.user + "' has uid 0",
                                 "the client runs in a desktop user's session, never as root",
                                 "name the desktop user in " + p.path));
  const DomainShmem* sh = looking_glass_shmem(*d);
  if (!sh && !d->kvmfr_device.empty()) {
    // kvmfr: the module makes the device; gpuhook only checks it.
    long long size = d->kvmfr_size;
    std::string static_mb = read_attr(fs, "/sys/module/kvmfr/parameters/static_size_mb");
    if (!fs.is_dir("/sys/module/kvmfr"))
      t.refusals.push_back(refusal("lg-kvmfr", "the domain uses " + d->kvmfr_device + " but the kvmfr module is not loaded", "",
                                   "modprobe kvmfr static_size_mb=" + std::to_string(std::max(need, size) >> 20)));
    else {
      // static_size_mb is one size per device ("32" or "32,128"): /dev/kvmfr0's is the first.
      long long have = std::atoll(static_mb.substr(0, static_mb.find(',')).c_str());
      if (size > 0 && (have << 20) < size)
        t.refusals.push_back(refusal("lg-kvmfr", "kvmfr's static_size_mb is " + std::to_string(have) + ", the domain maps " + mib(size),
                                     "", "reload it: modprobe -r kvmfr && modprobe kvmfr static_size_mb=" + std::to_string(size >> 20)));
      FileInfo fi = fs.stat(d->kvmfr_device);
      if (user && fi.type != FileType::missing && fi.uid != user->uid)
        t.refusals.push_back(refusal("lg-kvmfr", d->kvmfr_device + " is owned by uid " + std::to_string(fi.uid) + ", not " + lg.user,
                                     "the client opens the device as " + lg.user,
                                     "a udev rule: SUBSYSTEM==\"kvmfr\", OWNER=\"" + lg.user + "\", GROUP=\"kvm\", MODE=\"0660\""));
    }
    if (size > 0 && (!is_power_of_two(size) || size < need))
      t.refusals.push_back(refusal("lg-shmem-size", "the domain's kvmfr size= is " + std::to_string(size) + " bytes",
                                   "Looking Glass needs a power of two of at least " + mib(need) + " for " + res,
                                   "use size=" + std::to_string(need >> 20) + "M"));
    return;
  }
  if (!sh) {
    t.refusals.push_back(refusal("lg-shmem-missing", "the domain has no Looking Glass shared memory",
                                 "no <shmem> with ivshmem-plain and no kvmfr device in <qemu:commandline>",
                                 "add to <devices> (virsh edit " + vm + "): <shmem name='looking-glass'><model type='ivshmem-plain'/><size unit='M'>" +
                                     std::to_string(need >> 20) + "</size></shmem>"));
    return;
  }
  if (sh->size_bytes <= 0 || !is_power_of_two(sh->size_bytes) || sh->size_bytes < need) {
    t.refusals.push_back(refusal("lg-shmem-size",
                                 "the domain's <shmem name='" + sh->name + "'> size is " +
                                     (sh->size_bytes <= 0 ? std::string("missing or unreadable") : std::to_string(sh->size_bytes) + " bytes"),
                                 "Looking Glass needs a power of two of at least " + mib(need) + " for " + res +
                                     " (width x height x 4 x 2 + 10 MiB, rounded up)",
                                 "set <size unit='M'>" + std::to_string(need >> 20) + "</size> in the domain (virsh edit " + vm +
                                     "), or lower [display.looking_glass] width/height"));
    return;
  }
  std::string group = qemu_group_name(fs);
  if (!lookup_group(fs, group))
    t.refusals.push_back(refusal("lg-group-unknown", "QEMU's group '" + group + "' does not exist",
                                 "the shared memory is shared between " + lg.user + " and QEMU through it",
                                 "set group = \"...\" in /etc/libvirt/qemu.conf to the group QEMU runs as"));
  t.steps.push_back(make_shm_create("/dev/shm/" + sh->name, sh->size_bytes, lg.user, group));
}

void plan_hugepages(Host& host, const DomainInfo* d, TuningPlan& t) {
  Fs& fs = host.fs;
  if (!d) {
    t.notes.push_back("[tuning] hugepages: the domain's <memoryBacking> decides; prepare reads it from libvirt");
    return;
  }
  if (!d->hugepages) {
    t.notes.push_back("[tuning] hugepages: the domain has no <memoryBacking><hugepages/>: nothing to reserve");
    return;
  }
  long long kib = default_hugepage_kib(fs);
  if (!d->hugepage_sizes.empty() && d->hugepage_sizes.front().size_kib > 0) kib = d->hugepage_sizes.front().size_kib;
  if (d->hugepage_sizes.size() > 1)
    t.notes.push_back("[tuning] hugepages: several <page> sizes in the domain: all of its memory is reserved in the first (" +
                      std::to_string(kib) + " KiB)");
  if (kib <= 0 || d->memory_kib <= 0) {
    t.refusals.push_back(refusal("hugepages-unknown", "cannot tell how many huge pages the domain needs",
                                 kib <= 0 ? "/proc/meminfo has no Hugepagesize" : "the domain has no readable <memory>",
                                 "give <page size=... unit=.../> and <memory> in the domain"));
    return;
  }
  int node = -1;
  if (auto ns = parse_cpu_list(d->numatune_nodeset); ns && ns->size() == 1 && fs.is_dir(hugepage_dir(kib, *ns->begin())))
    node = *ns->begin();
  else if (!d->numatune_nodeset.empty())
    t.notes.push_back("[tuning] hugepages: <numatune> nodeset '" + d->numatune_nodeset + "' spans several nodes: reserved system-wide");
  if (!fs.is_dir(hugepage_dir(kib, node))) {
    t.refusals.push_back(refusal("hugepages-size", "this host has no huge pages of " + std::to_string(kib) + " KiB",
                                 hugepage_dir(kib, node) + " does not exist",
                                 "use a size listed in /sys/kernel/mm/hugepages (<page size='2048' unit='KiB'/>), or 1 GiB pages need "
                                 "hugepagesz=1G on the kernel command line"));
    return;
  }
  long long pages = (d->memory_kib + kib - 1) / kib;
  t.steps.push_back(make_hugepages_reserve(kib, node, pages));
}

// The CPUs the domain pins (vcpupin, emulatorpin, iothreadpin); refusals for bad lists.
std::set<int> pinned_cpus(Host& host, const DomainInfo& d, TuningPlan& t) {
  std::set<int> pinned;
  std::set<int> online = online_cpus(host.fs);
  for (const auto& s : d.cpu_pins) {
    auto c = parse_cpu_list(s);
    if (!c) {
      t.refusals.push_back(refusal("cpus-pinning", "the domain pins to '" + s + "', which is not a CPU list", "",
                                   "fix the cpuset= of <cputune> (virsh edit " + d.name + ")"));
      continue;
    }
    pinned.insert(c->begin(), c->end());
  }
  std::set<int> missing;
  for (int c : pinned)
    if (!online.count(c)) missing.insert(c);
  if (!missing.empty() && !online.empty())
    t.refusals.push_back(refusal("cpus-pinning", "the domain pins to CPU(s) " + format_cpu_list(missing) + ", which this host does not have",
                                 "online CPUs: " + format_cpu_list(online),
                                 "fix <vcpupin>/<emulatorpin>/<iothreadpin> cpuset= (virsh edit " + d.name + ")"));
  return pinned;
}

void plan_isolation(Host& host, const DomainInfo* d, TuningPlan& t) {
  Fs& fs = host.fs;
  if (!d) {
    t.notes.push_back("[tuning] isolate_cpus: the domain's <cputune> pinning decides; prepare reads it from libvirt");
    return;
  }
  if (d->cpu_pins.empty()) {
    t.notes.push_back("[tuning] isolate_cpus: the domain pins no CPU (<vcpupin>/<emulatorpin>/<iothreadpin>): nothing to isolate");
    return;
  }
  size_t before = t.refusals.size();
  std::set<int> pinned = pinned_cpus(host, *d, t);
  if (t.refusals.size() != before) return;
  std::set<int> online = online_cpus(fs), rest;
  for (int c : online)
    if (!pinned.count(c)) rest.insert(c);
  if (rest.empty()) {
    t.refusals.push_back(refusal("cpus-none-left", "the domain pins every CPU of this host (" + format_cpu_list(online) + ")",
                                 "[tuning] isolate_cpus would leave the host no CPU",
                                 "leave at least one CPU unpinned, or set [tuning] isolate_cpus = false"));
    return;
  }
  std::string cpus = format_cpu_list(rest);
  if (systemd_running(fs)) {
    for (const char* u : {"system.slice", "user.slice", "init.scope"}) t.steps.push_back(make_cpus_allowed(u, cpus));
    return;
  }
  std::vector<std::string> groups;
  if (auto l = fs.list("/sys/fs/cgroup"); l && fs.exists("/sys/fs/cgroup/cgroup.controllers"))
    for (const auto& g : *l) {
      if (g == "machine" || g == "machine.slice" || !fs.is_dir("/sys/fs/cgroup/" + g)) continue;  // where libvirt puts VMs
      if (fs.exists("/sys/fs/cgroup/" + g + "/cpuset.cpus")) groups.push_back(g);
    }
  if (groups.empty()) {
    t.refusals.push_back(refusal("cpus-isolation-unavailable", "[tuning] isolate_cpus: no top-level cgroup v2 group has the cpuset controller",
                                 "without systemd gpuhook confines the groups under /sys/fs/cgroup through their cpuset.cpus",
                                 "mount cgroup2 on /sys/fs/cgroup and enable cpuset: echo +cpuset > /sys/fs/cgroup/cgroup.subtree_control; "
                                 "or set [tuning] isolate_cpus = false"));
    return;
  }
  for (const auto& g : groups) t.steps.push_back(make_cpuset_cpus("/sys/fs/cgroup/" + g + "/cpuset.cpus", cpus));
}

void plan_governor(Host& host, const Profile& p, const DomainInfo* d, TuningPlan& t) {
  Fs& fs = host.fs;
  std::set<int> cpus;
  if (d && !d->cpu_pins.empty()) {
    TuningPlan scratch;
    cpus = pinned_cpus(host, *d, scratch);
  }
  if (cpus.empty()) cpus = online_cpus(fs);
  std::vector<int> without;
  for (int c : cpus) {
    std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/cpufreq";
    if (!fs.exists(dir + "/scaling_governor")) {
      without.push_back(c);
      continue;
    }
    std::string avail = " " + read_attr(fs, dir + "/scaling_available_governors") + " ";
    if (avail.find(" " + p.tuning.governor + " ") == std::string::npos) {
      t.refusals.push_back(refusal("governor-unknown", "[tuning] governor '" + p.tuning.governor + "' is not available on CPU " + std::to_string(c),
                                   "it offers:" + avail, "use one of them in " + p.path));
      return;
    }
    t.steps.push_back(make_cpu_governor(c, p.tuning.governor));
  }
  if (!without.empty())
    t.notes.push_back("[tuning] governor: " + std::to_string(without.size()) + " CPU(s) without cpufreq (" +
                      format_cpu_list(std::set<int>(without.begin(), without.end())) + "): left as they are");
}

}  // namespace

const DomainShmem* looking_glass_shmem(const DomainInfo& d) {
  const DomainShmem* best = nullptr;
  for (const auto& s : d.shmems) {
    if (s.model != "ivshmem-plain" && !s.model.empty()) continue;
    if (s.name == "looking-glass") return &s;
    if (!best) best = &s;
  }
  return best;
}

TuningPlan plan_tuning(Host& host, const Profile& p, const DomainInfo* domain, const std::string& vm) {
  TuningPlan t;
  if (p.tuning.hugepages) plan_hugepages(host, domain, t);
  if (p.tuning.isolate_cpus) plan_isolation(host, domain, t);
  if (!p.tuning.governor.empty()) plan_governor(host, p, domain, t);
  if (p.tuning.inhibit_sleep) {
    if (systemd_running(host.fs)) {
      std::string u = "gpuhook-inhibit-";
      for (unsigned char c : vm) u += (std::isalnum(c) || c == '-' || c == '_') ? static_cast<char>(c) : '_';
      t.steps.push_back(make_sleep_inhibit(u.substr(0, 200) + ".service"));
    } else {
      t.notes.push_back("[tuning] inhibit_sleep: systemd-logind is not running, so nothing sleeps through it: no inhibitor");
    }
  }
  if (p.mode == DisplayMode::looking_glass || p.tuning.shared_memory) plan_shared_memory(host, p, domain, vm, t);
  return t;
}

}  // namespace gpuhook

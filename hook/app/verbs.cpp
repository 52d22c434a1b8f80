// Verb dispatch, and the verbs that work from profiles and journals: plan, status, restore.
// (doctor, groups, ids: verb_setup.cpp; check: verb_check.cpp.)
#include "version.h"
#include "app/verbs.h"

#include <fstream>
#include <iterator>
#include <optional>

#include <algorithm>
#include <cstdio>

#include "app/hook_event.h"
#include "engine/session.h"
#include "steps/steps.h"
#include "plan/planner.h"
#include "sysinfo/pci.h"

namespace gpuhook {

std::string json_str(std::string_view s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      case '\r': o += "\\r"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          o += b;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o + "\"";
}

int run_verb(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err) {
  const std::string& v = inv.verb;
  if (v == "doctor") return verb_doctor(app, inv, out, err);
  if (v == "groups") return verb_groups(app, inv, out, err);
  if (v == "ids") return verb_ids(app, inv, out, err);
  if (v == "check") return verb_check(app, inv, out, err);
  if (v == "setup") return verb_setup(app, inv, out, err);
  if (v == "plan") return verb_plan(app, inv, out, err);
  if (v == "status") return verb_status(app, inv, out, err);
  if (v == "restore") return verb_restore(app, inv, out, err);
  if (v == "log") return verb_log(app, inv, out, err);
  err << "gpuhook: unknown verb " << v << "\n";
  return 2;
}

namespace {

// Loads global config and the VM's profile for a CLI verb; prints errors; nullopt on failure.
std::optional<std::pair<GlobalConfig, Profile>> load_for_cli(AppContext& app, const std::string& vm, std::ostream& err,
                                                             int& rc) {
  if (auto why = vm_name_problem(vm); !why.empty()) {
    err << "gpuhook: refusing VM name: " << why << "\n";
    rc = 2;
    return std::nullopt;
  }
  ConfigErrors ge;
  auto g = load_global(app.host.fs, kGlobalConfig, &ge);
  if (!g) {
    for (const auto& l : ge.lines) err << l << "\n";
    rc = 1;
    return std::nullopt;
  }
  std::string path = profile_path(vm);
  if (!app.host.fs.exists(path)) {
    err << "gpuhook: VM " << vm << " has no profile (" << path << ")\n"
        << "  write one from the examples in " << kExamplesDir << " (README: Profile reference)\n";
    rc = 1;
    return std::nullopt;
  }
  ConfigErrors pe;
  auto p = load_profile(app.host.fs, path, g->timeouts, &pe);
  if (!p) {
    for (const auto& l : pe.lines) err << l << "\n";
    rc = 1;
    return std::nullopt;
  }
  return std::make_pair(*g, *p);
}

}  // namespace

int verb_plan(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err) {
  int rc = 0;
  const std::string& vm = inv.args[0];
  auto loaded = load_for_cli(app, vm, err, rc);
  if (!loaded) return rc;
  auto& [g, p] = *loaded;
  // --xml FILE: the domain, for what only it says (managed='no' hostdevs, huge pages, pinning, shmem).
  std::optional<DomainInfo> dom;
  if (!inv.xml_file.empty()) {
    std::ifstream in(inv.xml_file, std::ios::binary);
    if (!in) {
      err << "gpuhook: cannot read the domain XML file " << inv.xml_file << "\n  pass the domain XML: virsh dumpxml " << vm << " > FILE\n";
      return 1;
    }
    std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto d = parse_domain_xml(xml);
    if (!d) {
      err << "gpuhook: " << d.error().message() << "\n  pass the domain XML: virsh dumpxml " << vm << " > FILE\n";
      return 1;
    }
    dom = *d;
  }
  Plan plan = make_plan(app.host, p, dom ? &*dom : nullptr, vm);
  if (inv.json) {
    out << "{\"vm\":" << json_str(vm) << ",\"group\":" << plan.group << ",\"groups\":[";
    for (size_t i = 0; i < plan.groups.size(); ++i) out << (i ? "," : "") << plan.groups[i];
    out << "],\"devices\":[";
    for (size_t i = 0; i < plan.devices.size(); ++i) out << (i ? "," : "") << json_str(plan.devices[i]);
    out << "],\"refusals\":[";
    for (size_t i = 0; i < plan.refusals.size(); ++i)
      out << (i ? "," : "") << "{\"what\":" << json_str(plan.refusals[i].message())
          << ",\"hint\":" << json_str(plan.refusals[i].hint) << "}";
    out << "],\"notes\":[";
    for (size_t i = 0; i < plan.notes.size(); ++i) out << (i ? "," : "") << json_str(plan.notes[i]);
    out << "]";
    for (const char* ph : {"prepare", "start", "started"}) {
      out << ",\"" << ph << "\":[";
      auto& steps = phase_steps(plan, ph);
      for (size_t i = 0; i < steps.size(); ++i)
        out << (i ? "," : "") << "{\"kind\":" << json_str(steps[i]->kind())
            << ",\"description\":" << json_str(steps[i]->describe()) << "}";
      out << "]";
    }
    out << "}\n";
    return plan.refusals.empty() ? 0 : 1;
  }
  out << "Plan for VM " << vm << " (" << p.path << "), display mode " << to_string(p.mode) << "\n";
  if (plan.group >= 0) {
    out << (plan.groups.size() > 1 ? "IOMMU groups" : "IOMMU group");
    for (size_t i = 0; i < plan.groups.size(); ++i) out << (i ? ", " : " ") << plan.groups[i];
    if (plan.groups.empty()) out << " " << plan.group;
    out << "\n";
  }
  if (!plan.refusals.empty()) {
    out << "\nprepare would REFUSE, changing nothing:\n";
    for (const auto& r : plan.refusals) {
      out << "  - " << r.message() << "\n";
      if (!r.hint.empty()) out << "    what to do: " << r.hint << "\n";
    }
    return 1;
  }
  for (const char* ph : {"prepare", "start", "started"}) {
    auto& steps = phase_steps(plan, ph);
    out << "\n" << ph << ":" << (steps.empty() ? " nothing" : "") << "\n";
    int n = 0;
    for (const auto& s : steps) out << "  " << ++n << ". " << s->describe() << "\n";
  }
  out << "\nrelease: undo every journaled step, newest first\n";
  if (!plan.notes.empty()) {
    out << "\nnotes:\n";
    for (const auto& n : plan.notes) out << "  - " << n << "\n";
  }
  return 0;
}

int verb_status(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err) {
  ConfigErrors ge;
  auto gr = load_global(app.host.fs, kGlobalConfig, &ge);
  for (const auto& l : ge.lines) err << l << "\n";
  GlobalConfig g = gr ? *gr : GlobalConfig{};
  JournalStore store(app.host.fs, kStateDir);
  PciSysfs pci(app.host.fs);

  std::vector<std::string> vms;
  if (auto l = app.host.fs.list(kProfileDir); l)
    for (const auto& n : *l)
      if (n.size() > 5 && n.compare(n.size() - 5, 5, ".toml") == 0) vms.push_back(n.substr(0, n.size() - 5));
  for (const auto& v : store.vms())  // (".host" is the host's own journal, shown below)
    if (vm_name_problem(v).empty() && std::find(vms.begin(), vms.end(), v) == vms.end()) vms.push_back(v);
  // VMs whose last release found the host not back (Engine::report_path).
  if (auto l = app.host.fs.list(kStateDir); l)
    for (const auto& n : *l)
      if (n.size() > 8 && n.compare(n.size() - 8, 8, ".release") == 0) {
        std::string v = n.substr(0, n.size() - 8);
        if (vm_name_problem(v).empty() && std::find(vms.begin(), vms.end(), v) == vms.end()) vms.push_back(v);
      }
  std::sort(vms.begin(), vms.end());

  int problems = 0;
  struct Row {
    std::string vm, profile_gpu;
    bool journal = false;
    std::vector<std::pair<std::string, std::string>> devices;  // address, driver now
    std::vector<std::string> issues;
    std::vector<std::string> in_force;  // tuning and Looking Glass steps of the journal
    std::string busy;  // an event holds the VM's lock: not compared now
    std::vector<std::string> settled;  // journaled steps with nothing left to undo
  };
  std::vector<Row> rows;
  for (const auto& vm : vms) {
    Row r;
    r.vm = vm;
    if (app.host.fs.exists(profile_path(vm))) {
      ConfigErrors pe;
      auto p = load_profile(app.host.fs, profile_path(vm), g.timeouts, &pe);
      if (p) r.profile_gpu = p->gpu_address;
      else r.issues.push_back("profile invalid: " + (pe.lines.empty() ? std::string("?") : pe.lines[0]));
    } else if (store.exists(vm)) {
      r.issues.push_back("journal without a profile (removed while the VM ran?): its release or `gpuhook restore " + vm +
                         "` undoes it");
    }
    // A session of its own (VM lock only, no wait): a journal in the middle of an event is not
    // compared with the host, it is said to be busy.
    std::unique_ptr<Session> session;
    if (store.exists(vm)) {
      auto s = Session::open(app.host, vm, {"status", 0, false});
      if (!s) {
        r.journal = true;
        r.busy = s.error().message();
        rows.push_back(std::move(r));
        continue;
      }
      session = std::move(*s);
    }
    // What the last release found not back, until a clean release removes the report.
    if (auto rep = app.host.fs.read(Engine::report_path(vm)); rep) {
      std::string line;
      for (char c : *rep + "\n") {
        if (c != '\n') {
          line += c;
          continue;
        }
        if (!line.empty() && line[0] != '#') r.issues.push_back("after the last release, NOT BACK: " + line);
        line.clear();
      }
    }
    auto j = store.load(vm);
    if (j && !j->entries.empty()) {
      r.journal = true;
      for (const auto& e : j->entries)
        if (auto t = tuning_in_force(e.kind, e.fields); !t.empty()) r.in_force.push_back(t);
      for (const auto& e : j->entries)
        if (e.kind == "pci.vfio") {
          std::string a = e.fields.count("address") ? e.fields.at("address") : "";
          auto d = pci.device(a);
          r.devices.emplace_back(a, d ? (d->driver.empty() ? "none" : d->driver) : "missing");
        }
      Deadline d(app.host.clock, 5000);
      NullLog nl;
      StepContext ctx{app.host, nl, d, vm, g.timeouts, kStateDir};
      // A step whose undo has nothing left to do (undone already, or its object removed by the
      // kernel until reboot) is no inconsistency: `restore` could not change it. It is listed as
      // settled, and what verify says about it is left out.
      std::vector<std::string> settled_prefixes;
      for (const auto& e : j->entries)
        if (auto why = nothing_to_undo(ctx, e.kind, e.fields); !why.empty()) {
          r.settled.push_back("step " + std::to_string(e.seq) + " " + e.kind + ": nothing left to undo: " + why);
          settled_prefixes.push_back("step " + std::to_string(e.seq) + " ");
        }
      Engine engine(ctx, store, builtin_step_kinds());
      for (auto& diff : engine.verify()) {
        bool settled = false;
        for (const auto& sp : settled_prefixes) settled = settled || diff.rfind(sp, 0) == 0;
        if (!settled) r.issues.push_back(diff);
      }
      r.journal = r.settled.size() < j->entries.size() || !j->problems.empty();
    } else if (!j) {
      r.issues.push_back(j.error().message());
    }
    problems += static_cast<int>(r.issues.size());
    rows.push_back(std::move(r));
  }
  // Modules gpuhook loaded that outlived their VM: kept by the profile's choice when it started
  // ([host] unload_vfio = false), or while another VM's devices use them.
  std::vector<JournalEntry> host_modules;
  if (auto hj = store.load(".host"); hj) host_modules = hj->entries;
  auto hf = [](const JournalEntry& e, const char* k) { return e.fields.count(k) ? e.fields.at(k) : std::string(); };
  if (inv.json) {
    out << "{\"host_modules\":[";
    for (size_t i = 0; i < host_modules.size(); ++i)
      out << (i ? "," : "") << "{\"module\":" << json_str(hf(host_modules[i], "module"))
          << ",\"loaded_for\":" << json_str(hf(host_modules[i], "loaded_for"))
          << ",\"kept\":" << (hf(host_modules[i], "kept") == "1" ? "true" : "false") << "}";
    out << "],\"vms\":[";
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      out << (i ? "," : "") << "{\"vm\":" << json_str(r.vm) << ",\"gpu\":"
          << (r.profile_gpu.empty() ? "null" : json_str(r.profile_gpu)) << ",\"active\":" << (r.journal ? "true" : "false")
          << ",\"devices\":[";
      for (size_t k = 0; k < r.devices.size(); ++k)
        out << (k ? "," : "") << "{\"address\":" << json_str(r.devices[k].first)
            << ",\"driver\":" << json_str(r.devices[k].second) << "}";
      out << "],\"in_force\":[";
      for (size_t k = 0; k < r.in_force.size(); ++k) out << (k ? "," : "") << json_str(r.in_force[k]);
      out << "],\"issues\":[";
      for (size_t k = 0; k < r.issues.size(); ++k) out << (k ? "," : "") << json_str(r.issues[k]);
      out << "],\"settled\":[";
      for (size_t k = 0; k < r.settled.size(); ++k) out << (k ? "," : "") << json_str(r.settled[k]);
      out << "],\"busy\":" << (r.busy.empty() ? "null" : json_str(r.busy)) << "}";
    }
    out << "]}\n";
    return problems ? 1 : 0;
  }
  if (rows.empty()) out << "No VM has a profile in " << kProfileDir << ".\n";
  if (!host_modules.empty()) {
    out << "host: modules gpuhook loaded that outlived their VM:\n";
    for (const auto& e : host_modules)
      out << "  " << hf(e, "module") << " (loaded for VM " << hf(e, "loaded_for") << "): "
          << (hf(e, "kept") == "1" ? "kept loaded ([host] unload_vfio = false); `gpuhook restore --all-modules` unloads it"
                                   : "kept while another VM uses it; the last release unloads it")
          << "\n";
  }
  for (const auto& r : rows) {
    out << r.vm << ": " << (r.journal ? "holds the GPU (journal in " + store.path(r.vm) + ")" : "not active")
        << (r.profile_gpu.empty() ? "" : ", profile GPU " + r.profile_gpu) << "\n";
    if (!r.busy.empty()) out << "  an event is running, not compared now: " << r.busy << "\n";
    for (const auto& [a, d] : r.devices) out << "  " << a << " now on " << d << "\n";
    for (const auto& t : r.in_force) out << "  in force: " << t << "\n";
    for (const auto& i : r.issues) out << "  ! " << i << "\n";
    for (const auto& i : r.settled) out << "  - " << i << "\n";
    if (!r.journal && !r.settled.empty())
      out << "  its journal " << store.path(r.vm) << " has nothing left to undo; `gpuhook restore " << r.vm << "` removes it (nothing on the host changes)\n";
  }
  if (problems)
    out << "\n" << problems << " inconsistency(ies). A VM with a journal: `gpuhook restore <vm>` undoes it. "
        << "NOT BACK after a release: each line says what to run; the next clean release clears it.\n";
  return problems ? 1 : 0;
}

// The processes that hold /dev/vfio/N of the groups the journal bound: a running VM's QEMU.
static std::vector<Holder> vfio_holders(AppContext& app, const Journal& j) {
  std::vector<std::pair<std::string, std::string>> nodes;
  for (const auto& a : Session::journal_devices(j)) {
    std::string g = link_name(app.host.fs, std::string(kPciDevices) + "/" + a + "/iommu_group");
    if (g.empty() || g.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string node = "/dev/vfio/" + g;
    bool dup = false;
    for (const auto& [n, _] : nodes) dup |= n == node;
    if (!dup) nodes.emplace_back(node, a);
  }
  return find_holders(app.host.fs, nodes, app.host.signals.self_pid());
}

// restore --all-modules without a VM: the modules gpuhook kept loaded after their VMs.
int restore_host_modules(AppContext& app, std::ostream& out, std::ostream& err) {
  ConfigErrors ge;
  auto gr = load_global(app.host.fs, kGlobalConfig, &ge);
  for (const auto& l : ge.lines) err << l << "\n";
  GlobalConfig g = gr ? *gr : GlobalConfig{};
  auto session = Session::open_host(app.host, {"restore", g.timeouts.event_ms, true});
  if (!session) {
    err << "gpuhook: cannot unload the modules gpuhook kept: " << session.error().message() << "\n"
        << "  what to do: " << session.error().hint << "\n";
    return 1;
  }
  std::string problem;
  auto file_log = app.open_log(g, "[host restore " + std::to_string(app.host.signals.self_pid()) + "] ", &problem);
  Deadline d(app.host.clock, g.timeouts.event_ms);
  StepContext ctx{app.host, *file_log, d, "", g.timeouts, kStateDir};
  JournalStore& store = (*session)->store();
  if (!store.exists(".host")) {
    out << "gpuhook kept no module loaded (no " << store.path(".host") << ").\n";
    return 0;
  }
  auto s = release_host_modules(ctx, true);
  std::vector<JournalEntry> left;
  if (auto hj = store.load(".host"); hj) left = hj->entries;
  for (const auto& e : left) {
    std::string m = e.fields.count("module") ? e.fields.at("module") : "";
    out << "module " << m << " stays loaded: a device uses it (`gpuhook status`)\n";
  }
  if (!s) {
    err << "gpuhook: " << s.error().message() << "\n";
    if (!s.error().hint.empty()) err << "  what to do: " << s.error().hint << "\n";
    return 1;
  }
  if (left.empty()) out << "the modules gpuhook loaded and kept are unloaded.\n";
  return 0;
}

int verb_restore(AppContext& app, const Invocation& inv, std::ostream& out, std::ostream& err) {
  if (inv.args.empty()) return restore_host_modules(app, out, err);
  const std::string& vm = inv.args[0];
  if (auto why = vm_name_problem(vm); !why.empty()) {
    err << "gpuhook: refusing VM name: " << why << "\n";
    return 2;
  }
  // The global config is read for the log only: the journal, not a file a person edits, says
  // what to undo and how long to wait.
  ConfigErrors ge;
  auto gr = load_global(app.host.fs, kGlobalConfig, &ge);
  for (const auto& l : ge.lines) err << l << "\n";
  GlobalConfig g = gr ? *gr : GlobalConfig{};
  JournalStore probe(app.host.fs, kStateDir);
  if (!probe.exists(vm)) {
    out << "VM " << vm << " has no journal: nothing to restore (no " << probe.path(vm) << ").\n";
    return 0;
  }
  // The same session as the hook's: the host lock, the VM's, its devices'.
  auto session = Session::open(app.host, vm, {"restore", g.timeouts.event_ms, true});
  if (!session) {
    err << "gpuhook: cannot restore " << vm << ": " << session.error().message() << "\n"
        << "  what to do: " << session.error().hint << "\n";
    return 1;
  }
  JournalStore& store = (*session)->store();
  Timeouts t;
  if (auto j = store.load(vm); j) {
    t = timeouts_from(j->timeouts, t);
    (void)(*session)->lock_devices(Session::journal_devices(*j));
    auto holders = vfio_holders(app, *j);
    if (!holders.empty()) {
      std::string who;
      for (const auto& h : holders)
        who += (who.empty() ? "" : ", ") + h.name + " (pid " + std::to_string(h.pid) + ") holds " + h.node;
      if (!inv.force) {
        err << "gpuhook: refusing to restore " << vm << ": the VM still uses its GPU: " << who << "\n"
            << "  why: restoring would unbind the devices from vfio-pci under that process (the VM crashes or hangs)\n"
            << "  what to do: shut the VM down (`virsh shutdown " << vm << "`); libvirt's release then restores the host.\n"
            << "  `gpuhook restore " << vm << " --force` would restore now anyway, under that process.\n";
        return 1;
      }
      err << "gpuhook: --force: restoring although " << who << "\n";
    }
  }
  std::string problem;
  auto file_log = app.open_log(g, "[" + vm + " restore " + std::to_string(app.host.signals.self_pid()) + "] ", &problem);
  // Tell the person as well as the log.
  struct Tee : Log {
    Log& a;
    std::ostream& o;
    Tee(Log& l, std::ostream& s) : a(l), o(s) {}
    void write(Level lvl, std::string_view m) override {
      a.write(lvl, m);
      if (lvl >= Level::info) o << m << "\n";
    }
  } tee(*file_log, out);
  Deadline d(app.host.clock, t.event_ms);
  StepContext ctx{app.host, tee, d, vm, t, kStateDir};
  Engine engine(ctx, store, builtin_step_kinds());
  RunOutcome o = engine.release();
  (void)release_host_modules(ctx, inv.all_modules);
  if (o.ok) {
    out << "VM " << vm << ": host restored" << (o.gone.empty() ? "" : " (what cannot come back until reboot is logged above)") << ".\n";
    return 0;
  }
  err << "gpuhook: restore of " << vm << " incomplete: " << o.error.message() << "\n";
  if (!o.error.hint.empty()) err << "  what to do: " << o.error.hint << "\n";
  return 1;
}

}  // namespace gpuhook

#include "engine/session.h"

#include <algorithm>

#include "profile/profile.h"
#include "sysinfo/pci.h"

namespace gpuhook {

namespace {
std::string locks_dir() { return std::string(kStateDir) + "/locks"; }
}  // namespace

bool is_managed(Fs& fs, const std::string& vm, bool* has_profile_file) {
  if (has_profile_file) *has_profile_file = false;
  if (!vm_name_problem(vm).empty()) return false;
  if (fs.stat(profile_path(vm), false).type != FileType::missing) {
    if (has_profile_file) *has_profile_file = true;
    return true;
  }
  return fs.stat(std::string(kStateDir) + "/" + vm + ".journal", false).type != FileType::missing;
}

Session::Session(Host& host, std::string vm, Options o)
    : host_(host), vm_(std::move(vm)), opts_(std::move(o)), store_(host.fs, kStateDir), started_(host.clock.now_ms()) {}

Status Session::take(const std::string& name, const Deadline& d) {
  const std::string path = locks_dir() + "/" + name + ".lock";
  const std::string owner = locks_dir() + "/" + name + ".owner";
  auto l = host_.locker.lock(path, d);
  if (!l) {
    Error e = l.error();
    std::string who = trim(read_attr(host_.fs, owner));
    e.what = std::string(name == "host" ? "gpuhook's host lock" : "the lock " + name) + " is held by another gpuhook" +
             (who.empty() ? "" : " (pid " + who + ")");
    e.why = "it was not released within " + std::to_string(opts_.lock_wait_ms) + " ms";
    e.hint = "wait for that event to end (`gpuhook status`); a hook that hangs is ended by its watchdog";
    e.id = "locked";
    return e;
  }
  held_.push_back(std::move(*l));
  // Who holds it, for the next one who waits: best effort, never a reason to fail.
  (void)host_.fs.write_atomic(owner, std::to_string(host_.signals.self_pid()) + " " + opts_.op + " " + vm_ + "\n", 0600);
  return Status::success();
}

Result<std::unique_ptr<Session>> Session::open(Host& host, const std::string& vm, const Options& o) {
  if (auto why = vm_name_problem(vm); !why.empty()) {
    Error e;
    e.what = "refusing VM name '" + escape_value(vm.substr(0, 80)) + "'";
    e.why = why;
    return e;
  }
  std::unique_ptr<Session> s(new Session(host, vm, o));
  if (auto st = host.fs.make_dirs(locks_dir(), 0700); !st) return st.error();
  Deadline d(host.clock, o.lock_wait_ms);
  if (o.host_lock)
    if (auto st = s->take("host", d); !st) return st.error();
  if (auto st = s->take("vm." + vm, d); !st) return st.error();
  return s;
}

Result<std::unique_ptr<Session>> Session::open_host(Host& host, const Options& o) {
  std::unique_ptr<Session> s(new Session(host, "", o));
  if (auto st = host.fs.make_dirs(locks_dir(), 0700); !st) return st.error();
  Deadline d(host.clock, o.lock_wait_ms);
  if (auto st = s->take("host", d); !st) return st.error();
  return s;
}

Status Session::lock_devices(std::vector<std::string> addresses) {
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  Millis left = opts_.lock_wait_ms - (host_.clock.now_ms() - started_);
  Deadline d(host_.clock, left > 0 ? left : 0);
  for (const auto& a : addresses) {
    if (!PciAddress::parse(a)) continue;  // never a lock path built from a bad address
    if (auto st = take(a, d); !st) {
      Error e = st.error();
      e.what = a + " is busy: another gpuhook event holds it" + (e.what.find("(pid") != std::string::npos
                                                                      ? e.what.substr(e.what.find(" (pid"))
                                                                      : std::string());
      return e;
    }
  }
  return Status::success();
}

std::vector<std::string> Session::journal_devices(const Journal& j) {
  std::vector<std::string> v;
  for (const auto& e : j.entries)
    if (e.kind == "claim" || e.kind == "pci.vfio") {
      auto it = e.fields.find("address");
      if (it != e.fields.end() && PciAddress::parse(it->second) && std::find(v.begin(), v.end(), it->second) == v.end())
        v.push_back(it->second);
    }
  return v;
}

}  // namespace gpuhook

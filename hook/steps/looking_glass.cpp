// Looking Glass (issue 16; its shared memory is also issue 13's tuning step):
//   shm.create  prepare: /dev/shm/<name> of the domain's <shmem>, with exactly its size, owned by
//               the desktop user and QEMU's group, 0660, created exclusively and never through a
//               symlink; undo removes it, only when this step created it.
//   lg.client   started: the client in the user's graphical session, not as root: a transient
//               unit of the user's systemd manager (systemd-run --user --machine=USER@.host, which
//               needs the system D-Bus and the user's bus socket), or without them a detached
//               process (own session, stdio on /dev/null) tracked by pid and start time in
//               /run/gpuhook/<vm>.lg-client. Undo: SIGTERM, bounded wait, SIGKILL.
#include <csignal>

#include "engine/engine.h"
#include "steps/steps.h"
#include "sysinfo/tuning_facts.h"

namespace gpuhook {
namespace {

std::string octal(unsigned m) {
  char b[8];
  std::snprintf(b, sizeof b, "%04o", m & 07777);
  return b;
}

Error err(std::string what, std::string why, std::string hint) {
  Error e;
  e.what = std::move(what);
  e.why = std::move(why);
  e.hint = std::move(hint);
  return e;
}

// A path the undo may remove: /dev/shm/<one name>, nothing else whatever the journal says.
bool shm_path_ok(const std::string& p) {
  if (p.rfind("/dev/shm/", 0) != 0) return false;
  std::string n = p.substr(9);
  if (n.empty() || n.size() > 255 || n[0] == '.' || n[0] == '-') return false;
  for (unsigned char c : n)
    if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.')) return false;
  return true;
}

class ShmCreate : public Step {
 public:
  ShmCreate(std::string path, long long size, std::string user, std::string group)
      : path_(std::move(path)), size_(size), user_(std::move(user)), group_(std::move(group)) {}
  std::string kind() const override { return "shm.create"; }
  std::string describe() const override {
    return "create " + path_ + " (" + std::to_string(size_ >> 20) + " MiB, " + user_ + ":" + group_ + " 0660)";
  }
  Result<Record> record(StepContext& ctx) override {
    Fs& fs = ctx.host.fs;
    auto u = lookup_user(fs, user_);
    if (!u) return err("cannot prepare " + path_ + ": user '" + user_ + "' does not exist", "/etc/passwd has no such user",
                       "fix [display.looking_glass] user in the profile");
    auto g = lookup_group(fs, group_);
    if (!g) return err("cannot prepare " + path_ + ": group '" + group_ + "' does not exist",
                       "QEMU's group (qemu.conf group=, else kvm) is not in /etc/group",
                       "set group = \"...\" in /etc/libvirt/qemu.conf to the group QEMU runs as");
    if (!shm_path_ok(path_)) return err("refusing shared memory path " + path_, "not a plain name under /dev/shm", "fix <shmem name=...>");
    Record r{{"path", path_}, {"size", std::to_string(size_)}, {"uid", std::to_string(u->uid)},
             {"gid", std::to_string(*g)}, {"mode", "0660"}, {"user", user_}};
    FileInfo fi = fs.stat(path_, false);
    if (fi.type == FileType::missing) {
      r["existed"] = "0";
      return r;
    }
    if (fi.type == FileType::regular && fi.size == size_ && fi.uid == u->uid && fi.gid == *g && (fi.mode & 07777) == 0660) {
      r["existed"] = "1";  // exactly right already (made by hand or tmpfiles.d): used, never removed
      return r;
    }
    std::string what = fi.type == FileType::symlink ? "a symbolic link"
                       : fi.type != FileType::regular ? "not a regular file"
                                                      : "of " + std::to_string(fi.size) + " bytes, uid " + std::to_string(fi.uid) +
                                                            ", gid " + std::to_string(fi.gid) + ", mode " + octal(fi.mode);
    return err(path_ + " already exists and is " + what,
               "wanted " + std::to_string(size_) + " bytes, " + user_ + ":" + group_ + " (" + std::to_string(u->uid) + ":" +
                   std::to_string(*g) + "), mode 0660; gpuhook never writes through or over a file it did not make",
               "if no VM uses it: rm " + path_ + " (or give it exactly that size, owner and mode)");
  }
  Status apply(StepContext& ctx, const Record& rec) override {
    if (field(rec, "existed") == "1") return Status::success();
    auto st = ctx.host.fs.create_sized(path_, size_, 0660, static_cast<unsigned>(std::stoul(field(rec, "uid"))),
                                       static_cast<unsigned>(std::stoul(field(rec, "gid"))));
    if (!st) {
      Error e = st.error();
      e.hint = "check that /dev/shm is a tmpfs with " + std::to_string(size_ >> 20) + " MiB free (df /dev/shm)";
      return e;
    }
    return Status::success();
  }

 private:
  std::string path_;
  long long size_;
  std::string user_, group_;
};

Status undo_shm(StepContext& ctx, const Record& rec) {
  std::string path = field(rec, "path");
  if (field(rec, "existed") != "0") return Status::success();
  if (!shm_path_ok(path))
    return err("refusing the journal record: shared memory path '" + escape_value(path.substr(0, 80)) + "'",
               "a journal written by gpuhook only names /dev/shm/<name>", "remove the file by hand, then the journal");
  FileInfo fi = ctx.host.fs.stat(path, false);
  if (fi.type == FileType::missing) return Status::success();
  if (fi.type != FileType::regular)
    return err("not removing " + path, "it is no longer a regular file (someone replaced it)", "look at it and remove it by hand");
  return ctx.host.fs.remove(path);
}

std::string verify_shm(StepContext& ctx, const Record& rec) {
  std::string path = field(rec, "path");
  if (shm_path_ok(path) && ctx.host.fs.stat(path, false).type == FileType::missing) return path + " is gone";
  return "";
}

std::string restored_shm(StepContext& ctx, const Record& rec) {
  std::string path = field(rec, "path");
  if (field(rec, "existed") == "0" && shm_path_ok(path) && ctx.host.fs.stat(path, false).type != FileType::missing)
    return path + " is still there: rm " + path;
  return "";
}

// ---- the client ----

std::string unit_for(const std::string& vm) {
  std::string u = "gpuhook-lg-";
  for (unsigned char c : vm) u += (std::isalnum(c) || c == '-' || c == '_') ? static_cast<char>(c) : '_';
  return u.substr(0, 200) + ".service";
}

std::string pidfile_for(const std::string& vm) { return std::string(kStateDir) + "/" + vm + ".lg-client"; }

// /proc/<pid>/stat: alive (not a zombie) with this start time.
bool same_process_alive(Fs& fs, int pid, const std::string& start) {
  auto s = fs.read("/proc/" + std::to_string(pid) + "/stat");
  if (!s) return false;
  auto rp = s->rfind(')');
  if (rp == std::string::npos || rp + 2 >= s->size()) return false;
  char state = (*s)[rp + 2];
  if (state == 'Z' || state == 'X') return false;
  return process_start_time(fs, pid) == start;
}

class LgClient : public Step {
 public:
  LgClient(std::string user, std::vector<std::string> argv) : user_(std::move(user)), argv_(std::move(argv)) {}
  std::string kind() const override { return "lg.client"; }
  std::string describe() const override { return "start " + argv_.front() + " as " + user_ + " in their session"; }
  Result<Record> record(StepContext& ctx) override {
    Fs& fs = ctx.host.fs;
    auto u = lookup_user(fs, user_);
    if (!u) return err("cannot start the Looking Glass client: user '" + user_ + "' does not exist", "", "fix [display.looking_glass] user");
    if (u->uid == 0)
      return err("refusing to start the Looking Glass client as " + user_ + " (uid 0)", "it runs in a desktop user's session, never as root",
                 "name the desktop user in [display.looking_glass] user");
    Record r{{"user", user_}, {"uid", std::to_string(u->uid)}};
    put_argv(r, "client", argv_);
    std::string rt = "/run/user/" + std::to_string(u->uid);
    // `systemd-run --user --machine=USER@.host` reaches the user's manager through D-Bus only
    // (systemd 252, src/libsystemd/sd-bus/sd-bus.c bus_set_address_machine(): it runs
    // `systemd-run -M .host -PGq --wait -pUser=USER -pPAMName=login systemd-stdio-bridge
    // -punix:path=${XDG_RUNTIME_DIR}/bus` over the system bus). So it needs the system bus, and
    // the user's bus socket, which dbus-user-session (or dbus-broker) gives the manager; the
    // manager's private socket alone is not enough (tests/desktop d10, parts c and d).
    bool manager = systemd_running(fs) && fs.exists(rt + "/systemd/private");
    bool buses = fs.exists(rt + "/bus") && fs.exists("/run/dbus/system_bus_socket");
    if (manager && !buses)
      ctx.log.info(user_ + "'s service manager runs but " +
                   (fs.exists("/run/dbus/system_bus_socket") ? rt + "/bus (their D-Bus session bus: dbus-user-session) is missing"
                                                             : std::string("the system D-Bus (/run/dbus/system_bus_socket) is missing")) +
                   ": systemd-run --user --machine cannot reach it, so the client starts detached");
    if (manager && buses) {
      r["how"] = "unit";
      r["unit"] = unit_for(ctx.vm);
    } else {
      r["how"] = "pid";
      r["pidfile"] = pidfile_for(ctx.vm);
    }
    return r;
  }
  Status apply(StepContext& ctx, const Record& rec) override {
    Fs& fs = ctx.host.fs;
    if (field(rec, "how") == "unit") {
      std::string unit = field(rec, "unit");
      std::vector<std::string> argv = {"systemd-run", "--user", "--machine=" + user_ + "@.host", "--unit=" + unit,
                                       "--collect", "--quiet", "--description=Looking Glass client for VM " + ctx.vm, "--"};
      argv.insert(argv.end(), argv_.begin(), argv_.end());
      // A unit start (a PAM session, the user's bus, the start job): [timeouts] service.
      auto r = run_checked(ctx, argv, ctx.timeouts.service_ms, "cannot start the Looking Glass client in " + user_ + "'s session");
      if (!r) return r.error();
      Deadline d = ctx.deadline.sub(1000);
      wait_until(d, [] { return false; });
      Deadline dd = ctx.deadline.sub(ctx.timeouts.command_ms);
      auto st = ctx.host.runner.run({"systemctl", "--user", "--machine=" + user_ + "@.host", "is-active", unit}, dd);
      std::string state = st ? trim(st->out) : "unknown";
      if (state != "active" && state != "activating")
        ctx.log.warn("the Looking Glass client (" + unit + ") is " + state + " a second after its start: see `journalctl --user -M " +
                     user_ + "@ -u " + unit + "`; the VM runs on");
      return Status::success();
    }
    auto u = lookup_user(fs, user_);
    if (!u) return err("cannot start the Looking Glass client: user '" + user_ + "' does not exist", "", "fix [display.looking_glass] user");
    DetachedSpec spec;
    spec.argv = argv_;
    spec.uid = u->uid;
    spec.gid = u->gid;
    spec.groups = u->groups;
    spec.cwd = u->home.empty() ? "/" : u->home;
    spec.env = {"HOME=" + spec.cwd, "USER=" + user_, "LOGNAME=" + user_, "SHELL=" + (u->shell.empty() ? "/bin/sh" : u->shell),
                "PATH=/usr/local/bin:/usr/bin:/bin"};
    int from = 0;
    auto session = session_environment(fs, u->uid, &from);
    bool has_rt = false;
    for (const auto& kv : session) has_rt |= kv.rfind("XDG_RUNTIME_DIR=", 0) == 0;
    std::string rt = "/run/user/" + std::to_string(u->uid);
    if (!has_rt && fs.is_dir(rt)) session.push_back("XDG_RUNTIME_DIR=" + rt);
    spec.env.insert(spec.env.end(), session.begin(), session.end());
    if (from) ctx.log.info("the client gets the session environment of pid " + std::to_string(from) + " of " + user_);
    else ctx.log.warn(user_ + " has no graphical session now (no process of theirs has WAYLAND_DISPLAY or DISPLAY): the client starts without one");
    auto pid = ctx.host.runner.spawn_detached(spec);
    if (!pid) {
      Error e = pid.error();
      e.hint = "check [display.looking_glass] client: `ls -l " + argv_.front() + "`";
      return e;
    }
    std::string start = process_start_time(fs, *pid);
    auto w = fs.write_atomic(field(rec, "pidfile"), std::to_string(*pid) + " " + start + "\n", 0600);
    if (!w) {
      (void)ctx.host.signals.signal_process(*pid, start, SIGKILL);
      return w.error();
    }
    // A client that dies at once is reported, not a reason to stop the VM.
    Deadline d = ctx.deadline.sub(500);
    if (wait_until(d, [&] { return !same_process_alive(fs, *pid, start); }))
      ctx.log.warn("the Looking Glass client (pid " + std::to_string(*pid) + ") exited at once: run `" + format_argv(argv_) +
                   "` as " + user_ + " in their session to see why; the VM runs on");
    else
      ctx.log.info("Looking Glass client running as " + user_ + ", pid " + std::to_string(*pid));
    return Status::success();
  }

 private:
  std::string user_;
  std::vector<std::string> argv_;
};

Status stop_unit(StepContext& ctx, const Record& rec) {
  std::string unit = field(rec, "unit"), user = field(rec, "user");
  if (auto s = check_journal_name(rec, "unit"); !s) return s;
  if (auto s = check_journal_name(rec, "user"); !s) return s;
  std::string machine = "--machine=" + user + "@.host";
  // Only a clear "inactive"/"failed" skips the stop; when systemctl cannot tell, stop anyway.
  Deadline d = ctx.deadline.sub(ctx.timeouts.command_ms);
  auto st = ctx.host.runner.run({"systemctl", "--user", machine, "is-active", unit}, d);
  std::string state = st ? trim(st->out) : "";
  if (state == "inactive" || state == "failed") return Status::success();
  Deadline ds = ctx.deadline.sub(ctx.timeouts.terminate_ms + ctx.timeouts.command_ms);
  auto r = ctx.host.runner.run({"systemctl", "--user", machine, "stop", unit}, ds);
  if (r && (r->success() || (!r->timed_out && !r->signaled && r->exit_code == 5))) return Status::success();  // 5: not loaded
  Error e;
  e.what = "cannot stop the Looking Glass client " + unit;
  e.why = r ? "systemctl --user stop: " + r->summary() : r.error().message();
  e.hint = "systemctl --user -M " + user + "@ stop " + unit;
  return e;
}

Status stop_pid(StepContext& ctx, const Record& rec) {
  Fs& fs = ctx.host.fs;
  std::string pf = field(rec, "pidfile");
  std::string want = std::string(kStateDir) + "/";
  if (pf.rfind(want, 0) != 0 || pf.find('/', want.size()) != std::string::npos || pf.size() == want.size() ||
      pf[want.size()] == '.')
    return err("refusing the journal record: pidfile '" + escape_value(pf.substr(0, 80)) + "'", "not a file of " + want,
               "stop the client by hand, then remove the journal");
  auto txt = fs.read(pf);
  if (!txt) return Status::success();  // never started, or already stopped
  int pid = 0;
  char start[32] = {0};
  if (std::sscanf(txt->c_str(), "%d %31s", &pid, start) != 2 || pid <= 1) return fs.remove(pf);
  // Signalled only as that pid with that start time (Signals::signal_process: a pidfd on the
  // real host), never a process that reused the pid.
  if (same_process_alive(fs, pid, start)) {
    (void)ctx.host.signals.signal_process(pid, start, SIGTERM);
    Deadline d = ctx.deadline.sub(ctx.timeouts.terminate_ms);
    if (!wait_until(d, [&] { return !same_process_alive(fs, pid, start); })) {
      (void)ctx.host.signals.signal_process(pid, start, SIGKILL);
      Deadline k = ctx.deadline.sub(2000);
      if (!wait_until(k, [&] { return !same_process_alive(fs, pid, start); }))
        return err("the Looking Glass client (pid " + std::to_string(pid) + ") survives SIGKILL", "", "kill -9 " + std::to_string(pid));
    }
  }
  return fs.remove(pf);
}

Status undo_client(StepContext& ctx, const Record& rec) {
  return field(rec, "how") == "unit" ? stop_unit(ctx, rec) : stop_pid(ctx, rec);
}

std::string restored_client(StepContext& ctx, const Record& rec) {
  if (field(rec, "how") != "pid") return "";
  auto txt = ctx.host.fs.read(field(rec, "pidfile"));
  if (!txt) return "";
  return "the Looking Glass client's pid file " + field(rec, "pidfile") + " is still there";
}

}  // namespace

std::unique_ptr<Step> make_shm_create(const std::string& path, long long size, const std::string& user, const std::string& group) {
  return std::make_unique<ShmCreate>(path, size, user, group);
}
std::unique_ptr<Step> make_lg_client(const std::string& user, const std::vector<std::string>& argv) {
  return std::make_unique<LgClient>(user, argv);
}
StepKindInfo shm_kind() { return {undo_shm, verify_shm, restored_shm}; }
StepKindInfo lg_client_kind() { return {undo_client, {}, restored_client}; }

}  // namespace gpuhook

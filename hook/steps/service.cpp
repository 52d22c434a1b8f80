// service.stop: a systemd unit stopped for the VM's lifetime and started again on release only if
// it was running before. "Stopped" means `systemctl is-active` no longer says active/deactivating:
// a state, polled with a bound, never a sleep.
#include "steps/steps.h"

namespace gpuhook {
namespace {

// `systemctl is-active` prints the state on stdout (exit 0 only for "active"); when it cannot
// tell (no bus, timeout) stdout is empty: "unknown", never taken for "inactive".
std::string unit_state(StepContext& ctx, const std::string& unit, std::string* why = nullptr) {
  Deadline d = ctx.deadline.sub(ctx.timeouts.command_ms);
  auto r = ctx.host.runner.run({"systemctl", "is-active", unit}, d);
  if (!r) {
    if (why) *why = r.error().message();
    return "unknown";
  }
  std::string s = trim(r->out);
  if (s.empty() || r->timed_out || r->signaled) {
    if (why) *why = "systemctl is-active " + unit + ": " + r->summary();
    return "unknown";
  }
  return s.substr(0, s.find('\n'));
}

bool is_running(const std::string& state) {
  return state == "active" || state == "activating" || state == "reloading" || state == "deactivating" ||
         state == "refreshing";
}

class ServiceStop : public Step {
 public:
  explicit ServiceStop(std::string u) : unit_(std::move(u)) {}
  std::string kind() const override { return "service.stop"; }
  std::string describe() const override { return "stop " + unit_; }
  Result<Record> record(StepContext& ctx) override {
    std::string why;
    std::string st = unit_state(ctx, unit_, &why);
    if (st == "unknown") {
      Error e;
      e.what = "cannot tell whether " + unit_ + " is running";
      e.why = why;
      e.hint = "check `systemctl status " + unit_ + "`; gpuhook stops only what it can start again";
      return e;
    }
    return Record{{"unit", unit_}, {"was_active", is_running(st) ? "1" : "0"}, {"state", st}};
  }
  Status apply(StepContext& ctx, const Record& rec) override {
    if (field(rec, "was_active") != "1") return Status::success();
    auto r = run_checked(ctx, {"systemctl", "stop", unit_}, ctx.timeouts.service_ms, "cannot stop " + unit_);
    if (!r) return r.error();
    Deadline d = ctx.deadline.sub(ctx.timeouts.service_ms);
    if (!wait_until(d, [&] { return !is_running(unit_state(ctx, unit_)); })) {
      Error e;
      e.what = unit_ + " is still running after `systemctl stop`";
      e.hint = "see `systemctl status " + unit_ + "`; raise [timeouts] service if it stops slowly";
      e.timed_out = true;
      return e;
    }
    return Status::success();
  }

 private:
  std::string unit_;
};

Status undo_service_stop(StepContext& ctx, const Record& rec) {
  std::string unit = field(rec, "unit");
  if (field(rec, "was_active") != "1" || unit.empty()) return Status::success();
  if (auto s = check_journal_name(rec, "unit"); !s) return s;
  if (is_running(unit_state(ctx, unit))) return Status::success();
  auto r = run_checked(ctx, {"systemctl", "start", unit}, ctx.timeouts.service_ms, "cannot start " + unit + " again");
  if (!r) {
    Error e = r.error();
    e.hint = "start it by hand: systemctl start " + unit + "; see journalctl -u " + unit;
    return e;
  }
  return Status::success();
}

std::string verify_service_stop(StepContext& ctx, const Record& rec) {
  std::string unit = field(rec, "unit");
  if (field(rec, "was_active") == "1" && is_running(unit_state(ctx, unit))) return unit + " is running again";
  return "";
}

// After release: a unit that ran before runs again, and its main process is alive a moment
// after it says active (a display server that dies on start is "active" for an instant).
std::string restored_service(StepContext& ctx, const Record& rec) {
  std::string unit = field(rec, "unit");
  if (field(rec, "was_active") != "1" || unit.empty() || !check_journal_name(rec, "unit")) return "";
  Deadline d = ctx.deadline.sub(ctx.timeouts.service_ms);
  auto main_pid = [&]() -> int {
    Deadline dd = ctx.deadline.sub(ctx.timeouts.command_ms);
    auto r = ctx.host.runner.run({"systemctl", "show", "-p", "MainPID", "--value", unit}, dd);
    if (!r || !r->success()) return -1;  // cannot tell: not counted against it
    std::string v = trim(r->out);
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 9) return -1;
    return std::stoi(v);
  };
  auto up = [&] {
    if (!is_running(unit_state(ctx, unit))) return false;
    int pid = main_pid();
    return pid != 0 && (pid < 0 || ctx.host.fs.exists("/proc/" + std::to_string(pid)));
  };
  std::string hint = ": `systemctl status " + unit + "`, `journalctl -u " + unit + "`; `systemctl start " + unit + "`";
  if (!wait_until(d, up)) {
    std::string st = unit_state(ctx, unit);
    if (is_running(st)) return unit + " is " + st + " but its main process is gone" + hint;
    return unit + " is not running again (" + st + ")" + hint;
  }
  // Still up a moment later (a bounded second look, not a wait for a race).
  Deadline settle = ctx.deadline.sub(300);
  wait_until(settle, [] { return false; });
  if (!up()) return unit + " started but its main process did not stay up" + hint;
  return "";
}

}  // namespace

std::string service_stop_nothing_left(StepContext& ctx, const Record& rec) {
  std::string unit = field(rec, "unit");
  if (field(rec, "was_active") != "1") return "the unit was not running before";
  if (!check_journal_name(rec, "unit")) return "";
  if (is_running(unit_state(ctx, unit))) return unit + " is running again";
  return "";
}

std::unique_ptr<Step> make_service_stop(const std::string& unit) { return std::make_unique<ServiceStop>(unit); }
StepKindInfo service_stop_kind() { return {undo_service_stop, verify_service_stop, restored_service}; }

}  // namespace gpuhook

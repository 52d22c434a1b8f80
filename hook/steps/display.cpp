// Display switches: vga_switcheroo (mux.switcheroo), ACPI MXDS through acpi_call (mux.acpi),
// DDC/CI monitor input (ddc.input), and commands from the profile (command).
#include "steps/steps.h"

namespace gpuhook {
namespace {

constexpr const char* kSwitcheroo = "/sys/kernel/debug/vgaswitcheroo/switch";
constexpr const char* kAcpiCall = "/proc/acpi/call";

// vga_switcheroo: "MDIS" switches the mux to the discrete GPU, "MIGD" to the integrated one. These
// mux-only commands must be given while both GPU drivers are registered: MDIS before the dGPU's
// driver is unbound, MIGD after it is back (switcheroo disables itself when a client unregisters).
class Switcheroo : public Step {
 public:
  std::string kind() const override { return "mux.switcheroo"; }
  std::string describe() const override { return "switch the panel to the dGPU (vga_switcheroo MDIS)"; }
  Result<Record> record(StepContext& ctx) override {
    auto r = ctx.host.fs.read(kSwitcheroo);
    if (!r) {
      Error e = r.error();
      e.what = "vga_switcheroo is not available";
      e.hint = "mount debugfs and check that both GPU drivers registered with vga_switcheroo; "
               "`gpuhook doctor` lists the MUX switches this machine has";
      return e;
    }
    std::string state = *r;
    for (auto& c : state)
      if (c == '\n') c = ';';
    return Record{{"state", state}};
  }
  Status apply(StepContext& ctx, const Record&) override {
    return ctx.host.fs.write_guarded(kSwitcheroo, "MDIS", ctx.deadline.sub(ctx.timeouts.unbind_ms));
  }
};

Status undo_switcheroo(StepContext& ctx, const Record&) {
  if (!ctx.host.fs.exists(kSwitcheroo)) {
    Error e;
    e.what = "cannot switch the panel back to the iGPU: vga_switcheroo is gone";
    e.hint = "the panel returns to the iGPU at the next reboot";
    return e;
  }
  return ctx.host.fs.write_guarded(kSwitcheroo, "MIGD", ctx.deadline.sub(ctx.timeouts.unbind_ms));
}

// ACPI dynamic mux: \<dgpu>.MXDS(1) hands the panel to the dGPU, \<igpu>.MXDS(1) back; MXDS(0)
// reads the state. Called through the acpi_call module (/proc/acpi/call).
std::string acpi_call(StepContext& ctx, const std::string& call, Status* st) {
  // The ACPI method runs inside the write and can block in the firmware: guarded. acpi_call keeps
  // the result for any reader, so the writer being another process changes nothing.
  auto w = ctx.host.fs.write_guarded(kAcpiCall, call, ctx.deadline.sub(ctx.timeouts.unbind_ms));
  if (!w) {
    *st = w;
    return "";
  }
  std::string res = read_attr(ctx.host.fs, kAcpiCall);
  if (res.rfind("Error", 0) == 0) {
    Error e;
    e.what = "ACPI call '" + call + "' failed";
    e.why = res;
    e.hint = "check the ACPI path in [display.mux] against the machine's DSDT (acpidump)";
    *st = e;
  }
  return res;
}

class AcpiMux : public Step {
 public:
  AcpiMux(std::string d, std::string i) : dgpu_(std::move(d)), igpu_(std::move(i)) {}
  std::string kind() const override { return "mux.acpi"; }
  std::string describe() const override { return "switch the panel to the dGPU (" + dgpu_ + ".MXDS)"; }
  Result<Record> record(StepContext& ctx) override {
    if (!ctx.host.fs.exists(kAcpiCall)) {
      Error e;
      e.what = "acpi_call is not available (" + std::string(kAcpiCall) + " is missing)";
      e.hint = "install and load the acpi_call module (Debian: acpi-call-dkms)";
      return e;
    }
    Status st;
    std::string before = acpi_call(ctx, dgpu_ + ".MXDS 0x0", &st);
    if (!st) return st.error();
    return Record{{"dgpu", dgpu_}, {"igpu", igpu_}, {"before", before}};
  }
  Status apply(StepContext& ctx, const Record&) override {
    Status st;
    acpi_call(ctx, dgpu_ + ".MXDS 0x1", &st);
    return st;
  }

 private:
  std::string dgpu_, igpu_;
};

Status undo_acpi_mux(StepContext& ctx, const Record& rec) {
  std::string igpu = field(rec, "igpu");
  if (igpu.empty() || igpu.find_first_of(" \n/") != std::string::npos) return Status::success();
  Status st;
  acpi_call(ctx, igpu + ".MXDS 0x1", &st);
  return st;
}

// DDC/CI: VCP feature 0x60 is the monitor's input source.
class DdcInput : public Step {
 public:
  DdcInput(int bus, int vm_in, int host_in) : bus_(bus), vm_(vm_in), host_(host_in) {}
  std::string kind() const override { return "ddc.input"; }
  std::string describe() const override {
    return "switch the monitor on i2c-" + std::to_string(bus_) + " to input " + std::to_string(vm_) + " (DDC/CI)";
  }
  Result<Record> record(StepContext& ctx) override {
    int prev = host_;
    if (prev < 0) {
      auto r = run_checked(ctx, {"ddcutil", "--bus", std::to_string(bus_), "--brief", "getvcp", "60"},
                           ctx.timeouts.command_ms, "cannot read the monitor's input over DDC/CI");
      if (!r) return r.error();
      // "VCP 60 SNC x0f"
      auto x = r->out.rfind(" x");
      if (x == std::string::npos) {
        Error e;
        e.what = "cannot read the monitor's input: unexpected ddcutil output '" + trim(r->out) + "'";
        e.hint = "set [display.ddc] host_input in the profile";
        return e;
      }
      prev = static_cast<int>(std::strtol(r->out.c_str() + x + 2, nullptr, 16));
    }
    return Record{{"bus", std::to_string(bus_)}, {"vm_input", std::to_string(vm_)}, {"host_input", std::to_string(prev)}};
  }
  Status apply(StepContext& ctx, const Record&) override {
    auto r = run_checked(ctx, {"ddcutil", "--bus", std::to_string(bus_), "setvcp", "60", std::to_string(vm_)},
                         ctx.timeouts.command_ms, "cannot switch the monitor's input over DDC/CI");
    if (!r) return r.error();
    return Status::success();
  }

 private:
  int bus_, vm_, host_;
};

bool small_int(const std::string& s) {
  return !s.empty() && s.size() <= 3 && s.find_first_not_of("0123456789") == std::string::npos;
}

Status undo_ddc(StepContext& ctx, const Record& rec) {
  std::string bus = field(rec, "bus"), in = field(rec, "host_input");
  if (!small_int(bus) || !small_int(in)) return Status::success();
  auto r = run_checked(ctx, {"ddcutil", "--bus", bus, "setvcp", "60", in}, ctx.timeouts.command_ms,
                       "cannot switch the monitor back to input " + in);
  if (!r) return r.error();
  return Status::success();
}

class Command : public Step {
 public:
  Command(std::string label, std::vector<std::string> run, std::vector<std::string> undo)
      : label_(std::move(label)), run_(std::move(run)), undo_(std::move(undo)) {}
  std::string kind() const override { return "command"; }
  std::string describe() const override { return label_ + ": " + format_argv(run_); }
  Result<Record> record(StepContext&) override {
    Record r{{"label", label_}};
    put_argv(r, "run", run_);
    put_argv(r, "undo", undo_);
    return r;
  }
  Status apply(StepContext& ctx, const Record&) override {
    auto r = run_checked(ctx, run_, ctx.timeouts.command_ms, label_ + " failed");
    if (!r) return r.error();
    return Status::success();
  }

 private:
  std::string label_;
  std::vector<std::string> run_, undo_;
};

Status undo_command(StepContext& ctx, const Record& rec) {
  auto argv = get_argv(rec, "undo");
  if (argv.empty()) return Status::success();
  if (argv[0].empty() || argv[0][0] != '/') {
    Error e;
    e.what = "refusing to run the journaled undo command " + format_argv(argv);
    e.why = "not an absolute path";
    return e;
  }
  auto r = run_checked(ctx, argv, ctx.timeouts.command_ms, field(rec, "label") + " undo failed");
  if (!r) return r.error();
  return Status::success();
}

}  // namespace

std::unique_ptr<Step> make_switcheroo() { return std::make_unique<Switcheroo>(); }
std::unique_ptr<Step> make_acpi_mux(const std::string& d, const std::string& i) { return std::make_unique<AcpiMux>(d, i); }
std::unique_ptr<Step> make_ddc_input(int bus, int vm_in, int host_in) {
  return std::make_unique<DdcInput>(bus, vm_in, host_in);
}
std::unique_ptr<Step> make_command(const std::string& label, const std::vector<std::string>& run,
                                   const std::vector<std::string>& undo) {
  return std::make_unique<Command>(label, run, undo);
}
StepKindInfo switcheroo_kind() { return {undo_switcheroo, {}, {}}; }
StepKindInfo acpi_mux_kind() { return {undo_acpi_mux, {}, {}}; }
StepKindInfo ddc_kind() { return {undo_ddc, {}, {}}; }
StepKindInfo command_kind() { return {undo_command, {}, {}}; }

}  // namespace gpuhook

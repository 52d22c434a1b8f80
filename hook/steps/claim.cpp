// claim: the record that a VM owns a device, /run/gpuhook/claims/<address> holding the VM name.
// The hook holds the device's flock while it reads and writes it, so two VMs cannot both claim.
#include "engine/journal.h"
#include "steps/steps.h"
#include "sysinfo/pci.h"

namespace gpuhook {
namespace {

std::string claim_path(const std::string& state_dir, const std::string& addr) {
  return state_dir + "/claims/" + addr;
}

class Claim : public Step {
 public:
  Claim(std::string a, std::string vm) : addr_(std::move(a)), vm_(std::move(vm)) {}
  std::string kind() const override { return "claim"; }
  std::string describe() const override { return "claim " + addr_ + " for VM " + vm_; }
  Result<Record> record(StepContext&) override { return Record{{"address", addr_}, {"vm", vm_}}; }
  Status apply(StepContext& ctx, const Record&) override {
    Fs& fs = ctx.host.fs;
    std::string p = claim_path(ctx.state_dir, addr_);
    std::string owner = read_attr(fs, p);
    if (!owner.empty() && owner != vm_) {
      JournalStore store(fs, ctx.state_dir);
      if (store.exists(owner)) {
        Error e;
        e.what = addr_ + " is in use by VM " + owner;
        e.hint = "shut down " + owner + " first; if it is not running, run `gpuhook restore " + owner + "`";
        return e;
      }
      ctx.log.warn("stale claim on " + addr_ + " by VM " + owner + " (no journal): taking it over");
    }
    if (auto s = fs.make_dirs(ctx.state_dir + "/claims", 0700); !s) return s;
    return fs.write_atomic(p, vm_ + "\n", 0600);
  }

 private:
  std::string addr_, vm_;
};

Status undo_claim(StepContext& ctx, const Record& rec) {
  std::string addr = field(rec, "address"), vm = field(rec, "vm");
  if (!PciAddress::parse(addr)) {
    // Never a path built from garbage (a NUL would even cut the real path short).
    Error e;
    e.what = "refusing the journal record: address '" + escape_value(addr.substr(0, 80)) + "' is not a PCI address";
    e.why = "a journal written by gpuhook never holds this; the file was damaged or edited";
    e.hint = "check " + ctx.state_dir + "/claims by hand, then remove the journal (see `gpuhook status`)";
    return e;
  }
  std::string p = claim_path(ctx.state_dir, addr);
  if (read_attr(ctx.host.fs, p) == vm) return ctx.host.fs.remove(p);
  return Status::success();  // not ours (or already gone): leave it
}

std::string verify_claim(StepContext& ctx, const Record& rec) {
  std::string owner = read_attr(ctx.host.fs, claim_path(ctx.state_dir, field(rec, "address")));
  if (owner != field(rec, "vm")) return "claim file names '" + owner + "'";
  return "";
}

std::string claim_nothing_to_undo(StepContext& ctx, const Record& rec) {
  std::string addr = field(rec, "address");
  if (!PciAddress::parse(addr)) return "";
  if (read_attr(ctx.host.fs, claim_path(ctx.state_dir, addr)) == field(rec, "vm")) return "";
  return "the claim file " + claim_path(ctx.state_dir, addr) + " no longer names VM " + field(rec, "vm");
}

// After release: the claim file no longer names this VM (another VM may have claimed it since).
std::string restored_claim(StepContext& ctx, const Record& rec) {
  std::string addr = field(rec, "address");
  if (!PciAddress::parse(addr)) return "";
  if (read_attr(ctx.host.fs, claim_path(ctx.state_dir, addr)) == field(rec, "vm"))
    return "the claim " + claim_path(ctx.state_dir, addr) + " still names VM " + field(rec, "vm") + " (rm it)";
  return "";
}

}  // namespace

std::string claim_nothing_left(StepContext& ctx, const Record& rec) { return claim_nothing_to_undo(ctx, rec); }

std::unique_ptr<Step> make_claim(const std::string& address, const std::string& vm) {
  return std::make_unique<Claim>(address, vm);
}
StepKindInfo claim_kind() { return {undo_claim, verify_claim, restored_claim}; }

}  // namespace gpuhook

// The table of step kinds: name -> undo (and verify). A journal names kinds by these strings;
// they are a file format and never change meaning.
#include "steps/steps.h"

namespace gpuhook {

StepKindInfo claim_kind();
StepKindInfo pci_vfio_kind();
StepKindInfo module_load_kind();
StepKindInfo module_unload_kind();
StepKindInfo service_stop_kind();
StepKindInfo vtcon_kind();
StepKindInfo fb_kind();
StepKindInfo holders_kind();
StepKindInfo switcheroo_kind();
StepKindInfo acpi_mux_kind();
StepKindInfo ddc_kind();
StepKindInfo command_kind();
StepKindInfo shm_kind();
StepKindInfo lg_client_kind();
StepKindInfo hugepages_kind();
StepKindInfo cpus_allowed_kind();
StepKindInfo cpuset_kind();
StepKindInfo governor_kind();
StepKindInfo inhibit_kind();
std::string claim_nothing_left(StepContext&, const Record&);
std::string vtcon_nothing_left(StepContext&, const Record&);
std::string fb_nothing_left(StepContext&, const Record&);
std::string service_stop_nothing_left(StepContext&, const Record&);
std::string module_unload_nothing_left(StepContext&, const Record&);
std::string pci_vfio_nothing_left(StepContext&, const Record&);

const StepRegistry& builtin_step_kinds() {
  static const StepRegistry t = {
      {"claim", claim_kind()},
      {"pci.vfio", pci_vfio_kind()},
      {"module.load", module_load_kind()},
      {"module.unload", module_unload_kind()},
      {"service.stop", service_stop_kind()},
      {"vtcon.unbind", vtcon_kind()},
      {"fb.release", fb_kind()},
      {"holders", holders_kind()},
      {"mux.switcheroo", switcheroo_kind()},
      {"mux.acpi", acpi_mux_kind()},
      {"ddc.input", ddc_kind()},
      {"command", command_kind()},
      {"shm.create", shm_kind()},
      {"lg.client", lg_client_kind()},
      {"hugepages.reserve", hugepages_kind()},
      {"cpus.allowed", cpus_allowed_kind()},
      {"cpuset.cpus", cpuset_kind()},
      {"cpu.governor", governor_kind()},
      {"sleep.inhibit", inhibit_kind()},
  };
  return t;
}

std::string nothing_to_undo(StepContext& ctx, const std::string& kind, const Record& rec) {
  if (kind == "claim") return claim_nothing_left(ctx, rec);
  if (kind == "vtcon.unbind") return vtcon_nothing_left(ctx, rec);
  if (kind == "fb.release") return fb_nothing_left(ctx, rec);
  if (kind == "service.stop") return service_stop_nothing_left(ctx, rec);
  if (kind == "module.unload") return module_unload_nothing_left(ctx, rec);
  if (kind == "pci.vfio") return pci_vfio_nothing_left(ctx, rec);
  return "";
}

}  // namespace gpuhook

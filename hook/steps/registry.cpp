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
  };
  return t;
}

}  // namespace gpuhook

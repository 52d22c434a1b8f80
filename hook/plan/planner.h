// The planner: from a profile, the host as it is now and the domain XML, the exact steps of each
// phase, in a deliberate order, or the reasons to refuse before anything is touched.
//
// prepare, in order (undo runs in reverse):
//   1. claim        every device, so a second VM is refused before anything changes
//  1b. [tuning] and Looking Glass (plan/tuning_plan.h): hugepages.reserve, cpus.allowed or
//      cpuset.cpus, cpu.governor, sleep.inhibit, shm.create
//   2. service.stop display manager, nvidia-persistenced, ... ([host] stop_services)
//   3. vtcon.unbind frame buffer consoles ([host] unbind_consoles)
//   4. fb.release   boot framebuffer on the GPU ([host] release_framebuffer)
//   5. mux.switcheroo  MDIS, while the dGPU driver is still registered (mode mux, switcheroo)
//   6. holders      processes still holding the GPU's nodes: refuse or terminate ([host] holders)
//   7. module.unload   [host] unload_modules, in the order given (nvidia_drm before nvidia)
//   8. module.load  vfio-pci when its driver is not there yet
//   9. pci.vfio     every function of the card (each of its IOMMU groups whole), [gpu] also, and
//                   the domain's managed='no' hostdevs
//  10. mux.acpi / command   panel switch (mode mux with acpi, mode command)
//  11. [[commands]] when = "prepare"
// start:   [[commands]] when = "start"
// started: ddc.input (mode ddc), lg.client (mode looking-glass), [[commands]] when = "started"
#pragma once
#include <string>
#include <vector>

#include "domain/domain_xml.h"
#include "engine/step.h"
#include "profile/profile.h"

namespace gpuhook {

struct Plan {
  int group = -1;                      // IOMMU group of [gpu] address
  std::vector<int> groups;             // every IOMMU group of the card's functions
  std::vector<std::string> devices;    // functions that go to vfio-pci, sorted
  StepList prepare, start, started;
  std::vector<Error> refusals;         // reasons not to start; nothing is touched when present
  std::vector<std::string> notes;      // facts worth a log line (skipped steps, built-in modules)
};

Plan make_plan(Host& host, const Profile& p, const DomainInfo* domain, const std::string& vm);

// The steps of the phases after prepare ("start", "started"): they come from the profile alone,
// so the host is not read again for them.
StepList later_phase_steps(const Profile& p, const std::string& phase);

// Steps of one phase by name ("prepare", "start", "started").
StepList& phase_steps(Plan& plan, const std::string& phase);

}  // namespace gpuhook

// Factories for every step kind. Each .cpp holds one family: what it records, how it applies,
// how it undoes from the record alone, and how reconnect verifies it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/step.h"

namespace gpuhook {

// Every step kind a journal may name, for the engine (registry.cpp).
const StepRegistry& builtin_step_kinds();

// claim: marks the device as used by this VM (/run/gpuhook/claims/<addr>); refuses when another
// VM with a live journal holds it.
std::unique_ptr<Step> make_claim(const std::string& address, const std::string& vm);
// pci.vfio: moves one PCI function to vfio-pci (driver_override, unbind, drivers_probe).
// driver_at_plan: its driver before the prepare (earlier steps may unbind it before it records).
std::unique_ptr<Step> make_pci_vfio(const std::string& address, const std::string& driver_at_plan = "");
// module.load: loads a module that was not loaded (vfio-pci). keep_loaded (recorded in the
// journal, so release never asks the profile): its undo hands the module to the host's journal
// instead of unloading it, since the next start needs it again; otherwise undo unloads it if unused.
std::unique_ptr<Step> make_module_load(const std::string& module, const std::string& driver_dir, bool keep_loaded = false);
// Modules gpuhook loaded that outlived their VM (another VM's devices used them, or the profile
// kept them loaded): unloads each that nothing uses now, except the kept ones unless
// all_modules (`gpuhook restore --all-modules`). Every release and restore runs it, under the
// host lock.
Status release_host_modules(StepContext& ctx, bool all_modules = false);
// module.unload: unloads a loaded module (modprobe -r); undo loads it again.
std::unique_ptr<Step> make_module_unload(const std::string& module);
// service.stop: stops a systemd unit and waits until it is inactive; undo starts it if it was active.
std::unique_ptr<Step> make_service_stop(const std::string& unit);
// vtcon.unbind: unbinds one frame buffer vtconsole; undo binds it again.
std::unique_ptr<Step> make_vtcon_unbind(const std::string& vtcon);
// fb.release: unbinds a boot framebuffer platform device (efi/simple/vesa framebuffer, simpledrm).
std::unique_ptr<Step> make_fb_release(const std::string& device, const std::string& driver);
// holders: finds processes holding the given devices' nodes; refuses, or terminates them.
// nvidia_control: also NVIDIA's driver-wide nodes (nvidiactl, nvidia-modeset, nvidia-uvm), which
// matter only when the profile unloads NVIDIA's modules.
std::unique_ptr<Step> make_holders(const std::vector<std::string>& addresses, bool terminate, bool nvidia_control);
// mux.switcheroo: vga_switcheroo MDIS (panel to the dGPU); undo MIGD.
std::unique_ptr<Step> make_switcheroo();
// mux.acpi: MXDS through acpi_call; undo switches back to the iGPU.
std::unique_ptr<Step> make_acpi_mux(const std::string& dgpu_path, const std::string& igpu_path);
// ddc.input: sets a monitor's input (VCP 0x60) with ddcutil; undo sets the previous input.
std::unique_ptr<Step> make_ddc_input(int bus, int vm_input, int host_input /* -1: read it */);
// command: runs an argv; undo runs its undo argv (if any).
std::unique_ptr<Step> make_command(const std::string& label, const std::vector<std::string>& run,
                                   const std::vector<std::string>& undo);

// shm.create: /dev/shm/<name> with exactly this size, owner `user` and group `group`, mode 0660
// (Looking Glass); undo removes it when this step created it.
std::unique_ptr<Step> make_shm_create(const std::string& path, long long size, const std::string& user, const std::string& group);
// lg.client: the Looking Glass client in `user`'s graphical session (started); undo stops it.
std::unique_ptr<Step> make_lg_client(const std::string& user, const std::vector<std::string>& argv);
// hugepages.reserve: raises nr_hugepages of one pool until `pages` are free; undo restores the count.
std::unique_ptr<Step> make_hugepages_reserve(long long size_kib, int node /* -1: system-wide */, long long pages);
// cpus.allowed: AllowedCPUs= of a systemd unit at runtime; undo sets the previous value.
std::unique_ptr<Step> make_cpus_allowed(const std::string& unit, const std::string& cpus);
// cpuset.cpus: a cgroup v2 group's cpuset.cpus (no systemd); undo writes the previous value.
std::unique_ptr<Step> make_cpuset_cpus(const std::string& path, const std::string& cpus);
// cpu.governor: one CPU's cpufreq governor; undo sets the previous one.
std::unique_ptr<Step> make_cpu_governor(int cpu, const std::string& governor);
// sleep.inhibit: a transient unit holding logind's sleep/idle inhibitor; undo stops it.
std::unique_ptr<Step> make_sleep_inhibit(const std::string& unit);

// For `gpuhook status`: what a journaled tuning or Looking Glass step keeps in force while the VM
// runs ("huge pages: nr_hugepages 32 (was 0) in ..."), "" for other kinds.
std::string tuning_in_force(const std::string& kind, const Record& rec);
// Why a journaled step leaves nothing for its undo to do: its change is undone already (a claim
// file that no longer names the VM, a console bound again, the unit running again, the module
// loaded again, the device back on its driver) or the kernel removed its object until reboot (the
// firmware framebuffer's platform device, fbcon's vtconsole). "" when its undo still has work, or
// for kinds that cannot tell (module.load, holders, mux, ddc, command). Read-only; for `status`.
std::string nothing_to_undo(StepContext& ctx, const std::string& kind, const Record& rec);
// For plan and check, before the first start: "" or the sentence saying that the firmware
// framebuffer (efifb, simple-framebuffer, vesafb) on `gpu`, the boot VGA device, and its text
// console will not come back until reboot, because no DRM driver of the GPU's own gives it one.
std::string firmware_fb_loss(Fs& fs, const std::string& gpu);

// Shared helpers.
void put_argv(Record& r, const std::string& prefix, const std::vector<std::string>& argv);
std::vector<std::string> get_argv(const Record& r, const std::string& prefix);
std::string field(const Record& r, const std::string& key);
// A name an undo reads back from its journal record and uses as a path component or a program
// argument (driver, module, unit): 1-255 of letters, digits and _ . : @ \ + -, not starting with
// '-' or '.'. A journal is read back after crashes and hand edits: anything else is refused, with
// an error naming the record's field, and never followed.
Status check_journal_name(const Record& r, const std::string& key, bool may_be_empty = false);
// Runs a program within the step's command timeout and the event deadline; error on failure.
Result<RunResult> run_checked(StepContext& ctx, const std::vector<std::string>& argv, Millis timeout_ms,
                              const std::string& what);
// Whether systemd is the init system (sd_booted: /run/systemd/system exists).
bool systemd_running(Fs& fs);
// Holders of a set of device nodes: "Xorg (1234) holds /dev/dri/card1 (0000:01:00.0)".
struct Holder {
  int pid;
  std::string name;
  std::string node;
  std::string address;
  std::string start_time;  // start_time_of(pid) when seen: signals reach this process, never a pid reuser
};
// The device nodes of one PCI function: its DRM and sound nodes, and for a function on NVIDIA's
// driver its own /dev/nvidiaN (plus the driver-wide nodes when nvidia_control).
std::vector<std::string> device_nodes_of(Fs& fs, const std::string& address, bool nvidia, bool nvidia_control);
std::vector<Holder> find_holders(Fs& fs, const std::vector<std::pair<std::string, std::string>>& nodes, int self_pid);

}  // namespace gpuhook

// The parts of a libvirt domain XML gpuhook needs: the PCI hostdevs (with managed=), and for
// `check` the firmware, machine type and the QEMU sub-vendor override. pugixml behind it.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "host/error.h"

namespace gpuhook {

struct DomainHostdev {
  std::string address;  // "0000:01:00.0"
  bool managed = false;
  // The alias libvirt gives it when the domain starts: a user alias (<alias name='ua-...'/>) is
  // kept; otherwise "hostdevN", numbered in order over hostdev interfaces, then <hostdev>s.
  std::string alias;
  // <rom file='...' bar='on|off'/>: "" when the hostdev has no such attribute.
  std::string rom_file, rom_bar;
  int line = 0;  // line of the <hostdev> in the document (1-based), 0 unknown
};

// A QEMU device property set through the qemu namespace, e.g. x-pci-sub-vendor-id=5464 for
// alias hostdev0; form is "override" (<qemu:override>) or "commandline" (-set device.A.P=V).
struct QemuProp {
  std::string alias, name, value, form;
};

// <shmem name='looking-glass'><model type='ivshmem-plain'/><size unit='M'>32</size></shmem>
struct DomainShmem {
  std::string name;        // file name under /dev/shm
  std::string model;       // "ivshmem-plain", "ivshmem-doorbell", ...
  long long size_bytes = -1;  // -1: no readable <size> (QEMU's default of 4 MiB applies)
};

// <memoryBacking><hugepages/> and its <page size= unit= nodeset=/> children.
struct DomainHugepage {
  long long size_kib = 0;  // 0: the host's default huge page size
  std::string nodeset;     // guest NUMA nodes, "" for all
};

struct DomainInfo {
  std::string name;
  std::string type;                    // "kvm", "qemu"
  std::vector<DomainHostdev> hostdevs; // type='pci' subsystem hostdevs
  std::string machine;                 // "pc-q35-7.2"
  bool uefi = false;                   // firmware='efi' or an OVMF/edk2 loader
  // Device properties set through the qemu namespace (override or commandline -set), as found.
  std::vector<QemuProp> qemu_props;
  bool has_qemu_namespace = false;

  // Tuning and Looking Glass (issues 13, 16).
  std::vector<DomainShmem> shmems;
  long long memory_kib = 0;            // <memory> (else <currentMemory>), in KiB
  bool hugepages = false;              // <memoryBacking><hugepages/>
  std::vector<DomainHugepage> hugepage_sizes;  // its <page> children
  std::string numatune_nodeset;        // <numatune><memory nodeset=...>
  // <cputune>: every cpuset of <vcpupin>, <emulatorpin>, <iothreadpin>, as written ("2-5,^3").
  std::vector<std::string> cpu_pins;
  // /dev/kvmfrN named as mem-path= of a memory-backend-file in <qemu:commandline>, "" if none,
  // with its size= in bytes (-1 unknown).
  std::string kvmfr_device;
  long long kvmfr_size = -1;
};

// "32" with unit "M" -> bytes; libvirt's units (b, bytes, KB, k, KiB, MB, M, MiB, GB, G, GiB, TB, T,
// TiB); default unit `def`. -1 when unreadable.
long long libvirt_size_bytes(const std::string& value, const std::string& unit, const std::string& def);

// Parses the XML; hostdevs whose address is malformed are skipped. A document that cannot be read
// gives an Error whose `why` names the line and column ("line 3, column 1: ...").
Result<DomainInfo> parse_domain_xml(std::string_view xml);

// The QEMU version a machine type names ("pc-q35-7.2" -> 7.2); -1 when it names none.
double machine_version(const std::string& machine);
// An id as the domain writes it ("0x1558", "5464"); 0xffffffff when it is not a number.
unsigned long parse_id(const std::string& v);

}  // namespace gpuhook

// Command line: what the program was asked to do. Pure parsing, no effects (fuzzed).
//
//   libvirt:  /etc/libvirt/hooks/qemu <vm> <op> <sub-op> <extra>      (or hooks/qemu.d/<anything>)
//   by hand:  gpuhook [--root DIR] hook <vm> <op> <sub-op> [<extra>]
//   CLI:      gpuhook [--root DIR] [--json] doctor|groups|ids ADDR|check VM|plan VM|status|restore VM [--force] [--all-modules]|restore --all-modules
//             |log [VM] [--events N] [--follow]
//             check also takes --connect URI and --xml FILE
//             setup VM [--gpu ADDRESS] [--mode MODE] [--dry-run] [--yes] [--connect URI] | setup VM --undo [--yes]
#pragma once
#include <string>
#include <vector>

namespace gpuhook {

struct Invocation {
  enum class Kind { hook, verb, help, version, usage_error } kind = Kind::usage_error;
  std::string root = "/";
  bool json = false;
  bool help = false;              // --help after a verb
  std::string verb;               // "doctor", "check", ...
  std::vector<std::string> args;  // verb arguments
  // hook: the libvirt arguments
  std::string vm, op, sub, extra;
  std::string connect;            // check --connect URI: libvirt URI ("" = libvirt's default)
  std::string xml_file;           // check/plan --xml FILE: the domain XML from a file instead of libvirt
  bool force = false;             // restore --force: restore even while a process holds the VM's /dev/vfio groups
  bool all_modules = false;       // restore --all-modules: unload the modules gpuhook kept loaded too
  std::string gpu, mode;          // setup --gpu ADDRESS, --mode MODE
  bool dry_run = false, yes = false, undo = false;  // setup --dry-run, --yes, --undo
  int events = 1;                 // log --events N: how many of the last events (0 = all)
  bool follow = false;            // log --follow: wait for new lines
  std::string error;              // usage_error: what is wrong
  bool from_libvirt = false;      // run by libvirtd under its hook name
};

// argv[0] decides hook mode: basename "qemu", or any file in a directory named "qemu.d".
bool is_hook_name(const std::string& argv0);
Invocation parse_args(const std::vector<std::string>& argv);
const std::vector<std::string>& verbs();
std::string usage();
std::string verb_help(const std::string& verb);

}  // namespace gpuhook

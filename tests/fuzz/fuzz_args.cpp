// Fuzz target: the argument parser. The input is argv, NUL-separated (argv[0] first). Whatever
// libvirtd or a person passes, parse_args classifies it, and a hook invocation always has its
// three libvirt words.
#include <cstdint>
#include <string>
#include <vector>

#include "app/args.h"
#include "app/fast_path.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpuhook;
  std::vector<std::string> argv;
  std::string cur;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      argv.push_back(cur);
      cur.clear();
    } else {
      cur += static_cast<char>(data[i]);
    }
  }
  if (size) argv.push_back(cur);
  Invocation inv = parse_args(argv);
  switch (inv.kind) {
    case Invocation::Kind::hook:
      // libvirt: argv[1..3] are the VM, operation and sub-operation, whatever they look like.
      if (argv.size() < 4) __builtin_trap();
      if (inv.from_libvirt && (inv.vm != argv[1] || inv.op != argv[2] || inv.sub != argv[3])) __builtin_trap();
      break;
    case Invocation::Kind::verb: {
      bool known = false;
      for (const auto& v : verbs()) known |= v == inv.verb;
      if (!known || inv.root.empty()) __builtin_trap();
      (void)verb_help(inv.verb);
      break;
    }
    case Invocation::Kind::usage_error:
      if (inv.error.empty()) __builtin_trap();
      break;
    default:
      break;
  }
  if (!argv.empty() && fast::is_hook_name(argv[0].c_str()) != is_hook_name(argv[0])) __builtin_trap();
  // The front (hook/front.cpp) must read a hook invocation exactly as parse_args does.
  std::vector<char*> cargv;
  for (auto& s : argv) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  fast::HookArgs h;
  bool front = fast::parse_hook(static_cast<int>(argv.size()), cargv.data(), h);
  if (front != (inv.kind == Invocation::Kind::hook)) __builtin_trap();
  if (front && (inv.vm != h.vm || inv.root != h.root)) __builtin_trap();
  return 0;
}

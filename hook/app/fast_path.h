// The hook's fast path, decided before any library is loaded (hook/front.cpp): libvirtd runs the
// hook for every event of every VM, and for a VM without a profile the whole job is one lstat()
// and draining stdin. This reads argv exactly as parse_args() does for the hook forms and
// decides like is_managed() (engine/session.h) on RealFs, over plain char* with libc only (no allocation, no C++
// library), so the front can be a small static program. Anything it does not recognise is left
// to the full program. Unit tests and fuzz_args check that it agrees with parse_args/has_profile.
#pragma once
#include <sys/stat.h>

#include <cstdio>
#include <cstring>

namespace gpuhook::fast {

struct HookArgs {
  const char* root = "/";
  const char* vm = nullptr;
};

// Same rule as is_hook_name(): basename "qemu", or any file in a directory named "qemu.d".
inline bool is_hook_name(const char* argv0) {
  size_t len = std::strlen(argv0);
  while (len > 1 && argv0[len - 1] == '/') --len;
  size_t slash = len;
  for (size_t i = 0; i < len; ++i)
    if (argv0[i] == '/') slash = i;
  const char* base = slash == len ? argv0 : argv0 + slash + 1;
  size_t blen = slash == len ? len : len - slash - 1;
  if (blen == 4 && std::memcmp(base, "qemu", 4) == 0) return true;
  if (slash == len) return false;
  size_t s2 = slash;  // last '/' before `slash`
  for (size_t i = 0; i < slash; ++i)
    if (argv0[i] == '/') s2 = i;
  const char* dbase = s2 == slash ? argv0 : argv0 + s2 + 1;
  size_t dlen = s2 == slash ? slash : slash - s2 - 1;
  return dlen == 6 && std::memcmp(dbase, "qemu.d", 6) == 0;
}

// True when parse_args(argv) is a hook invocation; fills root and vm as it would.
inline bool parse_hook(int argc, char** argv, HookArgs& out) {
  if (argc < 1 || !argv[0]) return false;
  out = HookArgs{};
  if (is_hook_name(argv[0])) {
    if (argc < 4) return false;
    out.vm = argv[1];
    return true;
  }
  int i = 1;
  for (; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strcmp(a, "--root") == 0) {
      if (i + 1 >= argc || !*argv[i + 1]) return false;
      out.root = argv[++i];
    } else if (std::strncmp(a, "--root=", 7) == 0) {
      if (!a[7]) return false;
      out.root = a + 7;
    } else if (std::strcmp(a, "--json") != 0) {
      break;
    }
  }
  if (i >= argc || std::strcmp(argv[i], "hook") != 0) return false;
  int rest = argc - i - 1;  // after `hook` every word is libvirt's: VM OP SUB [EXTRA]
  if (rest < 3 || rest > 4) return false;
  out.vm = argv[i + 1];
  return true;
}

// Same rule as vm_name_problem() == "".
inline bool safe_vm_name(const char* vm) {
  size_t n = std::strlen(vm);
  if (n == 0 || n > 200 || vm[0] == '.') return false;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(vm[i]);
    if (c == '/' || c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

enum class Decision { not_ours, ours, unsure };

// is_managed(RealFs(root), vm): a safe name and something at <root>/etc/gpuhook/vms/<vm>.toml or
// at <root>/run/gpuhook/<vm>.journal (lstat each): a VM whose profile was removed while it ran
// still has its journal undone. `unsure` when a path does not fit the buffer: the full program decides.
inline Decision profile_decision(const HookArgs& h) {
  if (!safe_vm_name(h.vm)) return Decision::not_ours;
  size_t rlen = std::strlen(h.root);
  while (rlen > 1 && h.root[rlen - 1] == '/') --rlen;  // RealFs: "/x/" is "/x", "/" is ""
  if (rlen == 1 && h.root[0] == '/') rlen = 0;
  char path[4096];
  int n = std::snprintf(path, sizeof path, "%.*s/etc/gpuhook/vms/%s.toml", static_cast<int>(rlen), h.root, h.vm);
  if (n < 0 || static_cast<size_t>(n) >= sizeof path) return Decision::unsure;
  struct stat st;
  if (::lstat(path, &st) == 0) return Decision::ours;
  n = std::snprintf(path, sizeof path, "%.*s/run/gpuhook/%s.journal", static_cast<int>(rlen), h.root, h.vm);
  if (n < 0 || static_cast<size_t>(n) >= sizeof path) return Decision::unsure;
  return ::lstat(path, &st) == 0 ? Decision::ours : Decision::not_ours;
}

}  // namespace gpuhook::fast

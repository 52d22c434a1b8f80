// gpuhook's executable: what libvirtd starts for every event of every VM. For a VM without a
// profile it is the whole program: one lstat(), stdin read to the end, exit 0, nothing printed,
// nothing created. It links against libc alone, so that case costs a process start and no more:
// no libstdc++/spdlog/fmt/toml++ to map and relocate.
// Everything else (a managed VM's events, every CLI verb, --help, odd arguments) is the rest of
// the program, the module gpuhook-full.so (hook/main.cpp), which this loads and runs in the same
// process with the same argv and untouched stdin: from lib/gpuhook/ of the install prefix, or
// next to this file in a build tree.
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "app/fast_path.h"

namespace {

// Like main.cpp's drain_stdin(false): libvirtd writes the domain XML and must not see EPIPE.
void drain_stdin() {
  if (::isatty(0)) return;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
  }
}

void say(const char* a, const char* b, const char* c) {
  char msg[PATH_MAX * 2 + 256];
  int n = std::snprintf(msg, sizeof msg, "gpuhook: %s%s%s\n", a, b, c);
  if (n > 0) (void)!::write(2, msg, static_cast<size_t>(n) < sizeof msg ? static_cast<size_t>(n) : sizeof msg - 1);
}

// The rest of the program, found from where this executable really is (links resolved).
bool find_full(const char* argv0, char* out, size_t size) {
  char self[PATH_MAX];
  ssize_t k = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (k > 0) {
    self[k] = '\0';
  } else if (!argv0 || !::realpath(argv0, self)) {  // no /proc: from argv[0]
    return false;
  }
  char* slash = std::strrchr(self, '/');
  if (!slash) return false;
  *slash = '\0';
  static const char* const kWhere[] = {"/../lib/gpuhook/gpuhook-full.so", "/gpuhook-full.so"};
  for (const char* rel : kWhere) {
    int n = std::snprintf(out, size, "%s%s", self, rel);
    if (n > 0 && static_cast<size_t>(n) < size && ::access(out, R_OK) == 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  gpuhook::fast::HookArgs h;
  if (gpuhook::fast::parse_hook(argc, argv, h) && gpuhook::fast::profile_decision(h) == gpuhook::fast::Decision::not_ours) {
    drain_stdin();
    return 0;
  }
  char full[PATH_MAX + 64];
  if (!find_full(argc > 0 ? argv[0] : nullptr, full, sizeof full)) {
    say("cannot find gpuhook-full.so (in ../lib/gpuhook/ or next to this gpuhook); ", "reinstall gpuhook", "");
    return 1;
  }
  void* so = ::dlopen(full, RTLD_NOW | RTLD_LOCAL);
  if (!so) {
    say("cannot load ", full, ": reinstall gpuhook");
    const char* why = ::dlerror();
    if (why) say("  ", why, "");
    return 1;
  }
  using Main = int (*)(int, char**);
  auto run = reinterpret_cast<Main>(::dlsym(so, "gpuhook_main"));
  if (!run) {
    say(full, " is not gpuhook's module (no gpuhook_main): ", "reinstall gpuhook");
    return 1;
  }
  return run(argc, argv);
}

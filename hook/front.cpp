// gpuhook's front: the program libvirtd starts for every event of every VM. For a VM without a
// profile it is the whole program: one lstat(), stdin read to the end, exit 0, nothing printed,
// nothing created. It is linked statically against libc only, so that case costs a process start
// and no more: no dynamic loader, no libstdc++/spdlog/fmt/toml++ to map and relocate.
// Everything else (a managed VM's events, every CLI verb, --help, odd arguments) is the full
// program, gpuhook-full (hook/main.cpp), which this exec()s with the same argv, environment and
// untouched stdin: from libexec/gpuhook/ of the install prefix, or next to this file in a build.
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

// The full program, found from where this executable really is (links resolved).
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
  static const char* const kWhere[] = {"/../libexec/gpuhook/gpuhook-full", "/gpuhook-full"};
  for (const char* rel : kWhere) {
    int n = std::snprintf(out, size, "%s%s", self, rel);
    if (n > 0 && static_cast<size_t>(n) < size && ::access(out, X_OK) == 0) return true;
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
    say("cannot find the program gpuhook-full (in ../libexec/gpuhook/ or next to this gpuhook); ",
        "reinstall gpuhook", "");
    return 1;
  }
  ::execv(full, argv);
  say("cannot run ", full, errno == ENOENT ? ": not found" : ": exec failed");
  return 1;
}

// Runs the built gpuhook binary as libvirtd would: a chosen argv[0], data on stdin, stdout and
// stderr captured separately, with a bound on the run time.
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace gpuhook::test {

struct BinaryRun {
  int exit_code = -1;
  bool timed_out = false;
  std::string out, err;
  double seconds = 0;
};

inline BinaryRun run_binary(const std::string& exe, const std::vector<std::string>& argv, const std::string& input,
                            int timeout_ms = 20000, const std::vector<std::string>& env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root"}) {
  int in[2], out[2], err[2];
  (void)!::pipe2(in, O_CLOEXEC);
  (void)!::pipe2(out, O_CLOEXEC);
  (void)!::pipe2(err, O_CLOEXEC);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  std::vector<char*> av, ev;
  for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
  av.push_back(nullptr);
  for (const auto& e : env) ev.push_back(const_cast<char*>(e.c_str()));
  ev.push_back(nullptr);
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = -1;
  BinaryRun r;
  if (posix_spawn(&pid, exe.c_str(), &fa, nullptr, av.data(), ev.data()) != 0) return r;
  posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::fcntl(in[1], F_SETFL, O_NONBLOCK);
  size_t off = 0;
  bool in_open = true;
  if (input.empty()) {
    ::close(in[1]);
    in_open = false;
  }
  bool out_open = true, err_open = true;
  ::signal(SIGPIPE, SIG_IGN);
  while (out_open || err_open) {
    pollfd p[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in_open ? in[1] : -1, POLLOUT, 0}};
    auto left = timeout_ms - std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    if (left <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    ::poll(p, 3, static_cast<int>(left));
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = ::read(p[i].fd, buf, sizeof buf);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
    }
    if (in_open && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::write(in[1], input.data() + off, input.size() - off);
      if (n > 0) off += static_cast<size_t>(n);
      if (n < 0 && errno == EPIPE) off = input.size();
      if (off >= input.size()) {
        ::close(in[1]);
        in_open = false;
      }
    }
  }
  if (in_open) ::close(in[1]);
  ::close(out[0]);
  ::close(err[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (WIFEXITED(st)) r.exit_code = WEXITSTATUS(st);
  return r;
}

}  // namespace gpuhook::test

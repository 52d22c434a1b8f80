// Event latency of whole processes, measured the way libvirtd sees it: fork+exec, the domain XML
// on stdin (a file), stdout/stderr to /dev/null, until the process has been reaped. Candidates
// run interleaved (round-robin, the order rotating every round) so that a noisy, shared machine
// affects them alike; the table shows medians and percentiles, ratios of medians to the first
// candidate (the baseline) and to a reference candidate, and each candidate's peak RSS
// (VmHWM of the process's final program, read at its exit under ptrace in separate runs: wait4's
// ru_maxrss would include the benchmark's own memory, which a vfork()ed child starts from).
//
//   bench_startup [--rounds N] [--warmup N] [--ref LABEL] [--title TEXT]
//                 LABEL=STDIN_FILE=ARGV0 ARG... [;; LABEL=...]
//
// Each candidate is one argument "LABEL=STDIN_FILE=COMMAND LINE" (the command line split on
// spaces). Not a test: it prints figures, it never fails on them.
#include <fcntl.h>
#include <spawn.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

struct Candidate {
  std::string label, input;
  std::vector<std::string> argv;
  std::vector<double> ms;
  long max_rss_kb = 0;
  int failures = 0;
  int last_status = 0;
};

double now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

bool run_once(Candidate& c, bool record) {
  int in = ::open(c.input.c_str(), O_RDONLY | O_CLOEXEC);
  int nul = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (in < 0 || nul < 0) {
    std::perror(c.input.c_str());
    std::exit(2);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in, 0);
  posix_spawn_file_actions_adddup2(&fa, nul, 1);
  posix_spawn_file_actions_adddup2(&fa, nul, 2);
  std::vector<char*> av;
  for (auto& a : c.argv) av.push_back(a.data());
  av.push_back(nullptr);
  double t0 = now_ms();
  pid_t pid = -1;
  int rc = posix_spawn(&pid, av[0], &fa, nullptr, av.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(in);
  ::close(nul);
  if (rc != 0) {
    std::fprintf(stderr, "cannot run %s: %s\n", av[0], std::strerror(rc));
    std::exit(2);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  double dt = now_ms() - t0;
  c.last_status = status;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++c.failures;
  if (record) c.ms.push_back(dt);
  return true;
}

// Peak resident memory of the program the process runs when it exits (after any exec), in KiB.
long peak_kib(const Candidate& c) {
  int in = ::open(c.input.c_str(), O_RDONLY | O_CLOEXEC);
  std::vector<char*> av;
  for (auto& a : const_cast<Candidate&>(c).argv) av.push_back(a.data());
  av.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int nul = ::open("/dev/null", O_WRONLY);
    ::dup2(in, 0);
    ::dup2(nul, 1);
    ::dup2(nul, 2);
    ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
    ::execve(av[0], av.data(), environ);
    ::_exit(127);
  }
  ::close(in);
  long peak = -1;
  int status = 0;
  bool first = true;
  while (::waitpid(pid, &status, 0) == pid) {
    if (WIFEXITED(status) || WIFSIGNALED(status)) break;
    if (!WIFSTOPPED(status)) continue;
    int sig = WSTOPSIG(status);
    if (first) {  // the SIGTRAP of the first exec
      first = false;
      ::ptrace(PTRACE_SETOPTIONS, pid, nullptr, reinterpret_cast<void*>(PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC));
      sig = 0;
    } else if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
      char path[64];
      std::snprintf(path, sizeof path, "/proc/%d/status", pid);
      if (FILE* f = std::fopen(path, "r")) {
        char line[256];
        while (std::fgets(line, sizeof line, f))
          if (std::strncmp(line, "VmHWM:", 6) == 0) peak = std::atol(line + 6);
        std::fclose(f);
      }
      sig = 0;
    } else if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
      sig = 0;
    }
    ::ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<long>(sig)));
  }
  return peak;
}

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double idx = p * (v.size() - 1);
  size_t lo = static_cast<size_t>(idx);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - lo);
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 1000, warmup = 50;
  std::string ref, title = "event latency";
  std::vector<Candidate> cs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (a == "--warmup" && i + 1 < argc) warmup = std::atoi(argv[++i]);
    else if (a == "--ref" && i + 1 < argc) ref = argv[++i];
    else if (a == "--title" && i + 1 < argc) title = argv[++i];
    else {
      auto e1 = a.find('='), e2 = a.find('=', e1 + 1);
      if (e1 == std::string::npos || e2 == std::string::npos) {
        std::fprintf(stderr, "bad candidate '%s' (LABEL=STDIN_FILE=COMMAND ...)\n", a.c_str());
        return 2;
      }
      Candidate c;
      c.label = a.substr(0, e1);
      c.input = a.substr(e1 + 1, e2 - e1 - 1);
      std::istringstream cmd(a.substr(e2 + 1));
      for (std::string w; cmd >> w;) c.argv.push_back(w);
      cs.push_back(std::move(c));
    }
  }
  if (cs.empty()) {
    std::fprintf(stderr, "usage: bench_startup [--rounds N] [--warmup N] [--ref LABEL] LABEL=STDIN=COMMAND...\n");
    return 2;
  }
  for (int r = 0; r < warmup + rounds; ++r)
    for (size_t k = 0; k < cs.size(); ++k) run_once(cs[(k + r) % cs.size()], r >= warmup);
  for (auto& c : cs)
    for (int i = 0; i < 3; ++i) c.max_rss_kb = std::max(c.max_rss_kb, peak_kib(c));

  const Candidate* refc = nullptr;
  for (const auto& c : cs)
    if (c.label == ref) refc = &c;
  double base = pct(cs[0].ms, 0.5);
  double refm = refc ? pct(refc->ms, 0.5) : 0;
  size_t w = 10;
  for (const auto& c : cs) w = std::max(w, c.label.size());
  std::printf("%s: %d interleaved rounds (+%d warm-up), %zu candidates\n", title.c_str(), rounds, warmup, cs.size());
  std::printf("| %-*s | median ms | p10 ms | p90 ms | x %-10s |", static_cast<int>(w), "candidate", cs[0].label.c_str());
  if (refc) std::printf(" x %-10s |", refc->label.c_str());
  std::printf("   peak RSS |\n|%s|-----------|--------|--------|%s|", std::string(w + 2, '-').c_str(),
              std::string(14, '-').c_str());
  if (refc) std::printf("%s|", std::string(14, '-').c_str());
  std::printf("------------|\n");
  for (const auto& c : cs) {
    double m = pct(c.ms, 0.5);
    std::printf("| %-*s | %9.3f | %6.3f | %6.3f | %12.2f |", static_cast<int>(w), c.label.c_str(), m, pct(c.ms, 0.1),
                pct(c.ms, 0.9), m / base);
    if (refc) std::printf(" %12.2f |", m / refm);
    std::printf(" %6ld KiB |", c.max_rss_kb);
    if (c.failures) std::printf("  (%d runs exited non-zero, last status %d)", c.failures, c.last_status);
    std::printf("\n");
  }
  return 0;
}

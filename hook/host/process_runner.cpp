// The one file that uses Boost.Process (v2, Boost 1.81). Programs are started from an argv (never
// a shell) in their own process group, with stdin from /dev/null, stdout and stderr on pipes that
// we drain, and a minimal environment. At the deadline the whole group is killed. No exception
// leaves run(): whatever Boost throws (a program that cannot be executed: no `#!`, a directory, a
// missing interpreter; a pipe or fork failure) becomes an Error naming the program. A deadline
// already expired starts nothing (timed_out).
#define BOOST_PROCESS_USE_STD_FS 1
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

// Boost 1.81's process/v2/detail/config.hpp uses boost::optional and <type_traits> without
// including them when BOOST_PROCESS_USE_STD_FS is set.
#include <type_traits>
#include <boost/optional.hpp>
#include <boost/type_traits.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/stdio.hpp>
// ...and does not include the definition of process_environment::on_setup in header-only mode.
#include <boost/process/v2/impl/environment.ipp>
#include <chrono>

#include "host/real_host.h"

namespace gpuhook {
namespace {

namespace asio = boost::asio;
namespace bp = boost::process::v2;

constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Puts the child in a process group of its own so that a timeout kills what it started too.
struct own_process_group {
  template <class Launcher>
  bp::error_code on_exec_setup(Launcher&, const std::filesystem::path&, const char* const*) {
    ::setpgid(0, 0);
    return {};
  }
};

class ProcessRunner : public Runner {
 public:
  Result<RunResult> run(const std::vector<std::string>& argv, const Deadline& d) override;
  bool has_program(const std::string& name) override { return !find(name).empty(); }
  Result<int> spawn_detached(const DetachedSpec& spec) override;

 private:
  // A regular file we may execute (access() alone says yes to a directory).
  static bool executable(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  }
  Result<RunResult> run_checked(const std::vector<std::string>& argv, const Deadline& d);
  static std::filesystem::path find(const std::string& name) {
    if (name.empty()) return {};
    // A path must be absolute: never relative to whatever directory the hook runs in.
    if (name.find('/') != std::string::npos)
      return name[0] == '/' && executable(name) ? std::filesystem::path(name) : std::filesystem::path();
    std::string_view path = kPath;
    while (!path.empty()) {
      auto c = path.find(':');
      std::string dir(path.substr(0, c));
      path = c == std::string_view::npos ? std::string_view() : path.substr(c + 1);
      std::string cand = dir + "/" + name;
      if (executable(cand)) return cand;
    }
    return {};
  }
};

struct Drain {
  asio::readable_pipe pipe;
  std::string data;
  char buf[4096];
  bool eof = false;
  explicit Drain(asio::io_context& ctx) : pipe(ctx) {}
  void start() {
    pipe.async_read_some(asio::buffer(buf), [this](const bp::error_code& ec, std::size_t n) {
      if (n) data.append(buf, n < sizeof buf ? n : sizeof buf);
      if (data.size() > (1u << 20)) data.resize(1u << 20);  // keep the tail bounded
      if (ec) {
        eof = true;
        return;
      }
      start();
    });
  }
};

Result<RunResult> ProcessRunner::run(const std::vector<std::string>& argv, const Deadline& d) {
  if (argv.empty()) return sys_error("cannot run an empty command", "argv", EINVAL);
  auto failed = [&](const std::string& why, int code) {
    Error e;
    e.what = "cannot run " + argv[0];
    e.why = why;
    e.hint = "check that it is an executable program (a script needs its #! line and interpreter)";
    e.code = code;
    return e;
  };
  try {
    return run_checked(argv, d);
  } catch (const boost::system::system_error& x) {
    return failed(x.code().message(), x.code().category() == boost::system::system_category() ? x.code().value() : 0);
  } catch (const std::exception& x) {
    return failed(x.what(), 0);
  } catch (...) {
    return failed("unknown failure while starting it", 0);
  }
}

Result<RunResult> ProcessRunner::run_checked(const std::vector<std::string>& argv, const Deadline& d) {
  auto exe = find(argv[0]);
  if (exe.empty()) {
    Error e;
    e.what = "cannot run " + argv[0];
    e.why = argv[0].find('/') == std::string::npos ? "not found in " + std::string(kPath)
            : argv[0][0] == '/'                    ? "no such executable"
                                                   : "a relative path is never run";
    e.hint = "install it, or give its absolute path";
    e.code = ENOENT;
    return e;
  }
  if (d.expired()) {
    RunResult r;  // no time to run it: it is not started (the fakes do the same)
    r.timed_out = true;
    return r;
  }
  asio::io_context ctx;
  Drain out(ctx), err(ctx);
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  std::vector<std::string> env = {std::string("PATH=") + kPath, "LC_ALL=C"};
  bp::error_code ec;
  bp::process proc(ctx, exe, args, bp::process_stdio{nullptr, out.pipe, err.pipe},
                   bp::process_environment(env), own_process_group{});
  (void)ec;
  int pid = proc.id();
  out.start();
  err.start();

  RunResult res;
  bool exited = false;
  // The handler's code is Boost's "evaluated" one (exit status or signal number, ambiguous);
  // the wait status itself is proc.native_exit_code() once it completed.
  proc.async_wait([&](const bp::error_code&, int) { exited = true; });
  asio::steady_timer timer(ctx);
  timer.expires_after(std::chrono::milliseconds(d.remaining()));
  timer.async_wait([&](const bp::error_code& tec) {
    if (tec) return;
    if (!exited) {
      res.timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
  });
  // Run until the child has exited; then give the pipes a short bound to drain (a grandchild that
  // kept them open must not keep us here).
  while (!exited && ctx.run_one()) {
  }
  timer.cancel();
  auto drain_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  while ((!out.eof || !err.eof) && std::chrono::steady_clock::now() < drain_until) {
    if (!ctx.run_one_for(std::chrono::milliseconds(20))) break;
  }
  ::kill(-pid, SIGKILL);  // nothing of the run outlives it
  out.pipe.close();
  err.pipe.close();
  ctx.poll();
  res.out = std::move(out.data);
  res.err = std::move(err.data);
  if (!res.timed_out) {
    int native_status = proc.native_exit_code();
    if (WIFSIGNALED(native_status)) res.signaled = true;
    else res.exit_code = WEXITSTATUS(native_status);
  }
  return res;
}

// fork, setsid, fork again (the grandchild is reparented to init and never a child of libvirtd's
// hook), /dev/null on stdio, every other descriptor closed, groups, gid, uid, exec. Only
// async-signal-safe calls after fork: everything is prepared before.
Result<int> ProcessRunner::spawn_detached(const DetachedSpec& spec) {
  Error e;
  e.what = "cannot start " + (spec.argv.empty() ? std::string("?") : spec.argv[0]);
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/') {
    e.why = "the program must be an absolute path";
    return e;
  }
  if (::access(spec.argv[0].c_str(), X_OK) != 0) {
    e.why = spec.argv[0] + ": " + std::strerror(errno);
    e.code = errno;
    return e;
  }
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& a : spec.env) envp.push_back(const_cast<char*>(a.c_str()));
  envp.push_back(nullptr);
  std::vector<gid_t> groups(spec.groups.begin(), spec.groups.end());
  int pidp[2], errp[2];
  if (::pipe2(pidp, O_CLOEXEC) != 0) return sys_error(e.what, "pipe", errno);
  if (::pipe2(errp, O_CLOEXEC) != 0) {
    int en = errno;
    ::close(pidp[0]), ::close(pidp[1]);
    return sys_error(e.what, "pipe", en);
  }
  pid_t a = ::fork();
  if (a < 0) {
    int en = errno;
    ::close(pidp[0]), ::close(pidp[1]), ::close(errp[0]), ::close(errp[1]);
    return sys_error(e.what, "fork", en);
  }
  if (a == 0) {
    ::setsid();
    pid_t b = ::fork();
    if (b != 0) {
      (void)!::write(pidp[1], &b, sizeof b);
      ::_exit(b < 0 ? 1 : 0);
    }
    ::setsid();  // the grandchild leads its own session and process group (never the hook's)
    int err = errp[1];
    auto die = [err](int stage) {
      int v[2] = {stage, errno};
      (void)!::write(err, v, sizeof v);
      ::_exit(127);
    };
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    int nul = ::open("/dev/null", O_RDWR);
    if (nul < 0) die(1);
    ::dup2(nul, 0), ::dup2(nul, 1), ::dup2(nul, 2);
    if (err != 3) {
      ::dup2(err, 3);
      ::fcntl(3, F_SETFD, FD_CLOEXEC);
      err = 3;
    }
    ::close_range(4, ~0U, 0);
    if (::setgroups(groups.size(), groups.data()) != 0) die(2);
    if (::setgid(spec.gid) != 0) die(3);
    if (::setuid(spec.uid) != 0) die(4);
    if (::chdir(spec.cwd.c_str()) != 0 && ::chdir("/") != 0) die(5);
    ::execve(argv[0], argv.data(), envp.data());
    die(6);
  }
  ::close(pidp[1]);
  ::close(errp[1]);
  pid_t b = -1;
  ssize_t n;
  while ((n = ::read(pidp[0], &b, sizeof b)) < 0 && errno == EINTR) {
  }
  ::close(pidp[0]);
  int st = 0;
  while (::waitpid(a, &st, 0) < 0 && errno == EINTR) {
  }
  int v[2] = {0, 0};
  ssize_t m;
  while ((m = ::read(errp[0], v, sizeof v)) < 0 && errno == EINTR) {
  }
  ::close(errp[0]);
  if (n != sizeof b || b <= 0) {
    e.why = "fork in the detached child failed";
    return e;
  }
  if (m == sizeof v) {
    static const char* stage[] = {"", "open /dev/null", "setgroups", "setgid", "setuid", "chdir", "exec"};
    e.why = std::string(stage[v[0] >= 1 && v[0] <= 6 ? v[0] : 6]) + ": " + std::strerror(v[1]);
    e.code = v[1];
    return e;
  }
  return static_cast<int>(b);
}

}  // namespace

std::unique_ptr<Runner> make_process_runner() { return std::make_unique<ProcessRunner>(); }

}  // namespace gpuhook

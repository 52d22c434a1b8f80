// RealFs, RealClock, RealSignals, RealLocker: the host itself. Every Fs path is resolved under the
// root (--root); signals and locks act on this machine.
//
// Guarded writes (write_guarded) run in one writer process per RealFs (per event), forked at the
// first guarded write: stdio on /dev/null, every other inherited descriptor closed (close_range),
// then open+write for each request, answered over a socket the hook polls with the deadline. At
// the deadline a writer still in the kernel is SIGKILLed (a writer in D state stays there) and
// the Error says timed_out, may_complete and pending_pid; the next write gets a new writer. A
// deadline already expired starts nothing.
//
// Test builds only (GPUHOOK_FAULT_POINTS): GPUHOOK_FAULT=slow-write:<path substring>:<ms> makes
// the guarded-write child of a path containing the substring sleep <ms> before it opens and
// writes, and the parent does not SIGKILL that child at the deadline: a driver stuck in D state,
// whose write completes late. The substring may contain ':' (the number is after the last one).
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "host/real_host.h"

namespace gpuhook {

RealFs::RealFs(std::string root) {
  // An absolute, link-free root: canonical() strips it off resolved paths by prefix.
  if (root != "/" && !root.empty()) {
    char buf[PATH_MAX];
    if (::realpath(root.c_str(), buf)) root = buf;
  }
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  root_ = (root == "/" || root.empty()) ? "" : root;
}

std::string RealFs::host_path(const std::string& path) const { return root_ + path; }

// Under a root (--root) every link is resolved inside it, absolute targets and ".." included, as
// in a chroot (openat2 RESOLVE_IN_ROOT): the "/sys/devices/..." link of a captured tree stays in
// the tree. On the live root ("/") a plain open. -1 and errno on failure.
int RealFs::open_path(const std::string& path, int flags) const {
  if (root_.empty()) return ::open(path.c_str(), flags | O_CLOEXEC);
  int rfd = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0) return -1;
  open_how how{};
  how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT;
  int fd = static_cast<int>(::syscall(SYS_openat2, rfd, path.c_str(), &how, sizeof how));
  int e = errno;
  ::close(rfd);
  errno = e;
  return fd;
}

// The host path of `path` with every link resolved (inside the root), "" and errno on failure.
std::string RealFs::resolved_host_path(const std::string& path) const {
  if (root_.empty()) {
    char buf[PATH_MAX];
    return ::realpath(path.c_str(), buf) ? std::string(buf) : std::string();
  }
  int fd = open_path(path, O_PATH);
  if (fd < 0) return "";
  char buf[PATH_MAX];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  int e = errno;
  ::close(fd);
  errno = e;
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

namespace {
// Reads an open descriptor to its end (at most 16 MiB: no host file we read is this large) into
// `out`; 0, or the errno of a failed read.
int read_all(int fd, std::string& out) {
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return 0;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (16u << 20)) return 0;
  }
}
}  // namespace

Result<std::string> RealFs::read(const std::string& path) {
  int fd = open_path(path, O_RDONLY | O_NONBLOCK);
  if (fd < 0) return sys_error("cannot read " + path, path, errno);
  std::string out;
  int e = read_all(fd, out);
  ::close(fd);
  if (e) return sys_error("cannot read " + path, path, e);
  return out;
}

Status RealFs::write(const std::string& path, std::string_view data) {
  // O_TRUNC as the shell's `>`: a regular file holds exactly `data` (sysfs and procfs ignore it).
  int fd = open_path(path, O_WRONLY | O_TRUNC | O_NOCTTY);
  if (fd < 0) return sys_error("cannot write " + path, path, errno);
  ssize_t n;
  do n = ::write(fd, data.data(), data.size()); while (n < 0 && errno == EINTR);
  int e = errno;
  ::close(fd);
  if (n < 0) return sys_error("cannot write '" + trim(data) + "' to " + path, path, e);
  return Status::success();
}

namespace {

#ifdef GPUHOOK_FAULT_POINTS
// GPUHOOK_FAULT=slow-write:<path substring>:<ms> (test builds only): see the opening comment.
long slow_write_ms(const std::string& path) {
  const char* f = std::getenv("GPUHOOK_FAULT");
  if (!f) return 0;
  std::string spec = f;
  const std::string pre = "slow-write:";
  if (spec.compare(0, pre.size(), pre) != 0) return 0;
  auto colon = spec.rfind(':');
  if (colon < pre.size()) return 0;
  std::string sub = spec.substr(pre.size(), colon - pre.size());  // sysfs paths hold ':' too
  long ms = std::atol(spec.c_str() + colon + 1);
  return (!sub.empty() && path.find(sub) != std::string::npos && ms > 0) ? ms : 0;
}
#else
long slow_write_ms(const std::string&) { return 0; }
#endif

// In the forked child: every descriptor from `first` up is closed (flock()ed lock files above all:
// a writer stuck in the kernel must not hold the VM's locks). Async-signal-safe.
void close_from(unsigned first, long max_fd) {
  if (::syscall(SYS_close_range, first, ~0U, 0) == 0) return;
  for (long fd = first; fd < max_fd; ++fd) ::close(static_cast<int>(fd));  // kernels before 5.9
}

}  // namespace

// The write happens in a child process whose stdio is /dev/null and which holds no other
// descriptor of ours: if the kernel blocks in the driver's remove() for ever, only that child is
// stuck, never the hook, libvirtd's pipes or our locks.
// The writer: one child process per RealFs (one per event), started at the first guarded write,
// that does the writes it is sent, one at a time, and answers each with its errno. Forking once
// instead of once per write is what makes a bind cheap (a fork of the hook under emulation costs
// tens of milliseconds); what a write in the child guarantees stays the same: the hook only ever
// waits on a socket, with the deadline, never in the kernel.
//   request:  8 bytes: ms to sleep first (the slow-write fault point), then "<host path>\0<data>"
//   answer:   an int, the write's errno (0: done)
namespace {
constexpr size_t kMaxRequest = 64 * 1024;

[[noreturn]] void writer_loop(int sock) {
  static char req[kMaxRequest + 16];
  for (;;) {
    ssize_t n = ::recv(sock, req, sizeof req, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 8) ::_exit(0);  // the hook closed its end (or is gone): nothing more to write
    long slow_ms = 0;
    std::memcpy(&slow_ms, req, sizeof slow_ms);
    const char* path = req + 8;
    size_t plen = ::strnlen(path, static_cast<size_t>(n) - 8);
    int err = EINVAL;
    if (plen < static_cast<size_t>(n) - 8) {
      const char* data = path + plen + 1;
      size_t dlen = static_cast<size_t>(n) - 8 - plen - 1;
      if (slow_ms > 0) {
        timespec ts{static_cast<time_t>(slow_ms / 1000), (slow_ms % 1000) * 1000000L};
        while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
      }
      int fd = ::open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
      if (fd < 0) {
        err = errno;
      } else {
        ssize_t w;
        do w = ::write(fd, data, dlen); while (w < 0 && errno == EINTR);
        err = w < 0 ? errno : 0;
        ::close(fd);
      }
    }
    while (::send(sock, &err, sizeof err, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
  }
}
}  // namespace

RealFs::~RealFs() { stop_writer(); }

// Ends an idle writer: it sees the closed socket and exits; reaped with a short bound.
void RealFs::stop_writer() {
  if (writer_fd_ >= 0) ::close(writer_fd_);
  writer_fd_ = -1;
  if (writer_pid_ > 0) {
    pid_t pid = writer_pid_;
    auto reaped = [&] {
      pid_t r = ::waitpid(pid, nullptr, WNOHANG);
      return r == pid || (r < 0 && errno == ECHILD);
    };
    RealClock c;
    wait_until(Deadline(c, 200), reaped);
  }
  writer_pid_ = -1;
}

Status RealFs::start_writer(const std::string& path) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return sys_error("cannot start the writer for " + path, path, errno);
  rlimit rl{};
  long max_fd = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (1u << 20)
                    ? static_cast<long>(rl.rlim_cur)
                    : 65536;
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    return sys_error("cannot fork the writer for " + path, path, e);
  }
  if (pid == 0) {
    // stdio on /dev/null, its socket on fd 3, every other inherited descriptor closed: never
    // libvirtd's pipes, never the hook's flock()ed lock files.
    int nul = ::open("/dev/null", O_RDWR);
    if (nul >= 0) {
      ::dup2(nul, 0);
      ::dup2(nul, 1);
      ::dup2(nul, 2);
    }
    if (::dup2(sv[1], 3) != 3) ::_exit(1);  // dup2 clears close-on-exec; nothing is exec'ed anyway
    close_from(4, max_fd);
    writer_loop(3);
  }
  ::close(sv[1]);
  writer_fd_ = sv[0];
  writer_pid_ = pid;
  return Status::success();
}

Status RealFs::write_guarded(const std::string& path, std::string_view data, const Deadline& d) {
  if (d.expired()) {
    // Nothing is started: a write begun now could only be abandoned at once and land later.
    Error e;
    e.what = "writing '" + trim(data) + "' to " + path + " was not started";
    e.why = "the deadline had already passed";
    e.timed_out = true;
    return e;
  }
  // The writer opens by host path with every link already resolved (inside the root).
  std::string p = resolved_host_path(path);
  if (p.empty()) return sys_error("cannot write '" + trim(data) + "' to " + path, path, errno);
  long slow_ms = slow_write_ms(path);
  std::string req(8, '\0');
  std::memcpy(req.data(), &slow_ms, sizeof slow_ms);
  req += p;
  req += '\0';
  req.append(data.data(), data.size());
  if (req.size() > kMaxRequest) return sys_error("cannot write " + std::to_string(data.size()) + " bytes to " + path, path, E2BIG);
  // Send; a writer that died (killed from outside) is replaced once.
  for (int attempt = 0;; ++attempt) {
    if (writer_fd_ < 0)
      if (auto s = start_writer(path); !s) return s;
    ssize_t n;
    do n = ::send(writer_fd_, req.data(), req.size(), MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(req.size())) break;
    int e = errno;
    stop_writer();
    if (attempt == 1) return sys_error("cannot hand a write to " + path + " to the writer", path, e);
  }
  // Wait for the answer on the socket, never longer than the deadline.
  int err = 0;
  bool answered = false;
  for (;;) {
    Millis left = d.remaining();
    pollfd pfd{writer_fd_, POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(std::min<Millis>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r > 0) {
      ssize_t n;
      do n = ::recv(writer_fd_, &err, sizeof err, 0); while (n < 0 && errno == EINTR);
      answered = n == static_cast<ssize_t>(sizeof err);
      break;
    }
    if (d.expired()) break;
  }
  if (!answered) {
    // Still in the kernel at the deadline (or the writer died). SIGKILL ends a writer in an
    // interruptible wait; one in D state stays in the kernel and its write can still land: the
    // caller must check the real state (may_complete). The slow-write fault point models the D
    // state: that writer is not killed and completes late. The next write gets a new writer.
    pid_t pid = writer_pid_;
    if (writer_fd_ >= 0) ::close(writer_fd_);
    writer_fd_ = -1;
    writer_pid_ = -1;
    auto reaped = [&] {
      pid_t r = ::waitpid(pid, nullptr, WNOHANG);
      return r == pid || (r < 0 && errno == ECHILD);
    };
    if (slow_ms == 0) {
      ::kill(pid, SIGKILL);
      RealClock c;
      wait_until(Deadline(c, 100), reaped);  // a killed writer is reaped: it no longer looks alive
    }
    Error e;
    e.what = "writing '" + trim(data) + "' to " + path + " did not finish";
    e.why = "the kernel was still in the write at the deadline (writer pid " + std::to_string(pid) +
            "); it may still complete";
    e.timed_out = true;
    e.may_complete = true;
    e.pending_pid = static_cast<int>(pid);
    return e;
  }
  if (err != 0) return sys_error("cannot write '" + trim(data) + "' to " + path, path, err);
  return Status::success();
}

Result<OpenedFile> RealFs::read_nofollow(const std::string& path) {
  int fd = open_path(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    int e = errno;
    Error err = sys_error("cannot read " + path, path, e);
    if (e == ELOOP) err.why = path + " is a symbolic link";
    return err;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return sys_error("cannot read " + path, path, e);
  }
  OpenedFile f;
  f.info.type = S_ISREG(st.st_mode) ? FileType::regular : S_ISDIR(st.st_mode) ? FileType::directory : FileType::other;
  f.info.mode = st.st_mode & 07777;
  f.info.uid = st.st_uid;
  f.info.gid = st.st_gid;
  f.info.size = st.st_size;
  if (f.info.type != FileType::regular) {
    ::close(fd);
    Error err = sys_error("cannot read " + path, path, EINVAL);
    err.why = path + " is not a regular file";
    return err;
  }
  int e = read_all(fd, f.content);
  ::close(fd);
  if (e) return sys_error("cannot read " + path, path, e);
  return f;
}

Result<std::string> RealFs::readlink(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n;
  if (root_.empty()) {
    n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  } else {
    int fd = open_path(path, O_PATH | O_NOFOLLOW);
    if (fd < 0) return sys_error("cannot read link " + path, path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISLNK(st.st_mode)) {
      ::close(fd);
      return sys_error("cannot read link " + path, path, EINVAL);
    }
    n = ::readlinkat(fd, "", buf, sizeof buf - 1);
    int e = errno;
    ::close(fd);
    errno = e;
  }
  if (n < 0) return sys_error("cannot read link " + path, path, errno);
  return std::string(buf, static_cast<size_t>(n));
}

Result<std::string> RealFs::canonical(const std::string& path) {
  std::string r = resolved_host_path(path);
  if (r.empty()) return sys_error("cannot resolve " + path, path, errno);
  // Resolved inside the root: strip it back off.
  if (!root_.empty() && r.compare(0, root_.size(), root_) == 0) r = r.substr(root_.size());
  if (r.empty()) r.assign(1, '/');  // not r = "/": g++ 12 -O3 warns -Wrestrict (a false positive) there
  return r;
}

Result<std::vector<std::string>> RealFs::list(const std::string& path) {
  int fd = open_path(path, O_RDONLY | O_DIRECTORY);
  if (fd < 0) return sys_error("cannot list " + path, path, errno);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    int e = errno;
    ::close(fd);
    return sys_error("cannot list " + path, path, e);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

FileInfo RealFs::stat(const std::string& path, bool follow) {
  struct stat st {};
  FileInfo fi;
  int r;
  if (root_.empty()) {
    r = follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st);
  } else {
    int fd = open_path(path, O_PATH | (follow ? 0 : O_NOFOLLOW));
    r = fd < 0 ? -1 : ::fstat(fd, &st);
    if (fd >= 0) ::close(fd);
  }
  if (r != 0) return fi;
  if (S_ISREG(st.st_mode)) fi.type = FileType::regular;
  else if (S_ISDIR(st.st_mode)) fi.type = FileType::directory;
  else if (S_ISLNK(st.st_mode)) fi.type = FileType::symlink;
  else fi.type = FileType::other;
  fi.mode = st.st_mode & 07777;
  fi.uid = st.st_uid;
  fi.gid = st.st_gid;
  fi.size = st.st_size;
  return fi;
}

Status RealFs::make_dirs(const std::string& path, unsigned mode) {
  std::string cur;
  size_t i = 1;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    cur = path.substr(0, j);
    i = j + 1;
    if (cur.empty()) continue;
    std::string p = host_path(cur);
    struct stat st {};
    if (::lstat(p.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) return sys_error("refusing a symlink in a state path", cur, ELOOP);
      if (!S_ISDIR(st.st_mode)) return sys_error("cannot create " + path, cur, ENOTDIR);
      continue;
    }
    if (::mkdir(p.c_str(), mode) != 0) {
      if (errno != EEXIST) return sys_error("cannot create " + cur, cur, errno);
    } else {
      ::chmod(p.c_str(), mode);  // exactly `mode`, whatever the umask
    }
  }
  return Status::success();
}

Status RealFs::write_atomic(const std::string& path, std::string_view data, unsigned mode) {
  std::string p = host_path(path);
  std::string dir = dirname_of(p);
  std::string tmp = p + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return sys_error("cannot create " + path, path, errno);
  ::fchmod(fd, mode);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return sys_error("cannot write " + path, path, e);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return sys_error("cannot flush " + path, path, e);
  }
  ::close(fd);
  struct stat st {};
  if (::lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    ::unlink(tmp.c_str());
    return sys_error("refusing to replace a symlink", path, ELOOP);
  }
  if (::rename(tmp.c_str(), p.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return sys_error("cannot replace " + path, path, e);
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::success();
}

Status RealFs::create_sized(const std::string& path, long long size, unsigned mode, unsigned uid, unsigned gid) {
  std::string p = host_path(path);
  std::string dir = dirname_of(p);
  if (size < 0) return sys_error("cannot create " + path, path, EINVAL);
  // The directory itself is opened without following a link, then the file relative to it.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return sys_error("cannot open the directory of " + path, dirname_of(path), errno);
  std::string name = basename_of(p);
  int fd = ::openat(dfd, name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    int e = errno;
    ::close(dfd);
    return sys_error("cannot create " + path, path, e);
  }
  auto fail = [&](const char* what) {
    int e = errno;
    ::close(fd);
    ::unlinkat(dfd, name.c_str(), 0);
    ::close(dfd);
    return sys_error(std::string(what) + " " + path, path, e);
  };
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return fail("cannot size");
  if (::fchown(fd, uid, gid) != 0) return fail("cannot chown");
  if (::fchmod(fd, mode & 07777) != 0) return fail("cannot chmod");
  ::close(fd);
  ::close(dfd);
  return Status::success();
}

Status RealFs::remove(const std::string& path) {
  std::string p = host_path(path);
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) return sys_error("cannot remove " + path, path, errno);
  return Status::success();
}

Millis RealClock::now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Millis>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void RealClock::sleep_ms(Millis ms) {
  if (ms <= 0) return;
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

std::string RealClock::wall_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
  return buf;
}

Status RealSignals::kill(int pid, int sig) {
  if (pid <= 1) return sys_error("refusing to signal pid " + std::to_string(pid), "kill", EPERM);
  if (::kill(pid, sig) != 0 && errno != ESRCH)
    return sys_error("cannot signal process " + std::to_string(pid), "kill", errno);
  return Status::success();
}

Result<bool> RealSignals::signal_process(int pid, const std::string& start_time, int sig) {
  if (pid <= 1) return sys_error("refusing to signal pid " + std::to_string(pid), "kill", EPERM);
  if (start_time.empty()) {
    Error e = sys_error("refusing to signal process " + std::to_string(pid), "kill", EINVAL);
    e.why = "its start time is unknown, so a reused pid could not be told apart";
    return e;
  }
  // Pin the process first: from here on the pidfd names this process even if it exits and its
  // pid is reused. Then make sure it is the one we mean, and signal through the pidfd.
  // Raw syscalls: glibc 2.36's <sys/pidfd.h> lacks extern "C" and does not link from C++.
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    if (errno == ESRCH) return false;
    return sys_error("cannot signal process " + std::to_string(pid), "pidfd_open", errno);
  }
  RealFs live("/");
  if (start_time_of(live, pid) != start_time) {
    ::close(fd);
    return false;  // gone (or a zombie), or the pid now names another process
  }
  int r = static_cast<int>(::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0));
  int e = errno;
  ::close(fd);
  if (r != 0) {
    if (e == ESRCH) return false;
    return sys_error("cannot signal process " + std::to_string(pid), "pidfd_send_signal", e);
  }
  return true;
}

int RealSignals::self_pid() { return static_cast<int>(::getpid()); }

namespace {
class FdLock : public LockHandle {
 public:
  explicit FdLock(int fd) : fd_(fd) {}
  ~FdLock() override { ::close(fd_); }

 private:
  int fd_;
};
}  // namespace

Result<std::unique_ptr<LockHandle>> RealLocker::lock(const std::string& path, const Deadline& d) {
  std::string p = fs_.host_path(path);
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return sys_error("cannot open lock " + path, path, errno);
  bool got = wait_until(d, [&] { return ::flock(fd, LOCK_EX | LOCK_NB) == 0; });
  if (!got) {
    ::close(fd);
    Error e;
    e.what = "lock " + path + " is held by another gpuhook";
    e.why = "it was not released before the deadline";
    e.hint = "see `gpuhook status`; a hook of another VM is still running";
    e.timed_out = true;
    return e;
  }
  return std::unique_ptr<LockHandle>(new FdLock(fd));
}

RealHost::RealHost(const std::string& root) : fs(root), runner(make_process_runner()), locker(fs) {}

}  // namespace gpuhook

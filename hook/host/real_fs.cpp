#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

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

Result<std::string> RealFs::read(const std::string& path) {
  std::string p = host_path(path);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return sys_error("cannot read " + path, path, errno);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return sys_error("cannot read " + path, path, e);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (16u << 20)) break;  // no host file we read is this large
  }
  ::close(fd);
  return out;
}

Status RealFs::write(const std::string& path, std::string_view data) {
  std::string p = host_path(path);
  int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return sys_error("cannot write " + path, path, errno);
  ssize_t n;
  do n = ::write(fd, data.data(), data.size()); while (n < 0 && errno == EINTR);
  int e = errno;
  ::close(fd);
  if (n < 0) return sys_error("cannot write '" + trim(data) + "' to " + path, path, e);
  return Status::success();
}

// The write happens in a child process whose stdio is /dev/null: if the kernel blocks in the
// driver's remove() for ever, only that child is stuck, never the hook nor libvirtd's pipes.
Status RealFs::write_guarded(const std::string& path, std::string_view data, const Deadline& d) {
  std::string p = host_path(path);
  std::string buf(data);
  pid_t pid = ::fork();
  if (pid < 0) return sys_error("cannot fork for a write to " + path, path, errno);
  if (pid == 0) {
    int nul = ::open("/dev/null", O_RDWR);
    if (nul >= 0) { ::dup2(nul, 0); ::dup2(nul, 1); ::dup2(nul, 2); }
    int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) ::_exit(errno & 0xff);
    ssize_t n;
    do n = ::write(fd, buf.data(), buf.size()); while (n < 0 && errno == EINTR);
    ::_exit(n < 0 ? (errno & 0xff) : 0);
  }
  int status = 0;
  bool done = wait_until(d, [&] {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    return r == pid || (r < 0 && errno == ECHILD);
  });
  if (!done) {
    ::kill(pid, SIGKILL);  // may stay in the kernel (D state); it holds nothing of ours
    Error e;
    e.what = "writing '" + trim(data) + "' to " + path + " did not finish";
    e.why = "the kernel is still blocked in the write after the deadline";
    e.timed_out = true;
    return e;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    return sys_error("cannot write '" + trim(data) + "' to " + path, path, WEXITSTATUS(status));
  if (!WIFEXITED(status)) {
    Error e;
    e.what = "writing '" + trim(data) + "' to " + path + " was interrupted";
    return e;
  }
  return Status::success();
}

Result<std::string> RealFs::readlink(const std::string& path) {
  std::string p = host_path(path);
  char buf[PATH_MAX];
  ssize_t n = ::readlink(p.c_str(), buf, sizeof buf - 1);
  if (n < 0) return sys_error("cannot read link " + path, path, errno);
  return std::string(buf, static_cast<size_t>(n));
}

Result<std::string> RealFs::canonical(const std::string& path) {
  std::string p = host_path(path);
  char buf[PATH_MAX];
  if (!::realpath(p.c_str(), buf)) return sys_error("cannot resolve " + path, path, errno);
  std::string r = buf;
  // Absolute links inside a captured tree point at host paths; strip the root back off.
  if (!root_.empty() && r.compare(0, root_.size(), root_) == 0) r = r.substr(root_.size());
  if (r.empty()) r = "/";
  return r;
}

Result<std::vector<std::string>> RealFs::list(const std::string& path) {
  std::string p = host_path(path);
  DIR* d = ::opendir(p.c_str());
  if (!d) return sys_error("cannot list " + path, path, errno);
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
  std::string p = host_path(path);
  struct stat st {};
  FileInfo fi;
  int r = follow ? ::stat(p.c_str(), &st) : ::lstat(p.c_str(), &st);
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
      if (S_ISLNK(st.st_mode) && cur.rfind("/run/gpuhook", 0) == 0)
        return sys_error("refusing a symlink in a state path", cur, ELOOP);
      continue;
    }
    if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) return sys_error("cannot create " + cur, cur, errno);
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

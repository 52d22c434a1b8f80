// Fs: every read and write of the host's files (sysfs, procfs, /dev, /etc, /run, /var/log) goes
// through this interface. Paths are absolute host paths ("/sys/bus/pci/devices/..."); the real
// implementation resolves them under a root directory (--root), the fake keeps an in-memory tree
// that models the kernel's semantics (FakeHost).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "host/clock.h"
#include "host/error.h"

namespace gpuhook {

enum class FileType { missing, regular, directory, symlink, other };

struct FileInfo {
  FileType type = FileType::missing;
  unsigned mode = 0;   // permission bits
  unsigned uid = 0;
  unsigned gid = 0;
  long long size = 0;
};

// A file read through one descriptor: its bytes and what fstat() said about that descriptor.
struct OpenedFile {
  std::string content;
  FileInfo info;
};

class Fs {
 public:
  virtual ~Fs() = default;

  // Whole content of a file (sysfs attribute, /proc file, profile). Follows links.
  virtual Result<std::string> read(const std::string& path) = 0;
  // Like `echo -n data > path`: one open and one write(2), no truncation games. For sysfs attributes.
  virtual Status write(const std::string& path, std::string_view data) = 0;
  // A write into the kernel that may block for ever (driver unbind/probe): done where the deadline
  // can still fire. On expiry returns an Error with timed_out set; when the write had started
  // (a writer was still in the kernel) also may_complete and pending_pid: the write may still
  // land later, the caller must check the real state. A deadline already expired starts nothing:
  // timed_out without may_complete.
  virtual Status write_guarded(const std::string& path, std::string_view data, const Deadline& d) = 0;
  // A file that root trusts (profile, global config): opened without following a symlink in the
  // last component (a link is refused with ELOOP), read, and described by fstat() of that same
  // descriptor, so the checked file is the read file. Regular files only (else EINVAL).
  virtual Result<OpenedFile> read_nofollow(const std::string& path) = 0;
  // Raw target of a symlink.
  virtual Result<std::string> readlink(const std::string& path) = 0;
  // Absolute host path with every link resolved (realpath), still relative to the root.
  virtual Result<std::string> canonical(const std::string& path) = 0;
  // Names in a directory, sorted, without . and ..
  virtual Result<std::vector<std::string>> list(const std::string& path) = 0;
  // lstat when follow is false.
  virtual FileInfo stat(const std::string& path, bool follow = true) = 0;
  bool exists(const std::string& path) { return stat(path).type != FileType::missing; }
  bool is_dir(const std::string& path) { return stat(path).type == FileType::directory; }

  // State files of our own (journal, claims): never through a symlink, atomically replaced
  // (write to a temporary file, fsync, rename, fsync the directory), created with `mode`.
  virtual Status write_atomic(const std::string& path, std::string_view data, unsigned mode) = 0;
  // Creates missing directories with `mode`; refuses a path component that is a symlink.
  virtual Status make_dirs(const std::string& path, unsigned mode) = 0;
  // Removes a file; a missing file is success.
  virtual Status remove(const std::string& path) = 0;
  // A new file of `size` bytes (sparse, as ftruncate makes it) with exactly this owner, group and
  // mode: created exclusively (an existing file or a symlink at path is an error, EEXIST), never
  // through a symlink in its directory's last component either. For shared memory files
  // (/dev/shm/looking-glass). An Fs that cannot do it says so.
  virtual Status create_sized(const std::string& path, long long size, unsigned mode, unsigned uid, unsigned gid) {
    (void)size, (void)mode, (void)uid, (void)gid;
    Error e;
    e.what = "cannot create " + path;
    e.why = "this file system interface cannot create sized files";
    return e;
  }
};

// Helpers over any Fs.
std::string trim(std::string_view s);
// First line of a file without the trailing newline, or fallback when unreadable.
std::string read_attr(Fs& fs, const std::string& path, const std::string& fallback = "");
// Last path component of a link target ("../../bus/pci/drivers/nvidia" -> "nvidia"), or "" if none.
std::string link_name(Fs& fs, const std::string& path);
std::string basename_of(std::string_view path);
std::string dirname_of(std::string_view path);
// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), "" when there is no such
// process or it has exited (a zombie). With the pid it names one process for good: a pid can be
// reused, this pair cannot.
std::string start_time_of(Fs& fs, int pid);

}  // namespace gpuhook

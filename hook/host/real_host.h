// Real implementations of the host interfaces. Every absolute path is resolved under `root`
// ("/" on a live machine; a captured tree in tests and bug reports).
#pragma once
#include <memory>
#include <string>

#include "host/host.h"

namespace gpuhook {

class RealFs : public Fs {
 public:
  explicit RealFs(std::string root = "/");
  ~RealFs() override;
  RealFs(const RealFs&) = delete;
  RealFs& operator=(const RealFs&) = delete;
  Result<std::string> read(const std::string& path) override;
  Status write(const std::string& path, std::string_view data) override;
  Status write_guarded(const std::string& path, std::string_view data, const Deadline& d) override;
  Result<OpenedFile> read_nofollow(const std::string& path) override;
  Result<std::string> readlink(const std::string& path) override;
  Result<std::string> canonical(const std::string& path) override;
  Result<std::vector<std::string>> list(const std::string& path) override;
  FileInfo stat(const std::string& path, bool follow = true) override;
  Status write_atomic(const std::string& path, std::string_view data, unsigned mode) override;
  Status make_dirs(const std::string& path, unsigned mode) override;
  Status create_sized(const std::string& path, long long size, unsigned mode, unsigned uid, unsigned gid) override;
  Status remove(const std::string& path) override;
  const std::string& root() const { return root_; }
  std::string host_path(const std::string& path) const;  // root + path

 private:
  int open_path(const std::string& path, int flags) const;
  std::string resolved_host_path(const std::string& path) const;

 private:
  std::string root_;  // without trailing slash; "" for "/"
  // The writer process of write_guarded (real_fs.cpp), -1 until the first guarded write.
  Status start_writer(const std::string& path);
  void stop_writer();
  int writer_fd_ = -1;
  int writer_pid_ = -1;
};

class RealClock : public Clock {
 public:
  Millis now_ms() override;
  void sleep_ms(Millis ms) override;
  std::string wall_time() override;
};

class RealSignals : public Signals {
 public:
  Status kill(int pid, int sig) override;
  Result<bool> signal_process(int pid, const std::string& start_time, int sig) override;
  int self_pid() override;
};

class RealLocker : public Locker {
 public:
  explicit RealLocker(RealFs& fs) : fs_(fs) {}
  Result<std::unique_ptr<LockHandle>> lock(const std::string& path, const Deadline& d) override;

 private:
  RealFs& fs_;
};

// Boost.Process v2 runner (process_runner.cpp).
std::unique_ptr<Runner> make_process_runner();

// Everything real, owned together.
struct RealHost {
  explicit RealHost(const std::string& root);
  RealFs fs;
  std::unique_ptr<Runner> runner;
  RealClock clock;
  RealSignals signals;
  RealLocker locker;
  Host host() { return Host{fs, *runner, clock, signals, locker}; }
};

}  // namespace gpuhook

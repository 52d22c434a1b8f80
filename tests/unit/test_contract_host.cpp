// One contract for the effect boundary, run against the real implementations (RealFs on a temporary
// root, RealSignals, RealLocker, the real ProcessRunner) and against the fakes (FakeHost), so that
// a fake that behaves differently from the real thing fails here instead of hiding a bug in every
// other test. Each TEST_P states the rule; both implementations must pass it. Tests that only the
// real thing can run (programs, processes, two processes and a lock) are plain TESTs at the end.
// Kernel-model rules (sysfs driver_override) are tested on their own, with their source.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "fake/fake_host.h"
#include "host/real_host.h"

namespace gpuhook {
namespace {

namespace stdfs = std::filesystem;

// What a contract test needs from an implementation: the interfaces, plus setup and inspection
// that go around them (putting files in place, seeing what a write really left).
class Impl {
 public:
  virtual ~Impl() = default;
  virtual Fs& fs() = 0;
  virtual Clock& clock() = 0;
  virtual Signals& signals() = 0;
  virtual Locker& locker() = 0;
  // Where /proc of the processes Signals acts on is read (start_time_of).
  virtual Fs& proc() = 0;
  virtual void put_file(const std::string& p, const std::string& data, unsigned mode = 0644) = 0;
  virtual void put_dir(const std::string& p) = 0;
  virtual void put_link(const std::string& p, const std::string& target) = 0;
  // A path where a guarded write blocks in an interruptible wait (real: a FIFO without a reader):
  // SIGKILL ends the writer and the write never happens.
  virtual void make_blocking(const std::string& p) = 0;
  // What a blocking path received once it is unblocked ("" when nothing).
  virtual std::string drain_blocking(const std::string& p) = 0;
  // A regular file whose guarded write blocks in D state and lands after `ms` (real: the
  // slow-write fault point); false when this build cannot do it.
  virtual bool make_late(const std::string& p, int ms) = 0;
  // Waits until the late writes have landed (the fake: lets them land now).
  virtual void land_late_writes() = 0;
  // A process to signal: its pid; alive(pid) tells whether it still runs.
  virtual int spawn() = 0;
  virtual bool alive(int pid) = 0;
  virtual std::string name() const = 0;
};

class RealImpl : public Impl {
 public:
  RealImpl() {
    char t[] = "/tmp/gpuhook-contract-XXXXXX";
    dir_ = ::mkdtemp(t);
    fs_ = std::make_unique<RealFs>(dir_.string());
    locker_ = std::make_unique<RealLocker>(*fs_);
  }
  ~RealImpl() override {
    ::unsetenv("GPUHOOK_FAULT");
    for (int pid : children_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    stdfs::remove_all(dir_);
  }
  Fs& fs() override { return *fs_; }
  Clock& clock() override { return clock_; }
  Signals& signals() override { return signals_; }
  Locker& locker() override { return *locker_; }
  Fs& proc() override { return live_; }
  stdfs::path host(const std::string& p) { return dir_.string() + p; }
  void put_file(const std::string& p, const std::string& data, unsigned mode) override {
    stdfs::create_directories(host(p).parent_path());
    std::ofstream(host(p), std::ios::binary) << data;
    ::chmod(host(p).c_str(), mode);
  }
  void put_dir(const std::string& p) override { stdfs::create_directories(host(p)); }
  void put_link(const std::string& p, const std::string& target) override {
    stdfs::create_directories(host(p).parent_path());
    stdfs::create_symlink(target, host(p));
  }
  void make_blocking(const std::string& p) override {
    stdfs::create_directories(host(p).parent_path());
    ASSERT_EQ(::mkfifo(host(p).c_str(), 0600), 0);  // opening a FIFO for writing blocks without a reader
  }
  std::string drain_blocking(const std::string& p) override {
    int fd = ::open(host(p).c_str(), O_RDONLY | O_NONBLOCK);
    if (fd < 0) return "";
    char buf[64];
    ssize_t n = ::read(fd, buf, sizeof buf);
    ::close(fd);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  bool make_late(const std::string& p, int ms) override {
#ifdef GPUHOOK_FAULT_POINTS
    ::setenv("GPUHOOK_FAULT", ("slow-write:" + p + ":" + std::to_string(ms)).c_str(), 1);
    return true;
#else
    (void)p, (void)ms;
    return false;
#endif
  }
  void land_late_writes() override {
    // The late writer is our child: reaped once it has written, which is what we wait for.
    RealClock c;
    wait_until(Deadline(c, 5000), [] {
      pid_t r = ::waitpid(-1, nullptr, WNOHANG);
      return r < 0 && errno == ECHILD;
    });
    ::unsetenv("GPUHOOK_FAULT");
  }
  int spawn() override {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::pause();
      ::_exit(0);
    }
    children_.push_back(pid);
    return pid;
  }
  bool alive(int pid) override {
    // Our child: reap it if it died, then look.
    ::waitpid(pid, nullptr, WNOHANG);
    return !start_time_of(live_, pid).empty();
  }
  std::string name() const override { return "real"; }

 private:
  stdfs::path dir_;
  std::unique_ptr<RealFs> fs_;
  RealFs live_{"/"};
  RealClock clock_;
  RealSignals signals_;
  std::unique_ptr<RealLocker> locker_;
  std::vector<int> children_;
};

class FakeImpl : public Impl {
 public:
  Fs& fs() override { return h_.fs; }
  Clock& clock() override { return h_.clock; }
  Signals& signals() override { return h_.signals; }
  Locker& locker() override { return h_.locker; }
  Fs& proc() override { return h_.fs; }
  void put_file(const std::string& p, const std::string& data, unsigned mode) override { h_.fs.put_file(p, data, mode); }
  void put_dir(const std::string& p) override { h_.fs.put_dir(p); }
  void put_link(const std::string& p, const std::string& target) override { h_.fs.put_link(p, target); }
  void make_blocking(const std::string& p) override {
    h_.fs.put_file(p, "");
    h_.kernel.fault_write(p, FakeKernel::Fault::hang);
  }
  std::string drain_blocking(const std::string& p) override { return *h_.fs.read(p); }
  bool make_late(const std::string& p, int) override {
    h_.kernel.fault_write(p, FakeKernel::Fault::late);
    return true;
  }
  void land_late_writes() override { h_.kernel.complete_late_writes(); }
  int spawn() override {
    h_.kernel.add_process({next_pid_, "sleeper", {}, false, ""});
    return next_pid_++;
  }
  bool alive(int pid) override { return h_.kernel.process_alive(pid); }
  std::string name() const override { return "fake"; }

 private:
  FakeHost h_;
  int next_pid_ = 5000;
};

using Factory = std::unique_ptr<Impl> (*)();
std::unique_ptr<Impl> make_real() { return std::make_unique<RealImpl>(); }
std::unique_ptr<Impl> make_fake() { return std::make_unique<FakeImpl>(); }

class Contract : public ::testing::TestWithParam<Factory> {
 protected:
  void SetUp() override { impl = GetParam()(); }
  std::unique_ptr<Impl> impl;
  Fs& fs() { return impl->fs(); }
  Deadline deadline(Millis ms) { return Deadline(impl->clock(), ms); }
};

// --- Fs: bytes ---------------------------------------------------------------------------------

TEST_P(Contract, WriteStoresExactlyTheBytesOnARegularFile) {
  // A regular file keeps what was written, byte for byte: trailing newline, spaces, a shorter
  // value over a longer one, nothing at all. (Trimming is the kernel model's business: sysfs.)
  impl->put_file("/data/f", "a much longer old value\n");
  ASSERT_TRUE(fs().write("/data/f", " vfio-pci \n"));
  EXPECT_EQ(*fs().read("/data/f"), " vfio-pci \n");
  ASSERT_TRUE(fs().write("/data/f", "x"));
  EXPECT_EQ(*fs().read("/data/f"), "x");
  ASSERT_TRUE(fs().write("/data/f", ""));
  EXPECT_EQ(*fs().read("/data/f"), "");
  ASSERT_TRUE(fs().write("/data/f", std::string("a\0b\n", 4)));
  EXPECT_EQ(*fs().read("/data/f"), std::string("a\0b\n", 4));
}

TEST_P(Contract, WriteNeverCreatesAFile) {
  auto s = fs().write("/data/missing", "1");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ENOENT);
  EXPECT_FALSE(fs().exists("/data/missing"));
  auto r = fs().read("/data/missing");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOENT);
}

// --- Fs: links, listing, stat ------------------------------------------------------------------

TEST_P(Contract, AbsoluteAndRelativeLinksResolveInsideTheRoot) {
  // sysfs-like: /sys/bus/pci/devices/X -> /sys/devices/pci0000:00/X (absolute, as FakeKernel
  // makes them) and a relative driver link; an absolute target never leaves the root.
  impl->put_file("/sys/devices/pci0000:00/0000:01:00.0/vendor", "0x10de\n");
  impl->put_dir("/sys/bus/pci/drivers/nvidia");
  impl->put_link("/sys/bus/pci/devices/0000:01:00.0", "/sys/devices/pci0000:00/0000:01:00.0");
  impl->put_link("/sys/devices/pci0000:00/0000:01:00.0/driver", "../../../bus/pci/drivers/nvidia");
  impl->put_link("/etc/escape", "/etc");  // on the real root /etc has passwd; inside ours it does not
  EXPECT_EQ(*fs().canonical("/sys/bus/pci/devices/0000:01:00.0"), "/sys/devices/pci0000:00/0000:01:00.0");
  EXPECT_EQ(*fs().canonical("/sys/bus/pci/devices/0000:01:00.0/driver"), "/sys/bus/pci/drivers/nvidia");
  EXPECT_EQ(*fs().read("/sys/bus/pci/devices/0000:01:00.0/vendor"), "0x10de\n");
  EXPECT_EQ(fs().stat("/sys/bus/pci/devices/0000:01:00.0").type, FileType::directory);
  EXPECT_EQ(fs().stat("/sys/bus/pci/devices/0000:01:00.0", false).type, FileType::symlink);
  EXPECT_EQ(*fs().readlink("/sys/bus/pci/devices/0000:01:00.0"), "/sys/devices/pci0000:00/0000:01:00.0")
      << "readlink gives the raw target";
  EXPECT_EQ(*fs().readlink("/sys/bus/pci/devices/0000:01:00.0/driver"), "../../../bus/pci/drivers/nvidia");
  EXPECT_EQ(link_name(fs(), "/sys/bus/pci/devices/0000:01:00.0/driver"), "nvidia");
  EXPECT_FALSE(fs().exists("/etc/escape/passwd"));
  auto nl = fs().readlink("/sys/devices/pci0000:00/0000:01:00.0/vendor");
  ASSERT_FALSE(nl);
  EXPECT_EQ(nl.error().code, EINVAL) << "readlink of a regular file";
  EXPECT_FALSE(fs().canonical("/sys/bus/pci/devices/0000:09:00.0"));
}

TEST_P(Contract, ListIsSortedWithoutDotEntries) {
  impl->put_file("/d/b", "");
  impl->put_file("/d/a", "");
  impl->put_dir("/d/c");
  impl->put_link("/d/0", "/d/a");
  EXPECT_EQ(*fs().list("/d"), (std::vector<std::string>{"0", "a", "b", "c"}));
  auto f = fs().list("/d/a");
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, ENOTDIR);
  auto m = fs().list("/nothing");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ENOENT);
}

TEST_P(Contract, StatReportsTypeModeAndSize) {
  impl->put_file("/d/f", "12345", 0640);
  impl->put_link("/d/l", "/d/f");
  impl->put_link("/d/dangling", "/d/none");
  FileInfo f = fs().stat("/d/f");
  EXPECT_EQ(f.type, FileType::regular);
  EXPECT_EQ(f.mode, 0640u);
  EXPECT_EQ(f.size, 5);
  EXPECT_EQ(fs().stat("/d/l").type, FileType::regular);
  EXPECT_EQ(fs().stat("/d/l", false).type, FileType::symlink);
  EXPECT_EQ(fs().stat("/d/dangling").type, FileType::missing);
  EXPECT_EQ(fs().stat("/d/dangling", false).type, FileType::symlink);
  EXPECT_EQ(fs().stat("/d").type, FileType::directory);
}

// --- Fs: state files ---------------------------------------------------------------------------

TEST_P(Contract, WriteAtomicReplacesWithTheModeAndNeverThroughALink) {
  impl->put_dir("/run/gpuhook");
  ASSERT_TRUE(fs().write_atomic("/run/gpuhook/j", "one\n", 0600));
  ASSERT_TRUE(fs().write_atomic("/run/gpuhook/j", "2\n", 0640));
  EXPECT_EQ(*fs().read("/run/gpuhook/j"), "2\n");
  EXPECT_EQ(fs().stat("/run/gpuhook/j").mode, 0640u);
  impl->put_file("/victim", "precious");
  impl->put_link("/run/gpuhook/evil", "/victim");
  auto s = fs().write_atomic("/run/gpuhook/evil", "x", 0600);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ELOOP);
  EXPECT_EQ(*fs().read("/victim"), "precious");
  EXPECT_EQ(fs().stat("/run/gpuhook/evil", false).type, FileType::symlink) << "the link is not replaced either";
  EXPECT_FALSE(fs().write_atomic("/run/none/j", "x", 0600)) << "the directory must exist";
}

// Looking Glass's shared memory (issue 16): exactly this size, owner, group and mode; exclusive;
// never through a link, neither at the file nor at its directory.
TEST_P(Contract, CreateSizedMakesANewFileWithExactlyThatSizeOwnerAndModeAndNeverThroughALink) {
  impl->put_dir("/dev/shm");
  ASSERT_TRUE(fs().create_sized("/dev/shm/lg", 32ll << 20, 0660, 1234, 994));
  FileInfo f = fs().stat("/dev/shm/lg", false);
  EXPECT_EQ(f.type, FileType::regular);
  EXPECT_EQ(f.size, 32ll << 20);
  EXPECT_EQ(f.mode, 0660u);
  EXPECT_EQ(f.uid, 1234u);
  EXPECT_EQ(f.gid, 994u);
  auto again = fs().create_sized("/dev/shm/lg", 1, 0600, 0, 0);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, EEXIST) << "exclusive: an existing file is never reused or resized";
  EXPECT_EQ(fs().stat("/dev/shm/lg").size, 32ll << 20);
  impl->put_file("/victim", "precious");
  impl->put_link("/dev/shm/evil", "/victim");
  auto l = fs().create_sized("/dev/shm/evil", 4096, 0660, 1234, 994);
  ASSERT_FALSE(l);
  EXPECT_EQ(*fs().read("/victim"), "precious");
  EXPECT_EQ(fs().stat("/dev/shm/evil", false).type, FileType::symlink);
  EXPECT_FALSE(fs().create_sized("/none/lg", 4096, 0660, 0, 0)) << "the directory must exist";
}

TEST_P(Contract, MakeDirsCreatesWithTheModeAndRefusesSymlinks) {
  ASSERT_TRUE(fs().make_dirs("/run/gpuhook/claims", 0700));
  EXPECT_EQ(fs().stat("/run/gpuhook").mode, 0700u);
  EXPECT_EQ(fs().stat("/run/gpuhook/claims").type, FileType::directory);
  ASSERT_TRUE(fs().make_dirs("/run/gpuhook/claims", 0700)) << "existing directories are fine";
  impl->put_dir("/elsewhere");
  impl->put_link("/var/state", "/elsewhere");
  auto s = fs().make_dirs("/var/state/x", 0700);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ELOOP);
  EXPECT_FALSE(fs().exists("/elsewhere/x"));
  impl->put_file("/file", "");
  auto f = fs().make_dirs("/file/x", 0700);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().code, ENOTDIR);
}

TEST_P(Contract, RemoveOfAMissingFileSucceedsAndALinkIsRemovedNotItsTarget) {
  EXPECT_TRUE(fs().remove("/run/none"));
  impl->put_file("/d/target", "t");
  impl->put_link("/d/l", "/d/target");
  ASSERT_TRUE(fs().remove("/d/l"));
  EXPECT_EQ(fs().stat("/d/l", false).type, FileType::missing);
  EXPECT_EQ(*fs().read("/d/target"), "t");
  auto s = fs().remove("/d");
  ASSERT_FALSE(s) << "a directory is not removed";
  EXPECT_EQ(s.error().code, EISDIR);
}

// --- Fs: files root trusts ---------------------------------------------------------------------

TEST_P(Contract, ReadNofollowDescribesTheDescriptorItReadAndRefusesALink) {
  impl->put_file("/etc/gpuhook/vms/w.toml", "[gpu]\n", 0600);
  impl->put_link("/etc/gpuhook/vms/l.toml", "/etc/gpuhook/vms/w.toml");
  impl->put_link("/etc/cfg", "/etc/gpuhook");
  auto f = fs().read_nofollow("/etc/gpuhook/vms/w.toml");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->content, "[gpu]\n");
  EXPECT_EQ(f->info.type, FileType::regular);
  EXPECT_EQ(f->info.mode, 0600u);
  EXPECT_EQ(f->info.uid, ::geteuid());
  EXPECT_EQ(f->info.size, 6);
  auto l = fs().read_nofollow("/etc/gpuhook/vms/l.toml");
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code, ELOOP);
  auto d = fs().read_nofollow("/etc/gpuhook/vms");
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, EINVAL) << "a directory is not a regular file";
  auto m = fs().read_nofollow("/etc/gpuhook/vms/none.toml");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ENOENT);
  EXPECT_TRUE(fs().read_nofollow("/etc/cfg/vms/w.toml")) << "only the last component must not be a link";
}

// --- Fs: guarded writes ------------------------------------------------------------------------

TEST_P(Contract, GuardedWriteStoresTheBytesAndReportsTheErrno) {
  impl->put_file("/sys/x/attr", "old old old\n");
  ASSERT_TRUE(fs().write_guarded("/sys/x/attr", "new\n", deadline(5000)));
  EXPECT_EQ(*fs().read("/sys/x/attr"), "new\n");
  auto m = fs().write_guarded("/sys/x/none", "1", deadline(5000));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ENOENT);
  EXPECT_FALSE(m.error().timed_out);
  EXPECT_FALSE(fs().exists("/sys/x/none"));
  auto d = fs().write_guarded("/sys/x", "1", deadline(5000));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, EISDIR);
}

TEST_P(Contract, GuardedWriteWithAnExpiredDeadlineStartsNothing) {
  // No time left: nothing is started, so nothing can land later (may_complete stays false).
  impl->put_file("/sys/x/attr", "old\n");
  Deadline d = deadline(1);
  impl->clock().sleep_ms(5);
  ASSERT_TRUE(d.expired());
  auto s = fs().write_guarded("/sys/x/attr", "new\n", d);
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().timed_out);
  EXPECT_FALSE(s.error().may_complete);
  EXPECT_EQ(s.error().pending_pid, 0);
  impl->clock().sleep_ms(200);
  EXPECT_EQ(*fs().read("/sys/x/attr"), "old\n");
}

TEST_P(Contract, AGuardedWriteBlockedInAnInterruptibleWaitIsKilledAtTheDeadline) {
  // Its writer was alive at the deadline: timed_out, may_complete and its pid. SIGKILL ends an
  // interruptible wait, so the writer is gone right after and the data never arrives.
  impl->make_blocking("/sys/x/blocking");
  Millis t0 = impl->clock().now_ms();
  auto s = fs().write_guarded("/sys/x/blocking", "x", deadline(200));
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().timed_out);
  EXPECT_TRUE(s.error().may_complete);
  EXPECT_GT(s.error().pending_pid, 0);
  EXPECT_LT(impl->clock().now_ms() - t0, 2000);
  RealClock c;  // a killed process may take a moment to die on a loaded machine
  EXPECT_TRUE(wait_until(Deadline(c, 2000), [&] { return start_time_of(impl->proc(), s.error().pending_pid).empty(); }))
      << "the killed writer is gone";
  EXPECT_EQ(impl->drain_blocking("/sys/x/blocking"), "");
}

TEST_P(Contract, AGuardedWriteStuckInTheKernelMayCompleteAfterItsDeadline) {
  // A writer in D state (a driver that does not return) outlives the deadline and SIGKILL: the
  // Error says so, its pid names a live process, and later the write does land.
  impl->put_file("/sys/x/late", "before\n");
  if (!impl->make_late("/sys/x/late", 1500)) GTEST_SKIP() << "needs -DGPUHOOK_FAULT_POINTS=ON (slow-write)";
  auto s = fs().write_guarded("/sys/x/late", "after\n", deadline(100));
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().timed_out);
  EXPECT_TRUE(s.error().may_complete);
  ASSERT_GT(s.error().pending_pid, 0);
  EXPECT_NE(start_time_of(impl->proc(), s.error().pending_pid), "") << "the writer is still there";
  EXPECT_EQ(*fs().read("/sys/x/late"), "before\n");
  impl->land_late_writes();
  EXPECT_EQ(*fs().read("/sys/x/late"), "after\n") << "the write completed after its deadline";
  EXPECT_EQ(start_time_of(impl->proc(), s.error().pending_pid), "") << "and its writer is gone";
}

// --- Signals -----------------------------------------------------------------------------------

TEST_P(Contract, SignalsReachAProcessOnlyWithItsStartTime) {
  int pid = impl->spawn();
  std::string start = start_time_of(impl->proc(), pid);
  ASSERT_NE(start, "");
  auto wrong = impl->signals().signal_process(pid, start + "1", SIGKILL);
  ASSERT_TRUE(wrong);
  EXPECT_FALSE(*wrong) << "another start time is another process: not signalled";
  EXPECT_TRUE(impl->alive(pid));
  EXPECT_FALSE(impl->signals().signal_process(pid, "", SIGKILL)) << "no start time, no signal";
  EXPECT_TRUE(impl->alive(pid));
  auto right = impl->signals().signal_process(pid, start, SIGKILL);
  ASSERT_TRUE(right);
  EXPECT_TRUE(*right);
  RealClock c;
  EXPECT_TRUE(wait_until(Deadline(c, 2000), [&] { return !impl->alive(pid); }));
  auto again = impl->signals().signal_process(pid, start, SIGKILL);
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again) << "gone";
  EXPECT_FALSE(impl->signals().signal_process(1, "1", SIGKILL)) << "init is never signalled";
}

// --- Locker ------------------------------------------------------------------------------------

TEST_P(Contract, ALockIsExclusiveUntilItsHandleDies) {
  impl->put_dir("/run/gpuhook/locks");
  auto a = impl->locker().lock("/run/gpuhook/locks/vm", deadline(1000));
  ASSERT_TRUE(a);
  auto b = impl->locker().lock("/run/gpuhook/locks/vm", deadline(100));
  ASSERT_FALSE(b);
  EXPECT_TRUE(b.error().timed_out);
  auto other = impl->locker().lock("/run/gpuhook/locks/other", deadline(100));
  EXPECT_TRUE(other) << "locks are per path";
  a->reset();
  EXPECT_TRUE(impl->locker().lock("/run/gpuhook/locks/vm", deadline(100)));
}

INSTANTIATE_TEST_SUITE_P(Host, Contract, ::testing::Values(&make_real, &make_fake),
                         [](const ::testing::TestParamInfo<Factory>& i) { return i.param == &make_real ? "Real" : "Fake"; });

// --- Runner: what both implementations promise -------------------------------------------------

TEST(ContractRunner, BothRefuseRelativeAndMissingProgramsAndEmptyArgv) {
  RealClock rc;
  FakeHost fh;
  auto real = make_process_runner();
  std::vector<std::pair<Runner*, Clock*>> runners = {{real.get(), &rc}, {&fh.runner, &fh.clock}};
  for (auto [r, c] : runners) {
    EXPECT_FALSE(r->run({"./true"}, Deadline(*c, 1000))) << "a relative path is never run";
    EXPECT_FALSE(r->run({"bin/true"}, Deadline(*c, 1000)));
    auto m = r->run({"/nonexistent/gpuhook-prog"}, Deadline(*c, 1000));
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, ENOENT);
    EXPECT_FALSE(r->run({}, Deadline(*c, 1000)));
  }
}

TEST(ContractRunner, BothStartNothingWithAnExpiredDeadline) {
  // Real: a program that would create a file; fake: a handler that would count. Neither runs.
  char t[] = "/tmp/gpuhook-contract-XXXXXX";
  std::string dir = ::mkdtemp(t);
  RealClock rc;
  Deadline rd(rc, 1);
  rc.sleep_ms(5);
  auto r = make_process_runner()->run({"/bin/touch", dir + "/ran"}, rd);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->timed_out);
  EXPECT_FALSE(stdfs::exists(dir + "/ran"));
  stdfs::remove_all(dir);
  FakeHost fh;
  int ran = 0;
  fh.runner.programs["/bin/touch"] = [&](const std::vector<std::string>&, const Deadline&) {
    ++ran;
    return RunResult{0, false, false, "", ""};
  };
  Deadline fd(fh.clock, 1);
  fh.clock.advance(5);
  auto f = fh.runner.run({"/bin/touch", "/x"}, fd);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->timed_out);
  EXPECT_EQ(ran, 0);
}

// --- The kernel model: sysfs driver_override ---------------------------------------------------

// Source: Linux 6.1, drivers/base/driver.c driver_set_override() (called by pci's
// driver_override_store) and fs/sysfs/file.c sysfs_kf_write() ("if (!count) return 0": a 0-byte
// write never reaches store). driver_set_override: len >= PAGE_SIZE - 1 is -EINVAL; len =
// strlen(s) (a value ends at its first NUL; "\0\0" clears, the fix for DPDK's writes); an empty
// value clears; otherwise everything before the first '\n' is kept (cp != s), and "\n" alone
// clears. Reading prints the value and "\n", or "(null)\n" when cleared.
TEST(KernelModel, DriverOverrideStoreFollowsLinux61) {
  auto store = [](std::string cur, std::string_view data) {
    Status s = driver_override_store(cur, data, "/sys/bus/pci/devices/0000:01:00.0/driver_override");
    return s ? cur : "error " + std::to_string(s.error().code);
  };
  EXPECT_EQ(store("(null)\n", "vfio-pci"), "vfio-pci\n");
  EXPECT_EQ(store("(null)\n", "vfio-pci\n"), "vfio-pci\n");
  EXPECT_EQ(store("(null)\n", "vfio-pci\nnvidia\n"), "vfio-pci\n") << "up to the first newline";
  EXPECT_EQ(store("(null)\n", " vfio-pci "), " vfio-pci \n") << "spaces are kept: the kernel does not trim";
  EXPECT_EQ(store("vfio-pci\n", "\n"), "(null)\n") << "a lone newline clears";
  EXPECT_EQ(store("vfio-pci\n", "\nnvidia"), "(null)\n") << "a value starting with a newline clears";
  EXPECT_EQ(store("vfio-pci\n", ""), "vfio-pci\n") << "a 0-byte write changes nothing";
  EXPECT_EQ(store("vfio-pci\n", std::string_view("\0\0", 2)), "(null)\n") << "NULs only: empty, clears";
  EXPECT_EQ(store("(null)\n", std::string_view("nv\0x", 4)), "nv\n") << "a value ends at its first NUL";
  EXPECT_EQ(store("(null)\n", " "), " \n") << "a space is a value";
  EXPECT_EQ(store("(null)\n", std::string(4095, 'a')), "error " + std::to_string(EINVAL)) << "PAGE_SIZE - 1";
  EXPECT_EQ(store("(null)\n", std::string(4094, 'a')), std::string(4094, 'a') + "\n");
}

TEST(KernelModel, DriverOverrideThroughTheFakeKernelAndProbe) {
  // The same rule through FakeFs::write on a device, and the override is compared with the
  // driver's name exactly (strcmp): " vfio-pci" matches no driver.
  FakeHost h;
  build_reference_laptop(h);
  const std::string ov = "/sys/bus/pci/devices/0000:01:00.1/driver_override";
  ASSERT_TRUE(h.fs.write(ov, "vfio-pci\n"));
  EXPECT_EQ(*h.fs.read(ov), "vfio-pci\n");
  ASSERT_TRUE(h.fs.write(ov, ""));
  EXPECT_EQ(*h.fs.read(ov), "vfio-pci\n");
  ASSERT_TRUE(h.fs.write(ov, "\n"));
  EXPECT_EQ(*h.fs.read(ov), "(null)\n");
  ASSERT_TRUE(h.fs.write(ov, " snd_hda_intel"));
  ASSERT_TRUE(h.fs.write("/sys/bus/pci/drivers/snd_hda_intel/unbind", "0000:01:00.1"));
  ASSERT_TRUE(h.fs.write("/sys/bus/pci/drivers_probe", "0000:01:00.1"));
  EXPECT_EQ(h.kernel.driver_of("0000:01:00.1"), "") << "' snd_hda_intel' names no driver";
}

// --- Real only: programs -----------------------------------------------------------------------

struct TempDir {
  stdfs::path dir;
  TempDir() {
    char t[] = "/tmp/gpuhook-contract-XXXXXX";
    dir = ::mkdtemp(t);
  }
  ~TempDir() { stdfs::remove_all(dir); }
};

TEST(RealRunnerContract, ExitCodeSignalStdinAndEnvironment) {
  RealClock c;
  auto r = make_process_runner();
  auto e = r->run({"/bin/sh", "-c", "exit 7"}, Deadline(c, 5000));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->exit_code, 7);
  EXPECT_FALSE(e->signaled);
  auto s = r->run({"/bin/sh", "-c", "kill -TERM $$"}, Deadline(c, 5000));
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->signaled);
  EXPECT_FALSE(s->success());
  auto in = r->run({"/bin/sh", "-c", "cat; readlink /proc/self/fd/0"}, Deadline(c, 5000));
  ASSERT_TRUE(in);
  EXPECT_EQ(in->out, "/dev/null\n") << "stdin is /dev/null";
  ::setenv("GPUHOOK_CONTRACT_LEAK", "1", 1);
  auto env = r->run({"/usr/bin/env"}, Deadline(c, 5000));
  ::unsetenv("GPUHOOK_CONTRACT_LEAK");
  ASSERT_TRUE(env);
  EXPECT_EQ(env->out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nLC_ALL=C\n")
      << "the environment is PATH and LC_ALL, nothing else";
}

// The Looking Glass client's start (issue 16): detached from the caller (own session and process
// group, reparented), stdio on /dev/null and no other descriptor, the given uid/gid/groups and
// exactly the given environment; an exec failure is an Error.
TEST(RealRunnerContract, SpawnDetachedRunsAsTheUserInItsOwnSessionWithOnlyStdioAndTheGivenEnvironment) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (setuid)";
  TempDir t;
  ::chmod(t.dir.c_str(), 0777);
  std::string out = (t.dir / "rec").string();
  auto r = make_process_runner();
  DetachedSpec spec;
  spec.argv = {"/bin/sh", "-c",
               "{ id -u; id -g; id -G; ps -o sid= -p $$; ps -o pgid= -p $$; env; } > " + out + ".tmp; mv " + out +
                   ".tmp " + out + "; exec sleep 30"};
  spec.uid = 65534;
  spec.gid = 65534;
  spec.groups = {65534, 100};
  spec.env = {"WAYLAND_DISPLAY=wayland-9", "PATH=/usr/bin:/bin"};
  int fd = ::open("/dev/null", O_RDONLY);  // an inherited descriptor that must not reach the child (no CLOEXEC)
  auto pid = r->spawn_detached(spec);
  ::close(fd);
  ASSERT_TRUE(pid) << pid.error().message();
  RealClock c;
  Deadline d(c, 10000);
  wait_until(d, [&] { return stdfs::exists(out); });
  std::ifstream in(out);
  std::string uid, gid, groups, sid, pgid, env, line;
  std::getline(in, uid), std::getline(in, gid), std::getline(in, groups), std::getline(in, sid), std::getline(in, pgid);
  while (std::getline(in, line)) env += line + "\n";
  EXPECT_EQ(uid, "65534");
  EXPECT_EQ(gid, "65534");
  EXPECT_EQ(groups, "65534 100");
  EXPECT_EQ(std::stoi(sid), *pid) << "its own session";
  EXPECT_EQ(std::stoi(pgid), *pid) << "its own process group";
  EXPECT_EQ(std::stoi(sid) == ::getsid(0), false);
  // Its descriptors, seen from outside (a shell would add its own): stdio on /dev/null, nothing else.
  std::string fds;
  for (const auto& e : stdfs::directory_iterator("/proc/" + std::to_string(*pid) + "/fd"))
    fds += e.path().filename().string() + "->" + stdfs::read_symlink(e.path()).string() + " ";
  EXPECT_EQ(fds.size(), std::string("0->/dev/null 1->/dev/null 2->/dev/null ").size()) << fds;
  for (const char* want : {"0->/dev/null ", "1->/dev/null ", "2->/dev/null "}) EXPECT_NE(fds.find(want), std::string::npos) << fds;
  EXPECT_NE(env.find("WAYLAND_DISPLAY=wayland-9\n"), std::string::npos) << env;
  EXPECT_EQ(env.find("LC_ALL"), std::string::npos) << "exactly the given environment: " << env;
  DetachedSpec bad;
  bad.argv = {"/nonexistent/client"};
  bad.uid = 65534;
  EXPECT_FALSE(r->spawn_detached(bad));
  ::kill(*pid, SIGKILL);
}

TEST(RealRunnerContract, AProgramThatCannotBeExecutedIsAnErrorNeverAnException) {
  // Boost.Process throws when exec fails; an exception escaping run() aborted the hook.
  TempDir t;
  auto script = (t.dir / "no-shebang").string();
  std::ofstream(script) << "echo hi\n";
  ::chmod(script.c_str(), 0755);
  auto bad_interp = (t.dir / "bad-interpreter").string();
  std::ofstream(bad_interp) << "#!/nonexistent/interpreter\necho hi\n";
  ::chmod(bad_interp.c_str(), 0755);
  auto dir = (t.dir / "a-directory").string();
  stdfs::create_directories(dir);
  ::chmod(dir.c_str(), 0755);
  auto not_exec = (t.dir / "not-executable").string();
  std::ofstream(not_exec) << "#!/bin/sh\necho hi\n";
  ::chmod(not_exec.c_str(), 0644);
  RealClock c;
  auto r = make_process_runner();
  EXPECT_FALSE(r->has_program(dir)) << "a directory is not a program";
  EXPECT_FALSE(r->has_program(not_exec));
  EXPECT_TRUE(r->has_program("/bin/sh"));
  for (const auto& p : {script, bad_interp, dir, not_exec}) {
    Result<RunResult> res = RunResult{};
    EXPECT_NO_THROW(res = r->run({p, "arg"}, Deadline(c, 5000))) << p;
    ASSERT_FALSE(res) << p << " ran: " << (res ? res->summary() : "");
    EXPECT_EQ(res.error().what, "cannot run " + p);
    EXPECT_FALSE(res.error().why.empty()) << p;
  }
}

TEST(RealRunnerContract, TheDeadlineKillsTheWholeProcessGroup) {
  RealClock c;
  TempDir t;
  auto pidfile = (t.dir / "pid").string();
  Millis t0 = c.now_ms();
  auto r = make_process_runner()->run({"/bin/sh", "-c", "sleep 60 & echo $! > " + pidfile + "; wait"}, Deadline(c, 300));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(c.now_ms() - t0, 3000);
  int pid = 0;
  std::ifstream(pidfile) >> pid;
  ASSERT_GT(pid, 0);
  RealFs live("/");
  EXPECT_TRUE(wait_until(Deadline(c, 2000), [&] { return start_time_of(live, pid).empty(); }))
      << "the program's own child died with it";
}

// --- Real only: locks across processes ---------------------------------------------------------

// The child of fork() tries the lock and exits 0 (got it), 7 (timed out) or 1.
int try_lock_in_child(const std::string& root, const std::string& path, Millis ms) {
  pid_t pid = ::fork();
  if (pid == 0) {
    RealFs f(root);
    RealLocker l(f);
    RealClock c;
    auto r = l.lock(path, Deadline(c, ms));
    ::_exit(r ? 0 : (r.error().timed_out ? 7 : 1));
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(RealLockerContract, ALockHeldByAnotherProcessTimesOutUntilThatProcessExits) {
  TempDir t;
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t holder = ::fork();
  if (holder == 0) {
    RealFs f(t.dir.string());
    RealLocker l(f);
    RealClock c;
    auto h = l.lock("/vm.lock", Deadline(c, 1000));
    char b = h ? 'y' : 'n';
    (void)!::write(go[1], &b, 1);
    ::pause();  // holds the lock until killed
    ::_exit(0);
  }
  ::close(go[1]);
  char b = 0;
  ASSERT_EQ(::read(go[0], &b, 1), 1);
  ::close(go[0]);
  ASSERT_EQ(b, 'y');
  RealFs f(t.dir.string());
  RealLocker mine(f);
  RealClock c;
  auto r = mine.lock("/vm.lock", Deadline(c, 200));
  ASSERT_FALSE(r) << "held by the other process";
  EXPECT_TRUE(r.error().timed_out);
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  EXPECT_TRUE(mine.lock("/vm.lock", Deadline(c, 200))) << "free once its holder is gone";
}

// Children of `parent` (from /proc/*/stat field 4).
std::vector<int> children_of(int parent) {
  std::vector<int> out;
  for (const auto& e : stdfs::directory_iterator("/proc")) {
    std::string n = e.path().filename();
    if (n.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f(e.path() / "stat");
    std::string line;
    if (!std::getline(f, line)) continue;
    auto rp = line.rfind(')');
    if (rp == std::string::npos) continue;
    std::istringstream rest(line.substr(rp + 2));
    std::string state;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(std::stoi(n));
  }
  return out;
}

TEST(RealLockerContract, AGuardedWriterStuckInTheKernelDoesNotKeepTheLocks) {
  // A hook process takes a lock and starts a guarded write that blocks (a FIFO without reader);
  // the hook dies while its writer is still blocked. The lock must be free at once: the writer
  // closed every inherited descriptor (before: it held the flock()ed file for ever).
  TempDir t;
  std::string root = t.dir.string();
  std::string fifo = (t.dir / "unbind").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  pid_t hook = ::fork();
  if (hook == 0) {
    RealFs f(root);
    RealLocker l(f);
    RealClock c;
    auto h = l.lock("/vm.lock", Deadline(c, 1000));
    if (!h) ::_exit(1);
    (void)f.write_guarded("/unbind", "0000:01:00.0", Deadline(c, 60000));
    ::_exit(0);
  }
  RealClock c;
  std::vector<int> writers;
  ASSERT_TRUE(wait_until(Deadline(c, 5000), [&] { return !(writers = children_of(hook)).empty(); }))
      << "the hook's guarded writer started";
  ASSERT_EQ(writers.size(), 1u);
  int writer = writers[0];
  ::kill(hook, SIGKILL);
  ::waitpid(hook, nullptr, 0);
  RealFs live("/");
  EXPECT_NE(start_time_of(live, writer), "") << "the writer is still blocked";
  EXPECT_EQ(try_lock_in_child(root, "/vm.lock", 300), 0) << "the dead hook's lock is free, its writer holds nothing";
  // Let the writer finish: it writes into the FIFO once there is a reader.
  int fd = ::open(fifo.c_str(), O_RDONLY);
  char buf[32] = {};
  ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf) : -1;
  if (fd >= 0) ::close(fd);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "0000:01:00.0");
}

TEST(RealLockerContract, AProgramTheRunnerStartsDoesNotKeepTheLocks) {
  // A program that leaves a daemon behind: the daemon must not hold our flock()ed files.
  TempDir t;
  RealFs f(t.dir.string());
  RealLocker l(f);
  RealClock c;
  auto h = l.lock("/vm.lock", Deadline(c, 1000));
  ASSERT_TRUE(h);
  auto r = make_process_runner()->run(
      {"/bin/sh", "-c", "setsid sleep 30 </dev/null >/dev/null 2>&1 & echo $!"}, Deadline(c, 5000));
  ASSERT_TRUE(r);
  int daemon = std::atoi(r->out.c_str());
  ASSERT_GT(daemon, 0);
  h->reset();
  EXPECT_EQ(try_lock_in_child(t.dir.string(), "/vm.lock", 300), 0) << "free once we released it";
  ::kill(daemon, SIGKILL);
}

#ifdef GPUHOOK_FAULT_POINTS
TEST(RealFsContract, ASlowWriteToAFifoCompletesAfterTheDeadlineWhenAReaderComes) {
  // The brief's scenario on the real thing: the writer (slow-write: in D state, not killed) is
  // still blocked on the FIFO at the deadline; a reader comes later and the data arrives.
  TempDir t;
  std::string fifo = (t.dir / "switch").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ::setenv("GPUHOOK_FAULT", "slow-write:/switch:1", 1);
  RealFs f(t.dir.string());
  RealClock c;
  auto s = f.write_guarded("/switch", "MIGD", Deadline(c, 150));
  ::unsetenv("GPUHOOK_FAULT");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().timed_out);
  EXPECT_TRUE(s.error().may_complete);
  int fd = ::open(fifo.c_str(), O_RDONLY);
  char buf[16] = {};
  ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf) : -1;
  if (fd >= 0) ::close(fd);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "MIGD");
  ::waitpid(s.error().pending_pid, nullptr, 0);
}
#endif

}  // namespace
}  // namespace gpuhook

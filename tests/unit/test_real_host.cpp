// The real implementations of the host interfaces, against this machine's kernel: programs run
// from an argv with a deadline and are killed with everything they started; a write that blocks
// in the kernel does not take the caller with it; flock keeps two processes apart; state files
// are replaced atomically and never through a symlink; every path resolves under --root.
#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "host/real_host.h"

namespace gpuhook {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path dir;
  TempDir() {
    char t[] = "/tmp/gpuhook-real-XXXXXX";
    dir = ::mkdtemp(t);
  }
  ~TempDir() { fs::remove_all(dir); }
};

TEST(RealRunner, CapturesOutputExitCodeAndGivesNoStdin) {
  RealClock clock;
  auto r = make_process_runner();
  auto res = r->run({"/bin/sh", "-c", "echo out; echo err >&2; cat; exit 3"}, Deadline(clock, 5000));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->exit_code, 3);
  EXPECT_EQ(res->out, "out\n") << "stdin is /dev/null: cat reads nothing";
  EXPECT_EQ(res->err, "err\n");
  EXPECT_EQ(res->summary(), "exit 3: err");
}

TEST(RealRunner, UsesAMinimalEnvironmentAndNoShell) {
  RealClock clock;
  ::setenv("GPUHOOK_SECRET", "leak", 1);
  auto res = make_process_runner()->run({"env"}, Deadline(clock, 5000));
  ::unsetenv("GPUHOOK_SECRET");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->out.find("GPUHOOK_SECRET"), std::string::npos) << res->out;
  EXPECT_NE(res->out.find("LC_ALL=C"), std::string::npos);
  auto r2 = make_process_runner()->run({"echo", "$HOME;", "`id`"}, Deadline(clock, 5000));
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->out, "$HOME; `id`\n") << "arguments reach the program as they are";
}

TEST(RealRunner, KillsAProgramAndItsChildrenAtTheDeadline) {
  RealClock clock;
  TempDir t;
  std::string pidfile = (t.dir / "child.pid").string();
  Millis t0 = clock.now_ms();
  auto res = make_process_runner()->run({"/bin/sh", "-c", "sleep 60 & echo $! > " + pidfile + "; wait"}, Deadline(clock, 300));
  Millis dt = clock.now_ms() - t0;
  ASSERT_TRUE(res);
  EXPECT_TRUE(res->timed_out);
  EXPECT_LT(dt, 2000) << "returns shortly after the deadline";
  std::ifstream f(pidfile);
  int child = 0;
  f >> child;
  ASSERT_GT(child, 0);
  RealClock c2;
  // Dead means gone or a zombie waiting for init to reap it.
  auto dead = [&] {
    std::ifstream st("/proc/" + std::to_string(child) + "/stat");
    std::string line;
    if (!std::getline(st, line)) return true;
    auto rp = line.rfind(')');
    return rp != std::string::npos && rp + 2 < line.size() && line[rp + 2] == 'Z';
  };
  EXPECT_TRUE(wait_until(Deadline(c2, 2000), dead)) << "the background child of the program is killed too";
}

TEST(RealRunner, AGrandchildHoldingThePipesDoesNotHoldUs) {
  RealClock clock;
  Millis t0 = clock.now_ms();
  // The program exits at once but leaves a daemon with our stdout: we must not wait for it.
  auto res = make_process_runner()->run({"/bin/sh", "-c", "(setsid sleep 30 &) ; echo done"}, Deadline(clock, 10000));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->exit_code, 0);
  EXPECT_EQ(res->out, "done\n");
  EXPECT_LT(clock.now_ms() - t0, 3000);
  ::system("pkill -f '^sleep 30$' >/dev/null 2>&1");
}

TEST(RealRunner, AMissingProgramIsAnErrorWithAHint) {
  RealClock clock;
  auto res = make_process_runner()->run({"gpuhook-no-such-program"}, Deadline(clock, 1000));
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().what, "cannot run gpuhook-no-such-program");
  EXPECT_FALSE(res.error().hint.empty());
}

TEST(RealFs, AGuardedWriteThatBlocksReturnsAtTheDeadline) {
  TempDir t;
  std::string fifo = (t.dir / "blocking").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);  // opening a FIFO for writing blocks with no reader
  RealFs fsys("/");
  RealClock clock;
  Millis t0 = clock.now_ms();
  Status s = fsys.write_guarded(fifo, "x", Deadline(clock, 300));
  EXPECT_FALSE(s);
  EXPECT_TRUE(s.error().timed_out);
  EXPECT_LT(clock.now_ms() - t0, 2000);
  // Unblock the stuck child so nothing is left behind.
  int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  if (fd >= 0) ::close(fd);
}

TEST(RealFs, GuardedWriteReportsTheKernelsError) {
  RealFs fsys("/");
  RealClock clock;
  Status s = fsys.write_guarded("/proc/sys/kernel/no-such-knob", "1", Deadline(clock, 2000));
  EXPECT_FALSE(s);
  EXPECT_FALSE(s.error().timed_out);
}

TEST(RealFs, EveryPathResolvesUnderTheRoot) {
  TempDir t;
  fs::create_directories(t.dir / "sys/bus/pci/devices");
  fs::create_directories(t.dir / "sys/devices/pci0000:00/0000:01:00.0");
  std::ofstream(t.dir / "sys/devices/pci0000:00/0000:01:00.0/vendor") << "0x10de\n";
  fs::create_symlink("../../../devices/pci0000:00/0000:01:00.0", t.dir / "sys/bus/pci/devices/0000:01:00.0");
  RealFs fsys(t.dir.string());
  EXPECT_EQ(*fsys.read("/sys/bus/pci/devices/0000:01:00.0/vendor"), "0x10de\n");
  EXPECT_EQ(*fsys.canonical("/sys/bus/pci/devices/0000:01:00.0"), "/sys/devices/pci0000:00/0000:01:00.0");
  EXPECT_EQ(*fsys.list("/sys/bus/pci/devices"), std::vector<std::string>{"0000:01:00.0"});
  EXPECT_FALSE(fsys.exists("/etc/passwd")) << "nothing outside the root is seen";
}

TEST(RealFs, StateFilesAreAtomicPrivateAndNeverFollowSymlinks) {
  TempDir t;
  RealFs fsys(t.dir.string());
  ASSERT_TRUE(fsys.make_dirs("/run/gpuhook", 0700));
  ASSERT_TRUE(fsys.write_atomic("/run/gpuhook/vm.journal", "one\n", 0600));
  ASSERT_TRUE(fsys.write_atomic("/run/gpuhook/vm.journal", "two\n", 0600));
  EXPECT_EQ(*fsys.read("/run/gpuhook/vm.journal"), "two\n");
  EXPECT_EQ(fsys.stat("/run/gpuhook/vm.journal").mode, 0600u);
  EXPECT_EQ(fsys.stat("/run/gpuhook").mode, 0700u);
  std::ofstream(t.dir / "victim") << "precious";
  fs::create_symlink(t.dir / "victim", t.dir / "run/gpuhook/evil.journal");
  EXPECT_FALSE(fsys.write_atomic("/run/gpuhook/evil.journal", "x", 0600));
  std::ifstream v(t.dir / "victim");
  std::string content((std::istreambuf_iterator<char>(v)), {});
  EXPECT_EQ(content, "precious");
  fs::remove_all(t.dir / "run");
  fs::create_directories(t.dir / "elsewhere");
  fs::create_directories(t.dir / "run");
  fs::create_symlink(t.dir / "elsewhere", t.dir / "run/gpuhook");
  EXPECT_FALSE(fsys.make_dirs("/run/gpuhook/claims", 0700)) << "a symlinked state directory is refused";
}

TEST(RealLocker, ASecondProcessWaitsForTheLockAndGivesUpAtItsDeadline) {
  TempDir t;
  RealFs fsys(t.dir.string());
  RealLocker locker(fsys);
  RealClock clock;
  auto held = locker.lock("/held.lock", Deadline(clock, 1000));
  ASSERT_TRUE(held);
  pid_t pid = ::fork();
  if (pid == 0) {
    RealFs f2(t.dir.string());
    RealLocker l2(f2);
    RealClock c2;
    auto r = l2.lock("/held.lock", Deadline(c2, 200));
    ::_exit(r ? 0 : (r.error().timed_out ? 7 : 1));
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_EQ(WEXITSTATUS(st), 7) << "the other process timed out on the held lock";
  held->reset();
  pid = ::fork();
  if (pid == 0) {
    RealFs f2(t.dir.string());
    RealLocker l2(f2);
    RealClock c2;
    ::_exit(l2.lock("/held.lock", Deadline(c2, 200)) ? 0 : 1);
  }
  ::waitpid(pid, &st, 0);
  EXPECT_EQ(WEXITSTATUS(st), 0) << "free once released";
}

}  // namespace
}  // namespace gpuhook

namespace gpuhook {
namespace {

std::vector<std::string> children_of_self() {
  std::ifstream in("/proc/self/task/" + std::to_string(::getpid()) + "/children");
  std::vector<std::string> v;
  std::string pid;
  while (in >> pid) v.push_back(pid);
  return v;
}

// One writer process per RealFs (per event), not one fork per write: the writes of a whole
// prepare go through the same child, which ends with the RealFs. (The fork per write was most
// of a bind's cost under emulation: issue 14.)
TEST(RealFsWriter, OneWriterForManyGuardedWritesGoneWithTheFs) {
  auto before = children_of_self();  // other tests in this process may have left children
  TempDir t;
  RealClock clock;
  {
    RealFs fs(t.dir.string());
    for (int i = 0; i < 5; ++i) {
      std::ofstream(t.dir / ("a" + std::to_string(i))) << "";
      ASSERT_TRUE(fs.write_guarded("/a" + std::to_string(i), "x" + std::to_string(i), Deadline(clock, 5000)).ok());
      EXPECT_EQ(*fs.read("/a" + std::to_string(i)), "x" + std::to_string(i));
    }
    auto kids = children_of_self();
    EXPECT_EQ(kids.size(), before.size() + 1) << "five guarded writes, one writer";
    // A failed write is an answer, not a lost writer.
    std::filesystem::create_directory(t.dir / "d");
    auto s = fs.write_guarded("/d", "x", Deadline(clock, 5000));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, EISDIR) << s.error().message();
    EXPECT_EQ(children_of_self(), kids) << "the same writer";
  }
  EXPECT_EQ(children_of_self(), before) << "the writer ends with its RealFs";
}

}  // namespace
}  // namespace gpuhook

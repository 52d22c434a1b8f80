// Hostile input: broken profiles, odd VM names, odd stdin, odd arguments. Each gets a clear error
// or a safe no-op, never a crash or a hang, and nothing on the host changes. Security: commands
// run with a minimal environment and no stdin; files gpuhook creates are not world-readable and
// are never followed through symlinks.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <regex>

#include "../fuzz/host_guard.h"
#include "engine/session.h"
#include "app/args.h"
#include "app/fast_path.h"
#include "app/hook_event.h"
#include "engine/journal.h"
#include "fake/fake_host.h"
#include "host/real_host.h"
#include "profile/profile.h"
#include "harness.h"
#include "run_binary.h"

namespace gpuhook {
namespace {

namespace fs = std::filesystem;
using test::run_binary;
const std::string kBin = GPUHOOK_BINARY;

const std::string kGpu = "[gpu]\naddress = \"0000:01:00.0\"\n";

std::string junk(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// ≥30 broken profiles: each must be refused at prepare with file:line:col errors, change
// nothing, and take no time to refuse.
std::vector<std::pair<std::string, std::string>> broken_profiles() {
  std::string deep_arrays = "x = " + std::string(20000, '[') + std::string(20000, ']') + "\n";
  std::string deep_tables = "x = ";
  for (int i = 0; i < 5000; ++i) deep_tables += "{a=";
  deep_tables += "1" + std::string(5000, '}') + "\n";
  std::string dotted = kGpu + "[host]\n" + std::string(5000, 'a');
  for (int i = 0; i < 5000; ++i) dotted += ".a";
  dotted += " = 1\n";
  return {
      {"empty file", ""},
      {"only a comment", "# nothing here\n"},
      {"truncated table header", "[gpu"},
      {"truncated string", "[gpu]\naddress = \"0000:01:"},
      {"truncated mid-key", "[gpu]\naddr"},
      {"truncated array", kGpu + "[host]\nunload_modules = [\"nvidia\","},
      {"binary junk", junk(4096, 1)},
      {"binary junk after a valid start", kGpu + junk(512, 2)},
      {"NUL bytes", kGpu + std::string(64, '\0')},
      {"invalid UTF-8 in a string", "[gpu]\naddress = \"0000:01:00.0\xff\xfe\"\n"},
      {"UTF-16 BOM", "\xff\xfe[\0g\0p\0u\0]\0"},
      {"deeply nested arrays", kGpu + deep_arrays},
      {"deeply nested inline tables", kGpu + deep_tables},
      {"very long dotted key", dotted},
      {"huge string value (900 KB)", "[gpu]\naddress = \"" + std::string(900 << 10, 'A') + "\"\n"},
      {"file over 1 MiB", kGpu + "# " + std::string(1100 << 10, 'x') + "\n"},
      {"huge key", kGpu + "[host]\n" + std::string(100 << 10, 'k') + " = 1\n"},
      {"100k array elements of the wrong type", kGpu + "[host]\nunload_modules = [" + [] {
         std::string s;
         for (int i = 0; i < 100000; ++i) s += "1,";
         return s;
       }() + "]\n"},
      {"duplicate key", "[gpu]\naddress = \"0000:01:00.0\"\naddress = \"0000:01:00.1\"\n"},
      {"duplicate table", kGpu + "[gpu]\naddress = \"0000:01:00.1\"\n"},
      {"address of wrong type", "[gpu]\naddress = 0x0100\n"},
      {"mode of wrong type", kGpu + "[display]\nmode = [\"mux\"]\n"},
      {"boolean as a string", kGpu + "[host]\nunbind_consoles = \"true\"\n"},
      {"timeout as a date", kGpu + "[timeouts]\nevent = 1979-05-27\n"},
      {"unknown top-level key", kGpu + "gpus = 2\n"},
      {"unknown key in a table", kGpu + "[host]\nstop_service = [\"gdm.service\"]\n"},
      {"unknown table", kGpu + "[network]\nbridge = \"br0\"\n"},
      {"bus out of range", "[gpu]\naddress = \"0000:100:00.0\"\n"},
      {"slot out of range", "[gpu]\naddress = \"0000:01:20.0\"\n"},
      {"function out of range", "[gpu]\naddress = \"0000:01:00.8\"\n"},
      {"domain too long", "[gpu]\naddress = \"10000:01:00.0\"\n"},
      {"negative timeout", kGpu + "[timeouts]\nevent = -1\n"},
      {"timeout out of range", kGpu + "[timeouts]\nevent = 99999999999\n"},
      {"ddc input out of range", kGpu + "[display]\nmode = \"ddc\"\n[display.ddc]\nbus = 4\nvm_input = 256\n"},
      {"command with a relative path", kGpu + "[[commands]]\nwhen = \"prepare\"\nrun = [\"cpupower\", \"x\"]\n"},
      {"command with a ./ path", kGpu + "[[commands]]\nwhen = \"prepare\"\nrun = [\"./evil.sh\"]\n"},
      {"undo with a relative path", kGpu + "[[commands]]\nwhen = \"prepare\"\nrun = [\"/bin/true\"]\nundo = [\"rm\", \"-rf\", \"/\"]\n"},
      {"display switch relative", kGpu + "[display]\nmode = \"command\"\n[display.command]\nswitch = [\"xrandr\"]\nrestore = [\"/usr/bin/xrandr\"]\n"},
      {"command with a NUL", kGpu + "[[commands]]\nwhen = \"prepare\"\nrun = [\"/bin/sh\\u0000-c\"]\n"},
      {"unit name that is an option", kGpu + "[host]\nstop_services = [\"--now\"]\n"},
      {"unit name with a path", kGpu + "[host]\nstop_services = [\"../../etc/shadow\"]\n"},
      {"module name that is an option", kGpu + "[host]\nunload_modules = [\"-a\"]\n"},
      {"module name with a path", kGpu + "[host]\nunload_modules = [\"/tmp/evil.ko\"]\n"},
      {"ACPI path with a space", kGpu + "[display]\nmode = \"mux\"\n[display.mux]\nmethod = \"acpi\"\n"
                                        "acpi_dgpu = '\\_SB.PCI0 0x1'\nacpi_igpu = '\\_SB.GFX0'\n"},
      {"everything wrong at once", "[gpu]\nadress = 1\n[display]\nmode = 3\n[host]\nholders = \"kill\"\n[timeouts]\nx = 1\n"},
  };
}

struct Fake {
  FakeHost h;
  test::GuardedHost g{h};
  test::SafetyPolicy policy;
  std::vector<std::string> violations;
  MemoryLog log;
  Fake() {
    build_reference_laptop(h);
    g.guard(&policy, [this](const std::string& w) { violations.push_back(w); });
  }
  int event(const std::string& vm, const std::string& op, std::string_view xml, std::string* err_out) {
    return test::run_event(g.host(), log, vm, op, xml, err_out);
  }
  std::string restored_diff(const std::map<std::string, std::string>& before) {
    test::give_back_kept_modules(h.host(), log);
    return diff_states(before, h.state());
  }
};

TEST(Hostile, BrokenProfilesAreRefusedWithFileLineColumnAndChangeNothing) {
  auto profiles = broken_profiles();
  ASSERT_GE(profiles.size(), 30u);
  const std::regex where(R"(/etc/gpuhook/vms/win11\.toml:[0-9]+:[0-9]+: )");
  double slowest = 0;
  for (const auto& [name, text] : profiles) {
    Fake t;
    put_profile(t.h, "win11", text);
    auto before = t.h.state();
    std::string err;
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(t.event("win11", "prepare", "", &err), 1) << name;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // A hang detector, not a benchmark: generous for a loaded machine and the ASan build.
    EXPECT_LT(secs, 10.0) << name << ": refusing a profile must not take long";
    slowest = std::max(slowest, secs);
    EXPECT_NE(err.find("the profile of VM win11 is invalid"), std::string::npos) << name << "\n" << err;
    EXPECT_TRUE(std::regex_search(err, where)) << name << ": every error says file:line:col\n" << err.substr(0, 400);
    EXPECT_NE(err.find("nothing on the host was changed"), std::string::npos) << name;
    EXPECT_LE(err.size(), 4000u) << name << ": virsh shows a few lines, not the file";
    for (unsigned char c : err) EXPECT_TRUE(c == '\n' || (c >= 0x20 && c != 0x7f)) << name << ": raw control bytes on stderr";
    EXPECT_EQ(t.restored_diff(before), "") << name;
    EXPECT_FALSE(t.h.fs.exists("/run/gpuhook/win11.journal")) << name;
    // release, start and started of a VM with a broken profile change nothing either.
    EXPECT_EQ(t.event("win11", "release", "", nullptr), 0) << name;
    EXPECT_EQ(t.event("win11", "started", "", nullptr), 1) << name;
    EXPECT_EQ(t.restored_diff(before), "") << name;
    EXPECT_EQ(t.violations, std::vector<std::string>{}) << name;
  }
  std::printf("%zu broken profiles refused; the slowest took %.3f s\n", profiles.size(), slowest);
}

// Domain XML on stdin: absent, empty, broken, huge, hostile: the prepare of a managed VM plans
// from the profile alone (the XML only adds managed='no' hostdevs) and never crashes.
TEST(Hostile, AnyDomainXmlOnStdinIsSafeForAManagedVm) {
  std::vector<std::pair<std::string, std::string>> inputs = {
      {"0 bytes", ""},
      {"invalid XML", "<domain><devices><hostdev"},
      {"binary junk", junk(1 << 16, 3)},
      {"billion laughs", "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;"
                         "&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]><domain><name>&c;</name></domain>"},
      {"deep nesting", std::string(200000, '<').substr(0, 0) + [] {
         std::string s = "<domain>";
         for (int i = 0; i < 100000; ++i) s += "<a>";
         return s;
       }()},
      {"hostdev with hostile address", "<domain><devices><hostdev type='pci' managed='no'><source><address "
                                       "domain='0x0000' bus='../..' slot='0x00' function='0x0'/></source></hostdev>"
                                       "<hostdev type='pci' managed='no'><source><address domain='-1' bus='0x1ff' "
                                       "slot='0x00' function='0x9'/></source></hostdev></devices></domain>"},
      {"8 MiB of text", std::string(8 << 20, 'x')},
  };
  for (const auto& [name, xml] : inputs) {
    Fake t;
    put_profile(t.h, "win11", kGpu + "[host]\nstop_services = [\"nvidia-persistenced.service\"]\n"
                                     "unload_modules = [\"nvidia_drm\", \"nvidia_modeset\", \"nvidia_uvm\", \"nvidia\"]\n");
    auto before = t.h.state();
    std::string err;
    EXPECT_EQ(t.event("win11", "prepare", xml, &err), 0) << name << "\n" << err << t.log.text();
    EXPECT_EQ(t.h.kernel.driver_of("0000:01:00.0"), "vfio-pci") << name;
    EXPECT_EQ(t.event("win11", "release", "", nullptr), 0) << name;
    EXPECT_EQ(t.restored_diff(before), "") << name;
    EXPECT_EQ(t.violations, std::vector<std::string>{}) << name;
  }
}

struct TempRoot {
  fs::path dir;
  TempRoot() {
    char tmpl[] = "/tmp/gpuhook-hostile-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~TempRoot() { fs::remove_all(dir); }
  std::map<std::string, std::string> tree() const {
    std::map<std::string, std::string> v;
    for (auto& e : fs::recursive_directory_iterator(dir)) {
      std::string content;
      if (e.is_regular_file() && !e.is_symlink()) {
        std::ifstream in(e.path(), std::ios::binary);
        content.assign((std::istreambuf_iterator<char>(in)), {});
      }
      v[e.path().string()] = content;
    }
    return v;
  }
  void write(const std::string& rel, const std::string& text, unsigned mode = 0644) const {
    fs::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel, std::ios::binary) << text;
    ::chmod((dir / rel).c_str(), mode);
  }
};

// Odd VM names, as libvirtd would pass them: never a profile lookup outside the profile
// directory, never a file created, always exit 0 and silence.
TEST(Hostile, OddVmNamesAreASafeNoOp) {
  TempRoot root;
  root.write("etc/gpuhook/vms/win11.toml", kGpu);
  root.write("etc/gpuhook/x.toml", kGpu);  // reachable as "../x" from the profile directory
  root.write("etc/gpuhook/vms/.hidden.toml", kGpu);
  auto before = root.tree();
  std::vector<std::string> names = {"../x", "..", ".", "./win11", "win11/", "/win11", "a/../win11", "..%2Fx",
                                    ".hidden", "win11\n", "win\x01" "11", "win11\x7f", std::string(4096, 'v'),
                                    std::string(201, 'w'), "", "-", "--help", "\xff\xfe", "win 11", "*", "win11.toml"};
  for (const auto& vm : names) {
    for (const char* op : {"prepare", "release", "started", "reconnect"}) {
      auto r = run_binary(kBin, {kBin, "--root", root.dir.string(), "hook", vm, op, "begin", "-"},
                          "<domain><name>x</name></domain>", 10000);
      EXPECT_FALSE(r.timed_out) << vm;
      EXPECT_EQ(r.exit_code, 0) << "'" << vm << "' " << op << "\n" << r.err;
      EXPECT_EQ(r.out + r.err, "") << "'" << vm << "' " << op;
    }
    // The CLI verbs refuse such a name with a clear error.
    auto r = run_binary(kBin, {kBin, "--root", root.dir.string(), "restore", vm}, "", 10000);
    if (!vm_name_problem(vm).empty() && vm.rfind("--", 0) != 0) {
      EXPECT_EQ(r.exit_code, 2) << "'" << vm << "'\n" << r.out << r.err;
      EXPECT_NE(r.err.find("refusing VM name"), std::string::npos) << "'" << vm << "'\n" << r.err;
    }
  }
  EXPECT_EQ(root.tree(), before) << "an odd VM name created or changed a file";
}

// A managed VM whose prepare the host refuses (no such GPU under this root), with stdin of 0
// bytes, invalid XML and 64 MiB: a clear error, bounded time, nothing created but the log.
TEST(Hostile, StdinOfAnyShapeForAManagedVmOnTheRealBinary) {
  for (size_t size : {size_t{0}, size_t{9}, size_t{64} << 20}) {
    TempRoot root;
    root.write("etc/gpuhook/vms/win11.toml", kGpu);
    std::string in = size == 9 ? std::string("not xml <") : std::string(size, '<');
    auto r = run_binary(kBin, {kBin, "--root", root.dir.string(), "hook", "win11", "prepare", "begin", "-"}, in, 60000);
    EXPECT_FALSE(r.timed_out) << size;
    EXPECT_EQ(r.exit_code, 1) << size << "\n" << r.err;
    EXPECT_EQ(r.out, "") << size;
    EXPECT_NE(r.err.find("does not exist on this host"), std::string::npos) << size << "\n" << r.err;
    EXPECT_LT(r.err.size(), 2000u);
    r = run_binary(kBin, {kBin, "--root", root.dir.string(), "hook", "win11", "release", "end", "-"}, in, 60000);
    EXPECT_EQ(r.exit_code, 0) << size;
    EXPECT_EQ(r.out + r.err, "") << size;
    for (auto& e : fs::recursive_directory_iterator(root.dir)) {
      std::string p = e.path().string().substr(root.dir.string().size());
      bool ours = p.rfind("/etc/gpuhook", 0) == 0 || p.rfind("/var/log", 0) == 0 || p.rfind("/run/gpuhook", 0) == 0 ||
                  p == "/etc" || p == "/var" || p == "/run";
      EXPECT_TRUE(ours) << size << ": unexpected file " << p;
      if (e.is_regular_file()) {
        EXPECT_LT(e.file_size(), 1u << 20) << p << ": the log keeps no stdin";
      }
    }
  }
}

// Arguments: an empty --root is refused wherever it is given.
TEST(Hostile, ArgumentsWithEmptyOrOptionLikeValues) {
  for (const auto& argv : std::vector<std::vector<std::string>>{{"gpuhook", "--root", "", "status"},
                                                               {"gpuhook", "status", "--root", ""},
                                                               {"gpuhook", "--root=", "status"},
                                                               {"gpuhook", "plan", "win11", "--root", ""}}) {
    Invocation inv = parse_args(argv);
    EXPECT_EQ(inv.kind, Invocation::Kind::usage_error) << format_argv(argv);
    EXPECT_EQ(inv.error, "--root needs a directory") << format_argv(argv);
  }
  // libvirtd never passes options: whatever the words are, they are the VM, op and sub-op.
  Invocation inv = parse_args({"/etc/libvirt/hooks/qemu", "--root", "/", "prepare", "begin", "-"});
  EXPECT_EQ(inv.kind, Invocation::Kind::hook);
  EXPECT_EQ(inv.vm, "--root");
  EXPECT_EQ(inv.root, "/");
}

// The front (hook/front.cpp) answers alone only what the full program would answer the same
// way: a hook invocation for a VM without a profile. For every argv form and VM name here, its
// reading equals parse_args + has_profile on the real Fs.
TEST(Hostile, TheFrontDecidesExactlyLikeTheFullProgram) {
  TempRoot root;
  root.write("etc/gpuhook/vms/win11.toml", kGpu);
  root.write("etc/gpuhook/vms/fifo-or-dir.toml/x", "");  // a directory: lstat finds it
  ::symlink("/nonexistent", (root.dir / "etc/gpuhook/vms/dangling.toml").c_str());
  std::string r = root.dir.string();
  std::vector<std::string> vms = {"win11", "other", "fifo-or-dir", "dangling", "../vms/win11", ".win11", "", "win 11",
                                  std::string(200, 'a'), std::string(201, 'a'), "win11\n", "-", "--root"};
  std::vector<std::vector<std::string>> forms;
  for (const auto& vm : vms) {
    forms.push_back({"/etc/libvirt/hooks/qemu", vm, "release", "end", "-"});
    forms.push_back({"/etc/libvirt/hooks/qemu.d/50-gpuhook", vm, "prepare", "begin"});
    forms.push_back({"gpuhook", "--root", r, "hook", vm, "release", "end", "-"});
    forms.push_back({"gpuhook", "--root=" + r + "/", "--json", "hook", vm, "started", "begin"});
    forms.push_back({"gpuhook", "--root", r + "//", "hook", vm, "started", "begin", "-", "extra"});
    forms.push_back({"gpuhook", "hook", vm, "release"});
    forms.push_back({"gpuhook", "--root", "", "hook", vm, "release", "end"});
    forms.push_back({"gpuhook", "--help", "hook", vm, "release", "end"});
    forms.push_back({"gpuhook", "status", vm});
    forms.push_back({"qemu", vm, "release"});
  }
  int answered = 0;
  for (auto& f : forms) {
    std::vector<char*> c;
    for (auto& s : f) c.push_back(s.data());
    c.push_back(nullptr);
    fast::HookArgs h;
    bool front_hook = fast::parse_hook(static_cast<int>(f.size()), c.data(), h);
    Invocation inv = parse_args(f);
    ASSERT_EQ(front_hook, inv.kind == Invocation::Kind::hook) << format_argv(f);
    if (!front_hook) continue;
    EXPECT_EQ(inv.vm, h.vm) << format_argv(f);
    EXPECT_EQ(inv.root, h.root) << format_argv(f);
    RealFs rfs(inv.root);
    bool ours = is_managed(rfs, inv.vm);
    auto d = fast::profile_decision(h);
    EXPECT_NE(d, fast::Decision::unsure) << format_argv(f);
    EXPECT_EQ(d == fast::Decision::ours, ours) << format_argv(f);
    answered += d == fast::Decision::not_ours;
  }
  EXPECT_GT(answered, 20) << "the front must actually answer the common case itself";
}

// Programs run with argv only, stdin from /dev/null and a minimal environment: nothing of the
// hook's own environment (libvirtd's) leaks into them.
TEST(Hostile, CommandsRunWithAMinimalEnvironmentAndNoStdin) {
  ::setenv("GPUHOOK_TEST_SECRET", "leak", 1);
  ::setenv("LD_PRELOAD", "/nonexistent/evil.so", 1);
  auto runner = make_process_runner();
  RealClock clock;
  Deadline d(clock, 10000);
  auto r = runner->run({"/usr/bin/env"}, d);
  ::unsetenv("LD_PRELOAD");
  ::unsetenv("GPUHOOK_TEST_SECRET");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(r->success()) << r->summary();
  std::vector<std::string> vars;
  std::istringstream in(r->out);
  for (std::string l; std::getline(in, l);) vars.push_back(l.substr(0, l.find('=')));
  std::sort(vars.begin(), vars.end());
  EXPECT_EQ(vars, (std::vector<std::string>{"LC_ALL", "PATH"})) << r->out;
  auto c = runner->run({"/bin/cat"}, d);  // would wait for ever on an inherited stdin
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->success());
  EXPECT_EQ(c->out, "");
  // A relative name is never looked up relative to the current directory.
  TempRoot cwd;
  cwd.write("evil", "#!/bin/sh\necho ran\n", 0755);
  auto old = fs::current_path();
  fs::current_path(cwd.dir);
  auto e = runner->run({"./evil"}, d);
  fs::current_path(old);
  EXPECT_FALSE(e) << "a ./program was run: " << (e ? e->out : "");
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 07777;
  return st.st_mode & 07777;
}

// What the real binary creates for a managed VM (log, state directory, locks, journal updates)
// is not world-readable, whatever the umask it inherits.
TEST(Hostile, FilesTheHookCreatesAreNotWorldReadable) {
  TempRoot root;
  root.write("etc/gpuhook/vms/win11.toml", kGpu);
  // A journal with a claim only: release runs it for real under the root.
  root.write("run/gpuhook/claims/0000:01:00.0", "win11\n", 0600);
  root.write("run/gpuhook/win11.journal",
             "gpuhook-journal 1\nvm win11\nstep 1 claim phase=prepare address=0000:01:00.0 vm=win11\n"
             "step 2 module.load phase=prepare module=nonexistent_mod driver_dir=/sys/bus/pci/drivers/nonexistent "
             "was_loaded=1\n",
             0600);
  ::chmod((root.dir / "run/gpuhook").c_str(), 0700);
  std::set<std::string> ours;
  for (auto& e : fs::recursive_directory_iterator(root.dir)) ours.insert(e.path().string());
  mode_t old = ::umask(0);
  auto r = run_binary(kBin, {kBin, "--root", root.dir.string(), "hook", "win11", "release", "end", "-"}, "", 20000);
  ::umask(old);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(root.dir / "run/gpuhook/win11.journal")) << "the journal was fully undone";
  EXPECT_FALSE(fs::exists(root.dir / "run/gpuhook/claims/0000:01:00.0"));
  int checked = 0;
  for (auto& e : fs::recursive_directory_iterator(root.dir)) {
    std::string rel = e.path().string().substr(root.dir.string().size());
    if (ours.count(e.path().string())) continue;  // the test's own files
    ++checked;
    EXPECT_EQ(mode_of(e.path()) & 0007, 0u) << rel << " mode " << std::oct << mode_of(e.path());
  }
  EXPECT_GE(checked, 4) << "log dir, log file, locks dir, lock files";
  EXPECT_EQ(mode_of(root.dir / "var/log/gpuhook/gpuhook.log"), 0640u);
  EXPECT_EQ(mode_of(root.dir / "run/gpuhook/locks"), 0700u);
  EXPECT_EQ(mode_of(root.dir / "run/gpuhook/locks/vm.win11.lock"), 0600u);
}

// Symlinks planted where gpuhook writes: its log, state directory, lock directory, journal and
// the journal's temporary file. gpuhook refuses them; the link targets are never written.
TEST(Hostile, SymlinksWhereTheHookWritesAreNeverFollowed) {
  struct Plant {
    const char* name;
    const char* link;  // relative to the root
    bool dir;          // the link points to a directory (else to a file)
  };
  const Plant plants[] = {
      {"log file", "var/log/gpuhook/gpuhook.log", false},
      {"log directory", "var/log/gpuhook", true},
      {"lock directory", "run/gpuhook/locks", true},
      {"VM lock", "run/gpuhook/locks/vm.win11.lock", false},
      {"journal", "run/gpuhook/win11.journal", false},
      {"state directory", "run/gpuhook", true},
  };
  for (const auto& p : plants) {
    TempRoot root, victim;
    root.write("etc/gpuhook/vms/win11.toml", kGpu);
    victim.write("target", "precious\n", 0644);
    fs::create_directories(victim.dir / "dir");
    fs::create_directories((root.dir / p.link).parent_path());
    fs::create_symlink(p.dir ? victim.dir / "dir" : victim.dir / "target", root.dir / p.link);
    auto before = victim.tree();
    for (const char* op : {"prepare", "release", "reconnect"}) {
      auto r = run_binary(kBin, {kBin, "--root", root.dir.string(), "hook", "win11", op, "begin", "-"}, "", 20000);
      EXPECT_FALSE(r.timed_out) << p.name << " " << op;
      EXPECT_EQ(r.out, "") << p.name;
    }
    EXPECT_EQ(victim.tree(), before) << p.name << ": a file was written through the planted symlink";
    EXPECT_TRUE(fs::is_symlink(root.dir / p.link)) << p.name << ": the planted link was replaced";
  }
  // The journal's temporary file (journal.tmp.<pid>) is opened with O_NOFOLLOW.
  TempRoot root, victim;
  victim.write("target", "precious\n", 0644);
  RealFs rfs(root.dir.string());
  ASSERT_TRUE(rfs.make_dirs("/run/gpuhook", 0700));
  fs::create_symlink(victim.dir / "target", root.dir / ("run/gpuhook/win11.journal.tmp." + std::to_string(::getpid())));
  JournalStore store(rfs, "/run/gpuhook");
  Journal j;
  j.vm = "win11";
  EXPECT_FALSE(store.save(j));
  std::ifstream in(victim.dir / "target");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "precious\n");
}

}  // namespace
}  // namespace gpuhook

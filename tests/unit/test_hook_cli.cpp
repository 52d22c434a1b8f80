// The libvirt contract, proven on the real binary: libvirtd runs it by its hook name with the
// domain XML on stdin; for a VM without a profile every operation exits 0, prints nothing on
// stdout or stderr and creates no file; stdin is always read to the end, whatever its size;
// a broken profile refuses prepare (exit 1, every error on stderr) but never release.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "app/args.h"
#include "run_binary.h"

namespace gpuhook {
namespace {

namespace fs = std::filesystem;
using test::run_binary;

const std::string kBin = GPUHOOK_BINARY;
const std::string kXml =
    "<domain type='qemu'><name>other</name><devices><hostdev mode='subsystem' type='pci' managed='no'><source>"
    "<address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev></devices></domain>";

struct TempRoot {
  fs::path dir;
  TempRoot() {
    char tmpl[] = "/tmp/gpuhook-root-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~TempRoot() { fs::remove_all(dir); }
  std::vector<std::string> tree() const {
    std::vector<std::string> v;
    for (auto& e : fs::recursive_directory_iterator(dir)) v.push_back(e.path().string());
    std::sort(v.begin(), v.end());
    return v;
  }
  void write(const std::string& rel, const std::string& text, unsigned mode = 0644) const {
    fs::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel) << text;
    ::chmod((dir / rel).c_str(), mode);
  }
};

// Every operation libvirt sends, with each form of its 4th argument.
const std::vector<std::vector<std::string>> kEvents = {
    {"prepare", "begin", "-"},     {"start", "begin", "-"},        {"started", "begin", "-"},
    {"stopped", "end", "-"},       {"release", "end", "-"},        {"release", "end", "shutdown"},
    {"release", "end", "destroyed"}, {"release", "end", "from snapshot"}, {"reconnect", "begin", "-"},
    {"migrate", "begin", "-"},     {"restore", "begin", "-"},      {"attach", "begin", "-"},
    {"some-future-op", "begin", "-"},
};

TEST(HookCli, EveryOperationForAVmWithoutProfileIsSilentAndCreatesNothing) {
  TempRoot root;
  auto before = root.tree();
  for (const auto& ev : kEvents) {
    auto r = run_binary(kBin, {kBin, "--root", root.dir.string(), "hook", "other", ev[0], ev[1], ev[2]}, kXml);
    EXPECT_EQ(r.exit_code, 0) << ev[0];
    EXPECT_EQ(r.out, "") << ev[0];
    EXPECT_EQ(r.err, "") << ev[0];
  }
  EXPECT_EQ(root.tree(), before) << "no file may be created for a VM gpuhook does not manage";
}

TEST(HookCli, RunAsLibvirtsHookByNameOrFromQemuD) {
  TempRoot bin;
  fs::create_directories(bin.dir / "hooks" / "qemu.d");
  fs::create_symlink(kBin, bin.dir / "hooks" / "qemu");
  fs::create_symlink(kBin, bin.dir / "hooks" / "qemu.d" / "50-gpuhook");
  for (auto name : {bin.dir / "hooks" / "qemu", bin.dir / "hooks" / "qemu.d" / "50-gpuhook"}) {
    // A VM name no profile can exist for on this host, exactly as libvirtd calls it.
    auto r = run_binary(name.string(), {name.string(), "gpuhook-test-no-such-vm", "release", "end", "-"}, kXml);
    EXPECT_EQ(r.exit_code, 0) << name;
    EXPECT_EQ(r.out + r.err, "") << name;
    // libvirt never passes options: "--help" is a VM name here, not a request for help.
    r = run_binary(name.string(), {name.string(), "--help", "prepare", "begin", "-"}, "");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out + r.err, "");
  }
}

TEST(HookCli, StdinOfAnySizeIsReadToTheEnd) {
  TempRoot root;
  for (size_t size : {size_t{0}, size_t{1}, size_t{64} << 20}) {
    std::string data(size, 'x');
    auto r = run_binary(kBin, {kBin, "--root", root.dir.string(), "hook", "other", "prepare", "begin", "-"}, data, 60000);
    EXPECT_EQ(r.exit_code, 0) << size;
    EXPECT_FALSE(r.timed_out) << size;
    EXPECT_EQ(r.out + r.err, "") << size;
  }
}

TEST(HookCli, BrokenProfileRefusesPrepareWithEveryErrorButNeverRelease) {
  TempRoot root;
  root.write("etc/gpuhook/vms/win11.toml", "[gpu]\nadress = \"0000:01:00.0\"\n[display]\nmode = 3\n[host]\nholders = \"x\"\n");
  auto r = run_binary(kBin, {kBin, "--root", root.dir.string(), "hook", "win11", "prepare", "begin", "-"}, kXml);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "") << "stdout is libvirt's XML channel: never written";
  const std::string p = "/etc/gpuhook/vms/win11.toml";
  EXPECT_NE(r.err.find(p + ":2:1: unknown key 'adress' in [gpu]; did you mean 'address'?"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(p + ":4:8: [display] mode must be a string, not an integer"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(p + ":6:11: [host] holders 'x' is not one of: refuse, terminate"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing on the host was changed"), std::string::npos) << r.err;
  EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 10) << "virsh shows this: a few lines";
  r = run_binary(kBin, {kBin, "--root", root.dir.string(), "hook", "win11", "release", "end", "-"}, kXml);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out + r.err, "");
  // The log under the root tells the whole story.
  std::ifstream log(root.dir / "var/log/gpuhook/gpuhook.log");
  std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("event prepare begin - (vm win11)"), std::string::npos) << text;
  EXPECT_NE(text.find("[win11 release"), std::string::npos) << text;
  struct stat st {};
  ASSERT_EQ(::stat((root.dir / "var/log/gpuhook/gpuhook.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u) << "the log is not world-readable";
}

TEST(HookCli, GroupWritableProfileIsRefusedWithTheFix) {
  TempRoot root;
  root.write("etc/gpuhook/vms/win11.toml", "[gpu]\naddress = \"0000:01:00.0\"\n", 0664);
  auto r = run_binary(kBin, {kBin, "--root", root.dir.string(), "hook", "win11", "prepare", "begin", "-"}, kXml);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("writable by group or others (mode 0664)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("chmod 0644 /etc/gpuhook/vms/win11.toml"), std::string::npos) << r.err;
}

TEST(HookCli, ProfileForAGpuThisHostCannotGiveIsRefusedClearly) {
  TempRoot root;
  root.write("etc/gpuhook/vms/win11.toml", "[gpu]\naddress = \"0000:01:00.0\"\n");
  auto r = run_binary(kBin, {kBin, "--root", root.dir.string(), "hook", "win11", "prepare", "begin", "-"}, "not xml <");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("gpuhook: cannot prepare VM win11: the GPU 0000:01:00.0 of /etc/gpuhook/vms/win11.toml does not exist on this host"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("what to do:"), std::string::npos) << r.err;
}

TEST(HookCli, VerbsAnswerHelpVersionAndUsageErrors) {
  auto r = run_binary(kBin, {kBin, "--version"}, "");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("gpuhook ", 0), 0u);
  r = run_binary(kBin, {kBin, "--help"}, "");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* v : {"doctor", "groups", "ids", "check", "plan", "status", "restore", "hook"})
    EXPECT_NE(r.out.find(std::string("  ") + v), std::string::npos) << v;
  r = run_binary(kBin, {kBin, "frobnicate"}, "");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown verb 'frobnicate'"), std::string::npos);
  r = run_binary(kBin, {kBin, "plan"}, "");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("usage: gpuhook plan VM"), std::string::npos) << r.err;
  r = run_binary(kBin, {kBin, "plan", "--help"}, "");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("usage: gpuhook [--root DIR] [--json] plan VM"), std::string::npos) << r.out;
}

// Argument forms, parsed without running anything.
TEST(Args, HookNamesAndForms) {
  EXPECT_TRUE(is_hook_name("/etc/libvirt/hooks/qemu"));
  EXPECT_TRUE(is_hook_name("qemu"));
  EXPECT_TRUE(is_hook_name("/etc/libvirt/hooks/qemu.d/gpuhook"));
  EXPECT_TRUE(is_hook_name("/etc/libvirt/hooks/qemu.d/10-anything"));
  EXPECT_FALSE(is_hook_name("/usr/local/bin/gpuhook"));
  EXPECT_FALSE(is_hook_name("/etc/libvirt/hooks/lxc"));
  EXPECT_FALSE(is_hook_name("/opt/qemu-tools/gpuhook"));

  auto a = parse_args({"/etc/libvirt/hooks/qemu", "win11", "release", "end", "from snapshot"});
  EXPECT_EQ(a.kind, Invocation::Kind::hook);
  EXPECT_TRUE(a.from_libvirt);
  EXPECT_EQ(a.extra, "from snapshot") << "libvirt >= 10.5 passes the reason as one argument";
  a = parse_args({"/etc/libvirt/hooks/qemu", "win11", "release", "end"});
  EXPECT_EQ(a.kind, Invocation::Kind::hook);
  EXPECT_EQ(a.extra, "-");
  a = parse_args({"/etc/libvirt/hooks/qemu", "win11"});
  EXPECT_EQ(a.kind, Invocation::Kind::usage_error);
  EXPECT_TRUE(a.from_libvirt) << "main() exits 0 silently for libvirt's odd calls";
  a = parse_args({"gpuhook", "--root", "/tmp/x", "hook", "win11", "prepare", "begin", "-"});
  EXPECT_EQ(a.kind, Invocation::Kind::hook);
  EXPECT_EQ(a.root, "/tmp/x");
  EXPECT_FALSE(a.from_libvirt);
  a = parse_args({"gpuhook", "hook", "--json", "prepare", "begin"});
  EXPECT_EQ(a.kind, Invocation::Kind::hook) << "after `hook` every word is libvirt's, even option-like VM names";
  EXPECT_EQ(a.vm, "--json");
  a = parse_args({"gpuhook", "--json", "status"});
  EXPECT_EQ(a.kind, Invocation::Kind::verb);
  EXPECT_TRUE(a.json);
  a = parse_args({"gpuhook", "status", "--json"});
  EXPECT_TRUE(a.json);
  a = parse_args({"gpuhook", "--root"});
  EXPECT_EQ(a.kind, Invocation::Kind::usage_error);
  EXPECT_EQ(a.error, "--root needs a directory");
  a = parse_args({"gpuhook", "--bogus", "status"});
  EXPECT_EQ(a.error, "unknown option --bogus");
  a = parse_args({"gpuhook", "ids", "01:00.0", "extra"});
  EXPECT_EQ(a.kind, Invocation::Kind::usage_error);
}

}  // namespace
}  // namespace gpuhook

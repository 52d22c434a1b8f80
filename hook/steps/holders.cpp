// holders: processes with an open descriptor on the GPU's device nodes: /dev/nvidia* (NVIDIA's
// driver waits for ever in unbind while one is open), the DRM card and render nodes whose
// /sys/class/drm/<node> lives under one of the group's PCI functions, the fbdev nodes /dev/fbN
// whose /sys/class/graphics/fbN does (a DRM driver's fbdev emulation: a process with /dev/fb0
// open pins the driver's module, and `modprobe -r` of it fails after the display manager has
// stopped; found on the real kernel with bochs, tests/desktop d04), and the ALSA nodes of its
// audio function. Policy: refuse (list them, change nothing) or terminate (SIGTERM, wait with a
// bound, SIGKILL). Terminated processes are journaled but cannot be brought back.
#include <signal.h>

#include <algorithm>

#include "steps/steps.h"
#include "sysinfo/pci.h"
#include "sysinfo/procs.h"

namespace gpuhook {

namespace {
bool under_device(Fs& fs, const std::string& class_node, const std::string& addr) {
  auto c = fs.canonical(class_node);
  if (!c) return false;
  return c->find("/" + addr + "/") != std::string::npos;
}
}  // namespace

std::vector<std::string> device_nodes_of(Fs& fs, const std::string& addr, bool nvidia, bool nvidia_control) {
  std::vector<std::string> nodes;
  for (auto [cls, dev] : {std::pair{"/sys/class/drm", "/dev/dri/"}, std::pair{"/sys/class/graphics", "/dev/"},
                          std::pair{"/sys/class/sound", "/dev/snd/"}}) {
    auto l = fs.list(cls);
    if (!l) continue;
    for (const auto& n : *l)
      if (under_device(fs, std::string(cls) + "/" + n, addr)) nodes.push_back(dev + n);
  }
  if (nvidia) {
    // That GPU's own node: another NVIDIA card of the host (its desktop) has its own minor, and
    // its users must neither refuse this start nor be terminated by it.
    std::string own = nvidia_node_of(fs, addr);
    auto l = fs.list("/dev");
    if (!own.empty()) nodes.push_back(own);
    else if (l)  // the driver does not say which minor: every per-GPU node, to be safe
      for (const auto& n : *l)
        if (n.size() > 6 && n.rfind("nvidia", 0) == 0 && n.find_first_not_of("0123456789", 6) == std::string::npos)
          nodes.push_back("/dev/" + n);
    // The driver-wide nodes hold the modules, not the card: they matter only when the profile
    // unloads NVIDIA's modules.
    if (nvidia_control && l)
      for (const auto& n : *l)
        if (n == "nvidiactl" || n == "nvidia-modeset" || n == "nvidia-uvm" || n == "nvidia-uvm-tools")
          nodes.push_back("/dev/" + n);
  }
  return nodes;
}

std::vector<Holder> find_holders(Fs& fs, const std::vector<std::pair<std::string, std::string>>& nodes, int self_pid) {
  std::vector<Holder> out;
  if (nodes.empty()) return out;
  auto procs = fs.list("/proc");
  if (!procs) return out;
  for (const auto& p : *procs) {
    if (p.empty() || p.find_first_not_of("0123456789") != std::string::npos || p.size() > 9) continue;
    int pid = std::stoi(p);
    if (pid == self_pid) continue;
    auto fds = fs.list("/proc/" + p + "/fd");
    if (!fds) continue;  // gone, or not ours to read
    std::vector<std::string> seen;
    for (const auto& fd : *fds) {
      auto t = fs.readlink("/proc/" + p + "/fd/" + fd);
      if (!t) continue;
      for (const auto& [node, addr] : nodes) {
        if (*t != node || std::find(seen.begin(), seen.end(), node) != seen.end()) continue;
        seen.push_back(node);
        Holder h{pid, read_attr(fs, "/proc/" + p + "/comm", "?"), node, addr, start_time_of(fs, pid)};
        if (h.start_time.empty()) continue;  // exited while we looked
        out.push_back(std::move(h));
      }
    }
  }
  return out;
}

namespace {

std::string describe_holders(const std::vector<Holder>& hs) {
  std::string s;
  for (const auto& h : hs) {
    if (!s.empty()) s += ", ";
    s += h.name + " (" + std::to_string(h.pid) + ") holds " + h.node + (h.address.empty() ? "" : " (" + h.address + ")");
  }
  return s;
}

class Holders : public Step {
 public:
  Holders(std::vector<std::string> addrs, bool terminate, bool nvidia_control)
      : addrs_(std::move(addrs)), terminate_(terminate), nvidia_control_(nvidia_control) {}
  std::string kind() const override { return "holders"; }
  std::string describe() const override {
    return std::string(terminate_ ? "terminate" : "refuse on") + " processes holding the GPU";
  }

  std::vector<Holder> scan(StepContext& ctx) {
    PciSysfs pci(ctx.host.fs);
    std::vector<std::pair<std::string, std::string>> nodes;
    for (const auto& a : addrs_) {
      auto d = pci.device(a);
      bool nvidia = d && d->driver == "nvidia";
      for (auto& n : device_nodes_of(ctx.host.fs, a, nvidia, nvidia_control_)) {
        bool dup = false;
        for (auto& [nn, aa] : nodes) dup |= (nn == n);
        if (!dup) nodes.emplace_back(n, n.rfind("/dev/nvidia", 0) == 0 ? "" : a);
      }
    }
    return find_holders(ctx.host.fs, nodes, ctx.host.signals.self_pid());
  }

  Result<Record> record(StepContext& ctx) override {
    found_ = scan(ctx);
    Record r{{"policy", terminate_ ? "terminate" : "refuse"}};
    std::string pids;
    for (const auto& h : found_) pids.append(pids.empty() ? "" : ",").append(std::to_string(h.pid)).append(":").append(h.name);
    r["holders"] = pids;
    return r;
  }

  Status apply(StepContext& ctx, const Record&) override {
    if (found_.empty()) return Status::success();
    if (!terminate_) {
      Error e;
      e.what = "the GPU is in use: " + describe_holders(found_);
      e.hint = "close these programs (or stop the service that runs them, [host] stop_services), "
               "or set [host] holders = \"terminate\" to end them on VM start";
      return e;
    }
    // Each process by pid and start time: one that exited meanwhile and whose pid was reused by
    // another is never signalled, nor waited for.
    std::vector<std::pair<int, std::string>> procs;
    for (const auto& h : found_)
      if (std::find(procs.begin(), procs.end(), std::pair{h.pid, h.start_time}) == procs.end())
        procs.emplace_back(h.pid, h.start_time);
    ctx.log.warn("terminating: " + describe_holders(found_));
    auto send = [&](int sig) {
      for (const auto& [pid, start] : procs)
        if (auto r = ctx.host.signals.signal_process(pid, start, sig); !r)
          ctx.log.warn(r.error().message());
    };
    send(SIGTERM);
    auto gone = [&] {
      for (const auto& [pid, start] : procs)
        if (start_time_of(ctx.host.fs, pid) == start) return false;
      return true;
    };
    Deadline d = ctx.deadline.sub(ctx.timeouts.terminate_ms);
    if (wait_until(d, gone)) return Status::success();
    send(SIGKILL);
    Deadline d2 = ctx.deadline.sub(2000);
    if (wait_until(d2, gone)) return Status::success();
    auto left = scan(ctx);
    if (left.empty()) return Status::success();
    Error e;
    e.what = "processes still hold the GPU after SIGKILL: " + describe_holders(left);
    e.hint = "they are probably stuck in the kernel; a reboot may be needed";
    return e;
  }

 private:
  std::vector<std::string> addrs_;
  bool terminate_;
  bool nvidia_control_;
  std::vector<Holder> found_;
};

Status undo_holders(StepContext& ctx, const Record& rec) {
  if (field(rec, "policy") == "terminate" && !field(rec, "holders").empty())
    ctx.log.info("processes terminated at prepare are not restarted: " + field(rec, "holders"));
  return Status::success();
}

}  // namespace

std::unique_ptr<Step> make_holders(const std::vector<std::string>& addrs, bool terminate, bool nvidia_control) {
  return std::make_unique<Holders>(addrs, terminate, nvidia_control);
}
StepKindInfo holders_kind() { return {undo_holders, {}, {}}; }

}  // namespace gpuhook

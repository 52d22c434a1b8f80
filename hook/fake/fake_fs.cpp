#include <algorithm>

#include "fake/fake_host.h"

namespace gpuhook {

namespace {
std::vector<std::string> split_path(const std::string& p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < p.size()) {
    while (i < p.size() && p[i] == '/') ++i;
    size_t b = i;
    while (i < p.size() && p[i] != '/') ++i;
    if (i > b) out.push_back(p.substr(b, i - b));
  }
  return out;
}
std::string join(const std::vector<std::string>& parts) {
  if (parts.empty()) return "/";
  std::string s;
  for (const auto& p : parts) s += "/" + p;
  return s;
}
Error enoent(const std::string& what, const std::string& path) { return sys_error(what, path, ENOENT); }
}  // namespace

std::string FakeFs::resolve(const std::string& path, bool follow_last) const {
  std::vector<std::string> todo = split_path(path);
  std::reverse(todo.begin(), todo.end());
  std::vector<std::string> done;
  int links = 0;
  while (!todo.empty()) {
    std::string c = todo.back();
    todo.pop_back();
    if (c == ".") continue;
    if (c == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    done.push_back(c);
    std::string cur = join(done);
    auto it = nodes_.find(cur);
    if (it == nodes_.end()) {
      if (todo.empty()) return cur;  // last component may be missing (caller checks)
      return "";
    }
    if (it->second.type == FileType::symlink && (follow_last || !todo.empty())) {
      if (++links > 40) return "";
      done.pop_back();
      const std::string& t = it->second.data;
      if (!t.empty() && t[0] == '/') done.clear();
      auto tp = split_path(t);
      for (auto r = tp.rbegin(); r != tp.rend(); ++r) todo.push_back(*r);
    }
  }
  return join(done);
}

Result<std::string> FakeFs::read(const std::string& path) {
  std::string r = resolve(path, true);
  auto it = nodes_.find(r);
  if (r.empty() || it == nodes_.end()) return enoent("cannot read " + path, path);
  if (it->second.type == FileType::directory) return sys_error("cannot read " + path, path, EISDIR);
  return kernel ? kernel->on_read(r, it->second.data) : it->second.data;
}

Status FakeFs::write(const std::string& path, std::string_view data) {
  std::string r = resolve(path, true);
  auto it = nodes_.find(r);
  if (r.empty() || it == nodes_.end()) return enoent("cannot write " + path, path);
  if (it->second.type != FileType::regular) return sys_error("cannot write " + path, path, EISDIR);
  writes.push_back(r + " <- " + trim(data));
  if (kernel) return kernel->on_write(r, data, nullptr);
  it->second.data = std::string(data);
  return Status::success();
}

Status FakeFs::write_guarded(const std::string& path, std::string_view data, const Deadline& d) {
  if (d.expired()) {  // as RealFs: nothing is started
    Error e;
    e.what = "writing '" + trim(data) + "' to " + path + " was not started";
    e.why = "the deadline had already passed";
    e.timed_out = true;
    return e;
  }
  std::string r = resolve(path, true);
  auto it = nodes_.find(r);
  if (r.empty() || it == nodes_.end()) return enoent("cannot write '" + trim(data) + "' to " + path, path);
  if (it->second.type != FileType::regular) return sys_error("cannot write '" + trim(data) + "' to " + path, path, EISDIR);
  writes.push_back(r + " <- " + trim(data) + " (guarded)");
  if (kernel) return kernel->on_write(r, data, &d);
  it->second.data = std::string(data);
  return Status::success();
}

Result<OpenedFile> FakeFs::read_nofollow(const std::string& path) {
  std::string r = resolve(path, false);
  auto it = nodes_.find(r);
  if (r.empty() || it == nodes_.end()) return enoent("cannot read " + path, path);
  if (it->second.type == FileType::symlink) {
    Error e = sys_error("cannot read " + path, path, ELOOP);
    e.why = path + " is a symbolic link";
    return e;
  }
  OpenedFile f;
  f.info = FakeFs::stat(r, false);  // the node itself, as fstat of the descriptor
  if (it->second.type != FileType::regular) {
    Error e = sys_error("cannot read " + path, path, EINVAL);
    e.why = path + " is not a regular file";
    return e;
  }
  f.content = kernel ? kernel->on_read(r, it->second.data) : it->second.data;
  return f;
}

Result<std::string> FakeFs::readlink(const std::string& path) {
  std::string r = resolve(path, false);
  auto it = nodes_.find(r);
  if (r.empty() || it == nodes_.end()) return enoent("cannot read link " + path, path);
  if (it->second.type != FileType::symlink) return sys_error("cannot read link " + path, path, EINVAL);
  return it->second.data;
}

Result<std::string> FakeFs::canonical(const std::string& path) {
  std::string r = resolve(path, true);
  if (r.empty() || !nodes_.count(r)) return enoent("cannot resolve " + path, path);
  return r;
}

Result<std::vector<std::string>> FakeFs::list(const std::string& path) {
  std::string r = resolve(path, true);
  auto it = nodes_.find(r);
  if (r.empty() || it == nodes_.end()) return enoent("cannot list " + path, path);
  if (it->second.type != FileType::directory) return sys_error("cannot list " + path, path, ENOTDIR);
  std::string prefix = r == "/" ? "/" : r + "/";
  std::vector<std::string> names;
  for (auto i = nodes_.lower_bound(prefix); i != nodes_.end() && i->first.compare(0, prefix.size(), prefix) == 0; ++i) {
    std::string rest = i->first.substr(prefix.size());
    if (!rest.empty() && rest.find('/') == std::string::npos) names.push_back(rest);
  }
  return names;
}

FileInfo FakeFs::stat(const std::string& path, bool follow) {
  FileInfo fi;
  std::string r = resolve(path, follow);
  auto it = nodes_.find(r);
  if (r.empty() || it == nodes_.end()) return fi;
  fi.type = it->second.type;
  fi.mode = it->second.mode;
  fi.uid = it->second.uid;
  fi.gid = it->second.gid;
  fi.size = it->second.sparse >= 0 ? it->second.sparse : static_cast<long long>(it->second.data.size());
  return fi;
}

Status FakeFs::write_atomic(const std::string& path, std::string_view data, unsigned mode) {
  // As rename(2) in RealFs: the directory is found through links, the last component never.
  std::string dir = resolve(dirname_of(path), true);
  if (dir.empty() || !nodes_.count(dir) || nodes_.at(dir).type != FileType::directory)
    return enoent("cannot create " + path, path);
  std::string target = (dir == "/" ? "" : dir) + "/" + basename_of(path);
  auto it = nodes_.find(target);
  if (it != nodes_.end() && it->second.type == FileType::symlink)
    return sys_error("refusing to replace a symlink", path, ELOOP);
  if (it != nodes_.end() && it->second.type == FileType::directory)
    return sys_error("cannot replace " + path, path, EISDIR);
  if (kernel) {
    if (auto s = kernel->on_write(target, data, nullptr); !s) return s;  // fault injection on state files
  }
  put_file(target, std::string(data), mode);
  return Status::success();
}

Status FakeFs::make_dirs(const std::string& path, unsigned mode) {
  auto parts = split_path(path);
  std::vector<std::string> cur;
  for (const auto& p : parts) {
    cur.push_back(p);
    std::string c = join(cur);
    auto it = nodes_.find(c);
    if (it == nodes_.end()) put_dir(c, mode);
    else if (it->second.type == FileType::symlink) return sys_error("refusing a symlink in a state path", c, ELOOP);
    else if (it->second.type != FileType::directory) return sys_error("cannot create " + path, c, ENOTDIR);
  }
  return Status::success();
}

Status FakeFs::remove(const std::string& path) {
  // As unlink(2): a link itself is removed, never what it points to; a directory is refused.
  std::string r = resolve(path, false);
  auto it = r.empty() ? nodes_.end() : nodes_.find(r);
  if (it == nodes_.end()) return Status::success();
  if (it->second.type == FileType::directory) return sys_error("cannot remove " + path, path, EISDIR);
  nodes_.erase(it);
  return Status::success();
}

void FakeFs::put_file(const std::string& path, std::string data, unsigned mode, unsigned uid) {
  std::string dir = dirname_of(path);
  if (dir != path && !nodes_.count(dir)) put_dir(dir);
  nodes_[path] = Node{FileType::regular, std::move(data), mode, uid};
}

void FakeFs::put_dir(const std::string& path, unsigned mode, unsigned uid) {
  std::string dir = dirname_of(path);
  if (dir != path && !nodes_.count(dir)) put_dir(dir);
  auto& n = nodes_[path];
  n.type = FileType::directory;
  n.mode = mode;
  n.uid = uid;
}

Status FakeFs::create_sized(const std::string& path, long long size, unsigned mode, unsigned uid, unsigned gid) {
  std::string dir = dirname_of(path);
  auto d = nodes_.find(dir);
  if (d == nodes_.end() || d->second.type != FileType::directory) return enoent("cannot open the directory of " + path, dir);
  if (nodes_.count(path)) return sys_error("cannot create " + path, path, EEXIST);  // O_EXCL|O_NOFOLLOW
  if (kernel) {
    if (auto s = kernel->on_write(path, "", nullptr); !s) return s;  // fault injection
  }
  writes.push_back(path + " <- (create " + std::to_string(size) + " bytes)");
  Node n{FileType::regular, "", mode & 07777, uid, gid, size};
  nodes_[path] = n;
  return Status::success();
}

void FakeFs::put_link(const std::string& path, std::string target) {
  std::string dir = dirname_of(path);
  if (dir != path && !nodes_.count(dir)) put_dir(dir);
  nodes_[path] = Node{FileType::symlink, std::move(target), 0777, 0};
}

void FakeFs::erase(const std::string& path) { nodes_.erase(path); }

void FakeFs::erase_tree(const std::string& path) {
  nodes_.erase(path);
  std::string prefix = path + "/";
  auto it = nodes_.lower_bound(prefix);
  while (it != nodes_.end() && it->first.compare(0, prefix.size(), prefix) == 0) it = nodes_.erase(it);
}

std::map<std::string, std::string> FakeFs::snapshot(const std::vector<std::string>& exclude) const {
  std::map<std::string, std::string> s;
  for (const auto& [p, n] : nodes_) {
    bool skip = false;
    for (const auto& e : exclude)
      if (p == e || p.compare(0, e.size() + 1, e + "/") == 0) skip = true;
    if (skip) continue;
    std::string v = n.type == FileType::directory ? "dir" : n.type == FileType::symlink ? "link:" + n.data : "file:" + n.data;
    if (kernel && n.type == FileType::regular) v = "file:" + kernel->on_read(p, n.data);
    if (n.sparse >= 0)
      v = "file:(" + std::to_string(n.sparse) + " bytes, " + std::to_string(n.uid) + ":" + std::to_string(n.gid) + " " +
          std::to_string(n.mode) + ")";
    s[p] = v;
  }
  return s;
}

std::string diff_states(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  std::string d;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) d += "  - " + k + " (" + v + ")\n";
    else if (it->second != v) d += "  ~ " + k + ": " + v + " -> " + it->second + "\n";
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) d += "  + " + k + " (" + v + ")\n";
  return d;
}

}  // namespace gpuhook

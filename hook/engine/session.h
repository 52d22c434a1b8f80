// A session: the one way anything reads or changes a VM's gpuhook state (the hook's prepare,
// start, started, release, reconnect; the CLI's restore and status). Table of contents:
//   1. the host lock (/run/gpuhook/locks/host.lock): every session that may change the host holds
//      it for its whole length, so host-wide changes of two VMs never interleave (VM A's release
//      unloading vfio-pci between VM B's plan and B's bind); taken first, always;
//   2. the VM's lock (locks/vm.<vm>.lock), then its devices' locks (locks/<address>.lock) in
//      sorted order: one fixed order, so two sessions never deadlock;
//   3. who holds them: locks/<name>.owner says "pid op", so a session that cannot get a lock
//      names the event that has it;
//   4. the journal, always /run/gpuhook/<vm>.journal (kStateDir): never from the profile or the
//      global config, which a person may edit or break while the VM runs. The session's store is
//      the journal's only writer;
//   5. the event's deadline starts once the locks are held (waiting for a lock has its own bound).
// Lock files are flock()ed on descriptors that are close-on-exec, and the guarded writers close
// every inherited descriptor, so no child of a session ever holds its locks.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/journal.h"
#include "host/host.h"

namespace gpuhook {

class Session {
 public:
  struct Options {
    std::string op;          // for the owner file and messages: "prepare", "restore", ...
    Millis lock_wait_ms = 30000;
    bool host_lock = true;   // false: read-only sessions (status, reconnect)
  };
  // Takes the host lock (unless !host_lock) and the VM's lock. An Error names the holder.
  static Result<std::unique_ptr<Session>> open(Host& host, const std::string& vm, const Options& o);
  // Takes the host lock only: host-wide work that belongs to no VM (restore --all-modules).
  static Result<std::unique_ptr<Session>> open_host(Host& host, const Options& o);
  // Takes the devices' locks, sorted, after the VM's. Within the wait of open().
  Status lock_devices(std::vector<std::string> addresses);

  JournalStore& store() { return store_; }
  const std::string& vm() const { return vm_; }
  std::string state_dir() const { return kStateDir; }
  // The devices a journal names (claim and pci.vfio steps), for their locks.
  static std::vector<std::string> journal_devices(const Journal& j);

 private:
  Session(Host& host, std::string vm, Options o);
  Status take(const std::string& name, const Deadline& d);
  Host& host_;
  std::string vm_;
  Options opts_;
  JournalStore store_;
  Millis started_;
  std::vector<std::unique_ptr<LockHandle>> held_;
};

// Whether gpuhook has anything to do with this VM: a safe name, and a profile or a journal.
// For every other VM's events this is the whole work (one or two stat()s).
bool is_managed(Fs& fs, const std::string& vm, bool* has_profile_file = nullptr);

}  // namespace gpuhook

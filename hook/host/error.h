// Errors that a person reads: what failed, on which object, why, what to do next.
// Library code returns them; the caller logs once (systemd style).
#pragma once
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace gpuhook {

struct Error {
  std::string what;    // "cannot unbind 0000:01:00.0 from nvidia"
  std::string why;     // "write to /sys/bus/pci/drivers/nvidia/unbind: Device or resource busy"
  std::string hint;    // "stop the processes that use the card (gpuhook plan <vm>)"
  int code = 0;        // errno when it came from the system, else 0
  bool timed_out = false;
  // A guarded write (Fs::write_guarded) whose child was still in the kernel at the deadline: the
  // write may still happen later. Callers must check the real state, never assume it did not.
  bool may_complete = false;
  int pending_pid = 0;  // with may_complete: the writer process still in the kernel (0: unknown)
  // Undo only: the kernel made the previous state impossible to bring back until reboot (the
  // firmware framebuffer's platform device was unregistered, a vtconsole vanished with its
  // framebuffer). Not a failure to retry: the engine logs one warning with `hint` and drops the step.
  bool gone = false;
  // Stable identifier of the kind of problem ("gpu-not-isolated", "holders", ...), for `check`
  // and --json: code maps by id, never by matching the English text. Empty when none applies.
  std::string id;

  std::string message() const {
    std::string m = what;
    if (!why.empty()) m += ": " + why;
    return m;
  }
};

inline Error sys_error(std::string what, const std::string& path, int err) {
  Error e;
  e.what = std::move(what);
  e.why = path + ": " + std::strerror(err);
  e.code = err;
  return e;
}

// Result<T>: a value or an Error. Minimal stand-in for std::expected (C++23).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}                 // NOLINT: implicit by design
  Result(Error e) : v_(std::move(e)) {}             // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }
  T value_or(T d) const { return ok() ? value() : std::move(d); }

 private:
  std::variant<T, Error> v_;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : e_(std::move(e)) {}  // NOLINT
  static Status success() { return Status(); }
  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *e_; }

 private:
  std::optional<Error> e_;
};

}  // namespace gpuhook

// Clock: the only way the program reads time or waits. Fake clocks advance virtually.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace gpuhook {

using Millis = std::int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis now_ms() = 0;            // monotonic
  virtual void sleep_ms(Millis ms) = 0;
  virtual std::string wall_time() = 0;   // ISO 8601 UTC, for journals and logs
};

// A point in time after which work must stop. Copyable; derived deadlines never exceed the parent.
class Deadline {
 public:
  Deadline(Clock& c, Millis budget_ms) : clock_(&c), end_(c.now_ms() + budget_ms) {}
  Millis remaining() const {
    Millis r = end_ - clock_->now_ms();
    return r > 0 ? r : 0;
  }
  bool expired() const { return remaining() == 0; }
  Deadline sub(Millis budget_ms) const {
    Deadline d = *this;
    Millis e = clock_->now_ms() + budget_ms;
    if (e < d.end_) d.end_ = e;
    return d;
  }
  Clock& clock() const { return *clock_; }

 private:
  Clock* clock_;
  Millis end_;
};

// Polls pred until it holds or the deadline passes; no fixed sleeps: short intervals growing to 50 ms.
inline bool wait_until(const Deadline& d, const std::function<bool()>& pred) {
  Millis step = 1;
  for (;;) {
    if (pred()) return true;
    if (d.expired()) return false;
    Millis r = d.remaining();
    d.clock().sleep_ms(step < r ? step : r);
    if (step < 50) step *= 2;
  }
}

}  // namespace gpuhook

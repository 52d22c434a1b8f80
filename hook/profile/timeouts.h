// Timeouts: how long gpuhook waits, per event and per kind of wait. Set by the profile and the
// global config ([timeouts]); journaled at prepare so release waits by the same numbers.
#pragma once
#include "host/clock.h"

namespace gpuhook {

struct Timeouts {
  Millis event_ms = 30000;    // the whole event
  Millis unbind_ms = 10000;   // one driver unbind/probe
  Millis command_ms = 10000;  // one external program
  Millis service_ms = 20000;  // a unit to stop or start
  Millis terminate_ms = 5000; // holders between SIGTERM and SIGKILL
};

}  // namespace gpuhook

// The planner's part for [tuning] and Looking Glass (issues 13, 16): from the profile, the domain
// and the host, the prepare steps (huge pages, CPU isolation, governor, sleep inhibitor, shared
// memory), the refusals (before anything changes) and the notes for what has nothing to do.
#pragma once
#include <string>
#include <vector>

#include "domain/domain_xml.h"
#include "engine/step.h"
#include "profile/profile.h"

namespace gpuhook {

// A reason to refuse, with its stable id (check's finding id; README's finding table). planner.cpp.
Error refusal(std::string id, std::string what, std::string why, std::string hint);

struct TuningPlan {
  StepList steps;
  std::vector<Error> refusals;
  std::vector<std::string> notes;
};

TuningPlan plan_tuning(Host& host, const Profile& p, const DomainInfo* domain, const std::string& vm);

// The shared memory a Looking Glass domain declares: its <shmem> (ivshmem-plain, named
// looking-glass first), or nullptr.
const DomainShmem* looking_glass_shmem(const DomainInfo& d);

}  // namespace gpuhook

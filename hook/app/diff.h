// A unified diff of two texts, line by line (what `diff -u` prints), for `gpuhook setup` to show
// what it changes in the domain XML and the profile. "" when the texts are equal.
#pragma once
#include <string>

namespace gpuhook {

std::string unified_diff(const std::string& a, const std::string& b, const std::string& label_a, const std::string& label_b,
                         int context = 3);

}  // namespace gpuhook

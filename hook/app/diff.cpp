#include "app/diff.h"

#include <algorithm>
#include <vector>

namespace gpuhook {
namespace {

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  size_t b = 0;
  while (b < s.size()) {
    size_t e = s.find('\n', b);
    if (e == std::string::npos) e = s.size();
    v.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  return v;
}

}  // namespace

std::string unified_diff(const std::string& a, const std::string& b, const std::string& label_a, const std::string& label_b,
                         int context) {
  if (a == b) return "";
  auto x = lines_of(a), y = lines_of(b);
  // Common prefix and suffix first: domain XMLs differ in a few places, the LCS runs on the rest.
  size_t pre = 0;
  while (pre < x.size() && pre < y.size() && x[pre] == y[pre]) ++pre;
  size_t suf = 0;
  while (suf < x.size() - pre && suf < y.size() - pre && x[x.size() - 1 - suf] == y[y.size() - 1 - suf]) ++suf;
  size_t n = x.size() - pre - suf, m = y.size() - pre - suf;
  bool small = n * m <= 4000000;  // else: all of a's middle removed, all of b's added
  std::vector<std::vector<unsigned>> L(small ? n + 1 : 1, std::vector<unsigned>(small ? m + 1 : 1, 0));
  for (size_t i = small ? n : 0; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      L[i][j] = x[pre + i] == y[pre + j] ? L[i + 1][j + 1] + 1 : std::max(L[i + 1][j], L[i][j + 1]);
  // The edit script over whole documents: ' ', '-', '+' with line numbers in a and b.
  struct Op { char k; size_t ia, ib; };
  std::vector<Op> ops;
  for (size_t i = 0; i < pre; ++i) ops.push_back({' ', i, i});
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (!small) {
      if (i < n) ops.push_back({'-', pre + i++, pre + j});
      else ops.push_back({'+', pre + i, pre + j++});
    } else if (i < n && j < m && x[pre + i] == y[pre + j]) ops.push_back({' ', pre + i++, pre + j++});
    else if (i < n && (j == m || L[i + 1][j] >= L[i][j + 1])) ops.push_back({'-', pre + i++, pre + j});  // removals first, as diff -u
    else ops.push_back({'+', pre + i, pre + j++});
  }
  for (size_t k = 0; k < suf; ++k) ops.push_back({' ', pre + n + k, pre + m + k});
  std::string out = "--- " + label_a + "\n+++ " + label_b + "\n";
  size_t c = static_cast<size_t>(context);
  for (size_t k = 0; k < ops.size();) {
    if (ops[k].k == ' ') { ++k; continue; }
    size_t start = k >= c ? k - c : 0;
    size_t end = k;  // extend while changes are within 2*context of each other
    size_t last = k;
    while (end < ops.size()) {
      if (ops[end].k != ' ') last = end;
      else if (end - last > 2 * c) break;
      ++end;
    }
    end = std::min(ops.size(), last + c + 1);
    size_t la = 0, lb = 0;
    for (size_t q = start; q < end; ++q) la += ops[q].k != '+', lb += ops[q].k != '-';
    size_t sa = ops[start].ia + (la ? 1 : 0), sb = ops[start].ib + (lb ? 1 : 0);
    out += "@@ -" + std::to_string(sa) + "," + std::to_string(la) + " +" + std::to_string(sb) + "," + std::to_string(lb) + " @@\n";
    for (size_t q = start; q < end; ++q) {
      const std::string& t = ops[q].k == '+' ? y[ops[q].ib] : x[ops[q].ia];
      out += ops[q].k + t + "\n";
    }
    k = end;
  }
  return out;
}

}  // namespace gpuhook

#include "keyonce/privacy.h"

#include "template/cpr.h"

namespace keyonce {

std::string MaskCpr(std::string_view text) {
  auto m = cpr::FindInText(text);
  if (!m) return std::string(text);  // most text: one scan, one copy
  std::string out;
  out.reserve(text.size());
  size_t done = 0;
  for (; m; m = cpr::FindInText(text, m->end)) {
    out.append(text.substr(done, m->begin - done));
    // Digits become x, the separators stay: the spelling is still visible
    // (it helps to see where a number came from) but not the number.
    for (size_t k = m->begin; k < m->date_end; ++k) {
      out.push_back(text[k] >= '0' && text[k] <= '9' ? 'x' : text[k]);
    }
    out.append(text.substr(m->date_end, m->end - 4 - m->date_end));
    out.append("xxxx");
    done = m->end;
  }
  out.append(text.substr(done));
  return out;
}

}  // namespace keyonce

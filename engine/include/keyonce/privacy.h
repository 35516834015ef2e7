// Personal data out of every message: what the engine and the connectors use
// before a text is printed, logged, stored in run history or put into an
// error (e.g. a server's error page, a database's message).
#pragma once

#include <string>
#include <string_view>

namespace keyonce {

// Masks CPR numbers, in every spelling the cpr filter knows, each standing
// alone and with a possible birth date: their digits become 'x', their
// separators stay ("01.01.85-1233" -> "xx.xx.xx-xxxx"). Numbers whose first
// six digits are no date are left alone ("1048576000 bytes"). Runs on every
// log line: one pass, and a single copy when there is nothing to mask.
std::string MaskCpr(std::string_view text);

}  // namespace keyonce

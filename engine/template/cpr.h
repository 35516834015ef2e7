// Danish CPR numbers (personnummer): shape, century rule, modulus 11.
// Internal header; the engine may use it (e.g. for privacy checks).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace keyonce::cpr {

// True for exactly "DDMMYY-SSSS" or "DDMMYYSSSS" (ASCII digits); the birth
// date is not checked.
bool IsCprShape(std::string_view s);

// The 10 digits of a CPR in either shape, or nullopt when the shape is wrong.
std::optional<std::string> Normalize(std::string_view s);

// "DDMMYY-SSSS" from 10 digits.
std::string Dashed(std::string_view ten_digits);

// The four-digit birth year from 10 digits by the century rule (7th digit
// and YY): 0-3 -> 1900s; 4 and 9 -> 2000s if YY <= 36 else 1900s; 5-8 ->
// 2000s if YY <= 57 else 1800s.
int BirthYear(std::string_view ten_digits);

struct BirthDate {
  int year = 0;
  int month = 0;
  int day = 0;
};
// The birth date from 10 digits, or nullopt when it is not a calendar date.
std::optional<BirthDate> Birthdate(std::string_view ten_digits);
// "YYYY-MM-DD".
std::string IsoDate(const BirthDate& d);

// True for an odd last digit.
bool IsMale(std::string_view ten_digits);

// Weights 4,3,2,7,6,5,4,3,2,1; sum % 11 == 0. Not required since 2007.
bool PassesMod11(std::string_view ten_digits);

// Shape and birth date are valid (modulus 11 is not required).
bool IsValid(std::string_view s);

// True when the first six of `digits` (DDMMYY) can begin a CPR number: a
// calendar date in some century. 29 February counts in every year, since
// only the 7th digit tells the century. With `substitutes`, a substitute
// number's date counts too (erstatningspersonnummer: cpr.dk advises raising
// the day's first digit by 6, so the 7th is written 67).
bool HasPossibleBirthDate(std::string_view digits, bool substitutes = false);

// A CPR number found in free text by FindInText: `text.substr(begin, end -
// begin)` is the number as written; its digits are the six at
// [begin, date_end) (the separators of a spelling like DD.MM.YY skipped) and
// the four at [end - 4, end).
struct TextMatch {
  size_t begin = 0;
  size_t date_end = 0;
  size_t end = 0;
  // The ten digits, DDMMYYSSSS.
  std::string Digits(std::string_view text) const;
};

// The first CPR number in `text` at or after `from`, however a person or a
// system wrote it: DDMMYY then the serial number SSSS, either run together
// (DDMMYYSSSS, not followed by a decimal fraction) or apart; or DD.MM.YY /
// DD-MM-YY, apart from SSSS. "Apart" is at most one mark (a hyphen, a dot, a
// slash, a Unicode dash or minus) with up to three blanks (spaces, no-break
// spaces) on each side, or blanks alone; each may be escaped as JSON, HTML or
// XML write it (\u00a0, &nbsp;, &#xA0;, &ndash;, ...). The number stands
// alone (no ASCII letter or digit right before or after it) and its date is
// possible (HasPossibleBirthDate, substitute numbers included). Linear in the
// text.
std::optional<TextMatch> FindInText(std::string_view text, size_t from = 0);

// The warning given when a CPR fails modulus 11.
inline constexpr std::string_view kMod11Warning =
    "CPR number fails the modulus-11 check (allowed since 2007)";

}  // namespace keyonce::cpr

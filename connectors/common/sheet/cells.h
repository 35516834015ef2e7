// Cells as a person sees them: column letters, cell references, numbers,
// and dates and times recognised from a cell's number format. Shared by the
// spreadsheet sources (xlsx, ods, xls).
//
// Dates in spreadsheets are numbers (days since an epoch) shown through a
// number format. A format is a date, a time or both when its first section
// holds d, m, y, h or s outside quotes, backslash escapes and brackets
// ([Red], [$-406]); [h], [m] and [s] (elapsed time) count as time. Such a
// cell becomes ISO text: "2024-03-01", "2024-03-01T08:30:00", "08:30:00".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "keyonce/value.h"

namespace keyonce::connectors::sheet {

// "A" for 1, "Z" for 26, "AA" for 27 ... "XFD" for 16384.
std::string ColumnLetters(int column);

struct CellRef {
  int column = 0;   // 1-based
  int64_t row = 0;  // 1-based; 0 when the reference has no row ("B")
};
// "B17" -> {2, 17}, "$B$17" too; nullopt when it is not a cell reference.
std::optional<CellRef> ParseCellRef(std::string_view text);
// "B17" for {2, 17}.
std::string CellName(int column, int64_t row);

enum class DateKind { kNone, kDate, kDateTime, kTime, kElapsedTime };

// The kind of a number format code ("dd-mm-yyyy", "h:mm", "[h]:mm:ss",
// "0.00", "General", "[Red]0.0", "\"Dag\" 0").
DateKind ClassifyFormatCode(std::string_view code);
// The kind of a built-in format id of the Office Open XML standard: 14-17
// dates, 18-21 and 45-47 times (46 elapsed), 22 date and time.
DateKind ClassifyBuiltinFormat(int id);

enum class DateSystem { k1900, k1904 };

// The serial number `serial` shown as `kind` (not kNone), as ISO text:
// "2024-03-01", "2024-03-01T08:30:00", "08:30:00", elapsed "36:15:00".
// Seconds are rounded to the nearest. In the 1900 system serial 60 is the
// day Excel believes existed, and shows: "1900-02-29"; serials below 60 are
// counted from 1899-12-31 (serial 1 is 1900-01-01), later ones from
// 1899-12-30. nullopt for a serial no date can show (negative, or past the
// year 9999).
std::optional<std::string> SerialToIso(double serial, DateKind kind, DateSystem system);

// A number as written in a cell ("42", "-3", "2.5", "1E+2"): an integer
// value (int64) when it is integral and fits, else a double. nullopt when
// the text is not a number.
std::optional<Value> ParseNumber(std::string_view text);

}  // namespace keyonce::connectors::sheet

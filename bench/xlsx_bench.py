#!/usr/bin/python3
"""The xlsx benchmark's data and its openpyxl peer (see bench/README.md).

  xlsx_bench.py gen ROWS OUT.xlsx      the absence export of bench.py gen, as an
                                       Excel sheet (openpyxl, write-only mode):
                                       real dates and numbers, text stays text
  xlsx_bench.py baseline IN.xlsx DB    openpyxl (read-only mode) into SQLite,
                                       the same upsert as keyonce's recipe
  xlsx_bench.py write IN.csv OUT.xlsx  bench.py's CSV into a sheet with openpyxl
                                       (write-only mode): csv_to_xlsx.sh's peer
  xlsx_bench.py compare-xlsx A B       print the data rows of A and of B and how
                                       many rows differ in a cell (value or type)

Needs Debian's python3-openpyxl (run with /usr/bin/python3).
"""
import csv
import datetime
import os
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the CSV generator and its converters)

from openpyxl import Workbook, load_workbook  # noqa: E402

COLUMNS = ["cpr", "name", "department", "from_date", "to_date", "hours", "cause", "note",
           "employee_no", "cost_centre", "position", "registered_at"]


def _date(s):
    return datetime.datetime.strptime(s, "%d-%m-%Y").date() if s else None


def gen(rows, path):
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "data.csv")
        bench.gen(rows, src, 20261126)
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("Fravær")
        ws.append(COLUMNS)
        with open(src, encoding="windows-1252", newline="") as f:
            reader = csv.reader(f, delimiter=";")
            next(reader)
            for r in reader:
                hours = bench.dk_number(r[5])
                ws.append([
                    bench.norm_cpr(r[0]), r[1], r[2], _date(r[3]), _date(r[4]), hours, r[6],
                    r[7] or None, int(r[8]), r[9], r[10],
                    datetime.datetime.strptime(r[11], "%d-%m-%Y %H:%M"),
                ])
        wb.save(path)


SQL_COLUMNS = bench.SQL_COLUMNS


def iso(v):
    """A cell as keyonce's xlsx source gives it: dates as ISO text."""
    if isinstance(v, datetime.datetime):
        if v.time() == datetime.time(0, 0):
            return v.date().isoformat()
        return v.isoformat(timespec="seconds")
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v


def baseline(xlsx_path, db_path, batch=10000):
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS absence (%s)" % ", ".join(SQL_COLUMNS))
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS absence_key ON absence (cpr, from_date)")
    sql = "INSERT INTO absence (%s) VALUES (%s) ON CONFLICT (cpr, from_date) DO UPDATE SET %s" % (
        ", ".join(SQL_COLUMNS), ", ".join("?" * len(SQL_COLUMNS)),
        ", ".join("%s = excluded.%s" % (c, c) for c in SQL_COLUMNS[2:]))
    wb = load_workbook(xlsx_path, read_only=True)
    ws = wb.worksheets[0]
    rows_iter = ws.iter_rows(values_only=True)
    header = list(next(rows_iter))
    idx = [header.index(c) for c in SQL_COLUMNS]
    n = 0
    rows = []

    def flush():
        db.execute("BEGIN")
        db.executemany(sql, rows)
        db.execute("COMMIT")
        rows.clear()

    for r in rows_iter:
        rows.append([iso(r[i]) for i in idx])
        n += 1
        if len(rows) >= batch:
            flush()
    if rows:
        flush()
    wb.close()
    db.close()
    return n


WRITE_COLUMNS = ["CPR", "Navn", "Afdeling", "Fra dato", "Til dato", "Timer", "Årsag", "Note",
                 "Medarbejdernr", "Omkostningssted"]


def write(csv_path, xlsx_path):
    """The work of csv_to_xlsx.sh's recipe, by hand with openpyxl."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Fravær")
    ws.append(WRITE_COLUMNS)
    n = 0
    with open(csv_path, encoding="windows-1252", newline="") as f:
        reader = csv.reader(f, delimiter=";")
        next(reader)
        for r in reader:
            ws.append([bench.norm_cpr(r[0]), r[1], r[2], _date(r[3]), _date(r[4]),
                       bench.dk_number(r[5]), r[6], r[7] or None, r[8], r[9]])
            n += 1
    wb.save(xlsx_path)
    return n


def _cell(v):
    if isinstance(v, datetime.datetime):
        return iso(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if v == "":
        return None
    return v


def compare_xlsx(a_path, b_path):
    a = load_workbook(a_path, read_only=True).worksheets[0].iter_rows(min_row=2, values_only=True)
    b = load_workbook(b_path, read_only=True).worksheets[0].iter_rows(min_row=2, values_only=True)
    na = nb = differ = 0
    for ra, rb in zip(a, b):
        na += 1
        nb += 1
        ca, cb = [_cell(v) for v in ra], [_cell(v) for v in rb]
        if ca != cb or [type(v) for v in ca] != [type(v) for v in cb]:
            differ += 1
            if differ <= 3:
                print("differs: %r / %r" % (ca, cb), file=sys.stderr)
    na += sum(1 for _ in a)
    nb += sum(1 for _ in b)
    return "%d %d %d" % (na, nb, differ)


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "gen":
        gen(int(argv[2]), argv[3])
    elif argv[1] == "write":
        print("openpyxl write-only: %d records" % write(argv[2], argv[3]), file=sys.stderr)
    elif argv[1] == "compare-xlsx":
        print(compare_xlsx(argv[2], argv[3]))
    elif argv[1] == "baseline":
        print("openpyxl baseline: %d records" % baseline(argv[2], argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

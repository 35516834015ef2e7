#!/usr/bin/env python3
"""Helpers for bench/csv_to_sqlite_jsonl.sh (Python 3 standard library only).

Subcommands:
  gen ROWS OUT.csv [--seed N]      write the municipal absence CSV (cp1252, ';')
  baseline CSV DB JSONL            the plain-Python version of the recipe's work
  timeit OUT.tsv LABEL ROWS [--log F] -- CMD
                                   run CMD once; append wall s, cpu s, peak RSS
  count-sqlite DB TABLE            print the table's row count
  count-lines FILE                 print the file's number of lines
  compare DB_A DB_B TABLE          print rows of A missing from B and vice versa
  compare-jsonl A B                print how many lines differ as JSON values
  report OUT.tsv                   print the results table
"""

import csv
import datetime
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time

# ---------------------------------------------------------------------------
# Data generation
# ---------------------------------------------------------------------------

HEADER = [
    "cpr", "name", "department", "from_date", "to_date", "hours", "cause",
    "note", "employee_no", "cost_centre", "position", "registered_at",
]

FIRST = [
    "Søren", "Åse", "Jørgen", "Bjørn", "Mette", "Kirsten", "Lærke", "Anne", "Jens",
    "Mads", "Sofie", "Frederikke", "Rasmus", "Ida", "Mikkel", "Karen", "Hanne",
    "Ærling", "Øjvind", "René", "Birthe", "Niels", "Signe", "Morten", "Pia",
    "Lone", "Thomas", "Bodil", "Kåre", "Steffen", "Malene", "Jesper", "Tove",
]
LAST = [
    "Jensen", "Nielsen", "Hansen", "Pedersen", "Andersen", "Sørensen", "Rasmussen",
    "Jørgensen", "Nørgaard", "Østergård", "Kjær", "Mølgaard", "Bækgaard", "Ærø",
    "Løkke", "Madsen", "Kristensen", "Thomsen", "Poulsen", "Christiansen",
    "Dahl", "Skovgård", "Brøndum", "Lund", "Holm", "Damgård", "Frølund",
]
DEPARTMENTS = [  # code, cost centre, typical positions
    ("PLEJE1", "4410", ["Social- og sundhedshjælper", "Social- og sundhedsassistent", "Sygeplejerske"]),
    ("PLEJE2", "4420", ["Social- og sundhedshjælper", "Social- og sundhedsassistent", "Sygeplejerske"]),
    ("HJEM-N", "4310", ["Social- og sundhedshjælper", "Sygeplejerske", "Visitator"]),
    ("HJEM-S", "4320", ["Social- og sundhedshjælper", "Sygeplejerske"]),
    ("KØKKEN", "4600", ["Køkkenassistent", "Ernæringsassistent", "Økonoma"]),
    ("SKOLE1", "3110", ["Lærer", "Pædagog", "Skolesekretær", "Pedel"]),
    ("SKOLE3", "3130", ["Lærer", "Pædagog", "Skolesekretær"]),
    ("DAG07", "3507", ["Pædagog", "Pædagogmedhjælper", "Leder"]),
    ("DAG12", "3512", ["Pædagog", "Pædagogmedhjælper"]),
    ("TEK-VEJ", "2210", ["Vejmand", "Maskinfører", "Ingeniør"]),
    ("BORGSERV", "1120", ["Administrativ medarbejder", "Sagsbehandler"]),
    ("JOBCENTER", "5310", ["Jobkonsulent", "Sagsbehandler"]),
]
CAUSES = [
    ("Sygdom", 60), ("Barns 1. sygedag", 10), ("Lægebesøg", 6), ("Delvis sygemelding", 5),
    ("Arbejdsskade", 3), ("Graviditetsbetinget fravær", 3), ("Omsorgsdag", 8),
    ("Tandlæge", 3), ("Hospitalsindlæggelse", 2),
]
NOTES = [
    "", "", "", "", "", "", "",  # most rows have no note
    "Ringede ind kl. 6.45",
    "Sygemeldt; forventer at møde mandag",
    'Oplyst "influenza" af den ansatte',
    'Delvis: møder 4 timer; resten "sygdom"',
    "Lægeerklæring modtaget",
    "Afventer mulighedserklæring",
    'Barn syg; "feber" ifølge forælder',
    "Meddelt af leder (Bøgh)",
    "Fraværssamtale aftalt uge 12",
    'Sagt: "ryg; kan ikke løfte"',
    "Ønsker raskmelding før vagtskifte",
]


def _weighted(rng, items):
    total = sum(w for _, w in items)
    x = rng.uniform(0, total)
    for v, w in items:
        x -= w
        if x <= 0:
            return v
    return items[-1][0]


def _fake_cpr(rng, used):
    while True:
        year = rng.randint(1950, 2005)
        born = datetime.date(year, 1, 1) + datetime.timedelta(days=rng.randint(0, 364))
        if year >= 2000:
            d7 = rng.choice("45678")  # 4: 2000-2036, 5-8: 2000-2057
        else:
            d7 = rng.choice("0123")
        cpr = "%02d%02d%02d-%s%03d" % (born.day, born.month, year % 100, d7, rng.randint(0, 999))
        if cpr not in used:
            used.add(cpr)
            return cpr


def _hours(rng, days):
    """Hours for an absence of `days` calendar days, Danish decimal comma."""
    if rng.random() < 0.15:
        h = rng.choice([0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4])  # partial day
    else:
        h = round(days * rng.choice([7.4, 7.5, 8, 6, 5.5]), 2)
    whole, frac = divmod(round(h * 100), 100)
    if whole >= 1000:
        whole_s = "%d.%03d" % divmod(whole, 1000)  # thousands separator
    else:
        whole_s = str(whole)
    if frac == 0 and rng.random() < 0.5:
        return whole_s
    if frac % 10 == 0 and rng.random() < 0.5:
        return "%s,%d" % (whole_s, frac // 10)
    return "%s,%02d" % (whole_s, frac)


def gen(rows, path, seed):
    rng = random.Random(seed)
    per_person = 20
    persons = max(1, (rows + per_person - 1) // per_person)
    used = set()
    people = []
    for p in range(persons):
        dept, cc, positions = rng.choice(DEPARTMENTS)
        people.append((
            _fake_cpr(rng, used),
            "%s %s" % (rng.choice(FIRST), rng.choice(LAST)),
            dept, cc, rng.choice(positions), "%06d" % (100000 + p),
        ))
    base = datetime.date(2019, 1, 1)
    with open(path, "w", encoding="windows-1252", newline="") as f:
        w = csv.writer(f, delimiter=";", quotechar='"', quoting=csv.QUOTE_MINIMAL,
                       lineterminator="\r\n")
        w.writerow(HEADER)
        for i in range(rows):
            # Row i is person i % persons's (i // persons)-th absence: each
            # absence sits in its own 90-day window, so (cpr, from_date) is
            # unique and the export interleaves people as a rota export does.
            cpr, name, dept, cc, pos, empno = people[i % persons]
            window = i // persons
            start = base + datetime.timedelta(days=window * 90 + rng.randint(0, 80))
            days = 1 if rng.random() < 0.55 else rng.randint(2, 10)
            if rng.random() < 0.01:
                days = rng.randint(100, 200)  # long-term sick: 1.000+ hours
            end = start + datetime.timedelta(days=days - 1)
            to_date = "" if rng.random() < 0.05 else end.strftime("%d-%m-%Y")
            reg = start + datetime.timedelta(days=rng.randint(0, 3))
            w.writerow([
                cpr if rng.random() < 0.9 else cpr.replace("-", ""),
                name, dept, start.strftime("%d-%m-%Y"), to_date, _hours(rng, days),
                _weighted(rng, CAUSES), rng.choice(NOTES), empno, cc, pos,
                "%s %02d:%02d" % (reg.strftime("%d-%m-%Y"), rng.randint(6, 22), rng.randint(0, 59)),
            ])


# ---------------------------------------------------------------------------
# The plain-Python baseline: the same work as bench's recipe
# ---------------------------------------------------------------------------

_CPR = re.compile(r"\s*(\d{6})-?(\d{4})\s*")
_NUM_DK = re.compile(r"[+-]?\d{1,3}(\.\d{3})*(,\d+)?|[+-]?\d+(,\d+)?")


def dk_date(s):
    """'31-01-2024' -> '2024-01-31' (checked); '' -> None."""
    s = s.strip()
    if not s:
        return None
    if len(s) != 10 or s[2] != "-" or s[5] != "-":
        raise ValueError("date does not match %d-%m-%Y")
    return datetime.date(int(s[6:10]), int(s[3:5]), int(s[0:2])).isoformat()


def dk_number(s):
    """'1.234,5' -> 1234.5, '7' -> 7; '' -> None."""
    s = s.strip()
    if not s:
        return None
    if not _NUM_DK.fullmatch(s):
        raise ValueError("not a number with decimal comma")
    s = s.replace(".", "")
    return float(s.replace(",", ".")) if "," in s else int(s)


def norm_cpr(s):
    m = _CPR.fullmatch(s)
    if not m:
        if not s.strip():
            return None
        raise ValueError("not a CPR number")
    return m.group(1) + m.group(2)


SQL_COLUMNS = ["cpr", "from_date", "to_date", "hours", "name", "department", "cause",
               "note", "employee_no", "cost_centre"]


def baseline(csv_path, db_path, jsonl_path, batch=10000):
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")      # as keyonce's sqlite target
    db.execute("PRAGMA synchronous=FULL")      # keyonce's default
    db.execute("CREATE TABLE IF NOT EXISTS absence (%s)" % ", ".join(SQL_COLUMNS))
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS absence_key ON absence (cpr, from_date)")
    sql = "INSERT INTO absence (%s) VALUES (%s) ON CONFLICT (cpr, from_date) DO UPDATE SET %s" % (
        ", ".join(SQL_COLUMNS), ", ".join("?" * len(SQL_COLUMNS)),
        ", ".join("%s = excluded.%s" % (c, c) for c in SQL_COLUMNS[2:]))
    n = 0
    with open(csv_path, encoding="windows-1252", newline="") as f, \
            open(jsonl_path, "w", encoding="utf-8") as out:
        reader = csv.DictReader(f, delimiter=";")
        rows, lines = [], []
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

        def flush():
            db.execute("BEGIN")
            db.executemany(sql, rows)
            db.execute("COMMIT")
            out.write("".join(lines))
            out.flush()
            os.fsync(out.fileno())  # as keyonce's jsonl target (fsync per batch)
            rows.clear()
            lines.clear()

        for rec in reader:
            rec["cpr"] = norm_cpr(rec["cpr"])
            rec["from_date"] = dk_date(rec["from_date"])
            rec["to_date"] = dk_date(rec["to_date"])
            rec["hours"] = dk_number(rec["hours"])
            rows.append([rec[c] for c in SQL_COLUMNS])
            lines.append(dumps(rec) + "\n")
            n += 1
            if len(rows) >= batch:
                flush()
        if rows:
            flush()
    db.close()
    return n


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------

def timeit(out_tsv, label, rows, cmd, log=None):
    """Runs cmd once; appends label, rows, wall s, cpu s, peak RSS KiB, exit code."""
    out = open(log, "wb") if log else subprocess.DEVNULL
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=out if log else None)
    _, status, ru = os.wait4(proc.pid, 0)  # this child's own rusage (incl. its children)
    secs = time.perf_counter() - t0
    if log:
        out.close()
    rc = os.waitstatus_to_exitcode(status)
    cpu = ru.ru_utime + ru.ru_stime
    with open(out_tsv, "a") as f:
        f.write("%s\t%d\t%.4f\t%.4f\t%d\t%d\n" % (label, rows, secs, cpu, ru.ru_maxrss, rc))
    print("    %-30s %8.2f s wall %7.2f s cpu %7.1f MB  exit %d"
          % (label, secs, cpu, ru.ru_maxrss / 1024, rc), file=sys.stderr)
    return rc


def report(out_tsv):
    """Median wall time per (workload, rows) over the repeats; worst peak RSS."""
    runs = {}
    order = []
    with open(out_tsv) as f:
        for line in f:
            label, rows, secs, cpu, rss, rc = line.rstrip("\n").split("\t")
            k = (label, int(rows))
            if k not in runs:
                runs[k] = []
                order.append(k)
            runs[k].append((float(secs), float(cpu), int(rss), int(rc)))
    med = {}
    print()
    print("%-30s %9s %4s %9s %12s %9s %12s %5s" % (
        "workload", "rows", "runs", "seconds", "records/s", "cpu s", "peak RSS MB", "exit"))
    print("-" * 98)
    for k in order:
        rs = sorted(runs[k])
        secs, cpu, _, _ = rs[(len(rs) - 1) // 2]  # median (lower middle)
        rss = max(r[2] for r in rs)
        rc = max(r[3] for r in rs)
        med[k] = secs
        print("%-30s %9d %4d %9.2f %12.0f %9.2f %12.1f %5d" % (
            k[0], k[1], len(rs), secs, k[1] / secs, cpu, rss / 1024, rc))
    print()
    print("seconds: median wall time of the runs; cpu s: user+sys of that run; "
          "peak RSS: largest of the runs.")
    for rows in sorted({k[1] for k in order}):
        ks = med.get(("keyonce sqlite+jsonl", rows))
        ps = med.get(("python sqlite+jsonl", rows))
        rr = med.get(("keyonce rerun (no writes)", rows))
        if ks and ps:
            print("%d rows: keyonce/python records/s = %.2f" % (rows, ps / ks), end="")
            if rr:
                print("; keyonce rerun %.0f records/s (%.1fx the first run)"
                      % (rows / rr, ks / rr), end="")
            print()


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "gen":
        seed = 20261126
        if "--seed" in args:
            i = args.index("--seed")
            seed = int(args[i + 1])
            del args[i:i + 2]
        gen(int(args[0]), args[1], seed)
    elif cmd == "baseline":
        n = baseline(args[0], args[1], args[2])
        print("python baseline: %d records" % n)
    elif cmd == "timeit":
        sep = args.index("--")
        opts, command = args[:sep], args[sep + 1:]
        log = None
        if "--log" in opts:
            i = opts.index("--log")
            log = opts[i + 1]
            del opts[i:i + 2]
        out_tsv, label, rows = opts
        return timeit(out_tsv, label, int(rows), command, log)
    elif cmd == "count-sqlite":
        db = sqlite3.connect("file:%s?mode=ro" % args[0], uri=True)
        print(db.execute('SELECT count(*) FROM "%s"' % args[1]).fetchone()[0])
    elif cmd == "count-lines":
        with open(args[0], "rb") as f:
            print(sum(1 for _ in f))
    elif cmd == "compare":
        db = sqlite3.connect("file:%s?mode=ro" % args[0], uri=True)
        db.execute("ATTACH ? AS b", ("file:%s?mode=ro" % args[1],))
        cols = ", ".join(SQL_COLUMNS)
        t = args[2]
        a_not_b = db.execute("SELECT count(*) FROM (SELECT %s FROM main.%s EXCEPT SELECT %s FROM b.%s)"
                             % (cols, t, cols, t)).fetchone()[0]
        b_not_a = db.execute("SELECT count(*) FROM (SELECT %s FROM b.%s EXCEPT SELECT %s FROM main.%s)"
                             % (cols, t, cols, t)).fetchone()[0]
        print("%d %d" % (a_not_b, b_not_a))
    elif cmd == "compare-jsonl":
        # Same records in the same order, compared as parsed JSON values.
        diff = 0
        with open(args[0], encoding="utf-8") as a, open(args[1], encoding="utf-8") as b:
            for la, lb in zip(a, b):
                if la != lb and json.loads(la) != json.loads(lb):
                    diff += 1
        print(diff)
    elif cmd == "report":
        report(args[0])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Helpers for bench/http_post.sh (standard library only).

  http_post_bench.py gen N FILE                    a seeded CSV of N records
  http_post_bench.py post URL FILE [--threads T]   POST every row as JSON with
                                                   http.client, keep-alive, one
                                                   connection per thread
  http_post_bench.py report RESULTS RATES          the table
"""
import csv
import http.client
import json
import random
import sys
import threading
import urllib.parse

NAMES = ["Åse Ærø", "Søren Østergaard", "Jens Hansen", "Mette Frederiksen", "Ida Nørgaard",
         "Lars Løkke", "Anne Sørensen", "Bo Å. Jensen"]
DEPARTMENTS = ["KØKKEN", "RENGØRING", "PLEJE", "ADMINISTRATION", "SKOLE"]
CAUSES = ["Sygdom", "Barns sygdom", "Arbejdsskade"]
FIELDS = ["id", "name", "department", "from_date", "hours", "cause"]


def gen(n, path):
    rng = random.Random(20261126)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(FIELDS)
        for i in range(1, n + 1):
            w.writerow([str(i), rng.choice(NAMES), rng.choice(DEPARTMENTS),
                        "2026-%02d-%02d" % (rng.randint(1, 12), rng.randint(1, 28)),
                        rng.choice(["7,5", "37", "3,25", "8"]), rng.choice(CAUSES)])


def body(row):
    # The same JSON keyonce's recipe builds: every field as a string.
    return json.dumps({k: row[k] for k in FIELDS}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def post(url, path, threads):
    u = urllib.parse.urlsplit(url)
    counts = [0] * threads
    errors = [0] * threads

    def worker(k):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        with open(path, newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.DictReader(f)):
                if i % threads != k:
                    continue
                conn.request("POST", u.path, body(row), headers)
                r = conn.getresponse()
                r.read()
                if r.status == 201:
                    counts[k] += 1
                else:
                    errors[k] += 1
        conn.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("python http.client: %d records posted (201), %d errors" % (sum(counts), sum(errors)))
    return 0 if sum(errors) == 0 else 1


def report(results, rates_path):
    """results: bench.py timeit lines (label, rows, secs, cpu, maxrss KB, rc);
    rates: label -> requests, requests/s (for wrk, which runs for a fixed time)."""
    rates = {}
    with open(rates_path) as f:
        for line in f:
            label, n, rate = line.rstrip("\n").split("\t")
            rates[label] = (int(n), float(rate))
    rows = []
    with open(results) as f:
        for line in f:
            label, n, secs, cpu, rss, rc = line.rstrip("\n").split("\t")
            n, secs = int(n), float(secs)
            if label in rates:
                n, rate = rates[label]
            else:
                rate = n / secs if secs > 0 else 0
            rows.append((label, n, secs, rate, float(cpu), int(rss) / 1024, int(rc)))
    wrk = {}
    for r in rows:
        if r[0].startswith("wrk, "):
            wrk[r[0].split(", ")[1]] = r[3]  # "1 connection" / "8 connections"
    print()
    print("%-40s %9s %8s %11s %7s %9s %8s %5s" % (
        "workload", "requests", "seconds", "requests/s", "cpu s", "peak RSS", "% of wrk", "exit"))
    print("-" * 104)
    for label, n, secs, rate, cpu, rss, rc in rows:
        pct = ""
        conc = label.split(", ")[1] if ", " in label else ""
        if not label.startswith("wrk") and conc in wrk and wrk[conc] > 0:
            pct = "%.0f%%" % (100 * rate / wrk[conc])
        print("%-40s %9d %8.2f %11.0f %7.2f %6.1f MB %8s %5d" % (
            label, n, secs, rate, cpu, rss, pct, rc))
    print()
    print("% of wrk: requests/s relative to wrk at the same concurrency "
          "(1 connection / 8 connections). peak RSS: the process's own maximum resident set.")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "gen":
        gen(int(args[0]), args[1])
    elif cmd == "post":
        threads = 1
        if "--threads" in args:
            i = args.index("--threads")
            threads = int(args[i + 1])
            del args[i:i + 2]
        return post(args[0], args[1], threads)
    elif cmd == "report":
        report(args[0], args[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

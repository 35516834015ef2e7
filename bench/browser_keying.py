#!/usr/bin/env python3
"""Records keyed per minute into a web application: keyonce's browser target
with 1 and 3 sessions beside the same flow written with Selenium (Debian's
python3-selenium, what municipal robots use today), in one run.

The application is Sagsportalen (tests/servers/webapp/server.js) on 127.0.0.1
with its default timing (the form arrives ~100 ms after the page, the list of
benefits ~300 ms after). Every workload keys the same N applications into a
freshly reset application: log in, open the form, fill CPR, name, date,
choose the benefit, tick the consent, click "Opret sag", accept the confirm()
dialog, wait for the confirmation and read the case number. Afterwards the
application must hold each application exactly once with its case number
captured, else the benchmark exits 1.

Printed per workload: records, seconds, records/minute, and the peak RSS of
keyonce itself (VmHWM; the browsers are separate processes and are counted
apart: their summed peak RSS in the last column) or of the Python process.
It asserts no speed.

Usage: bench/browser_keying.sh [--records N] [--keyonce PATH] [--skip-selenium]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER, PASSWORD = "robot", "bench-" + os.urandom(6).hex()
YDELSER = ["Boligstøtte", "Boligydelse", "Huslejetilskud"]


def cpr(i):
    return "%02d%02d%02d-%04d" % (1 + i % 28, 1 + (i // 28) % 12, 40 + (i // 336) % 50, 1000 + i)


def applications(n):
    return [{"cpr": cpr(i), "navn": "Borger Nr %d" % i, "dato": "2026-11-%02d" % (1 + i % 28),
             "ydelse": YDELSER[i % 3]} for i in range(n)]


class Portal:
    def __init__(self, work):
        self.log = open(os.path.join(work, "portal.log"), "w+")
        self.proc = subprocess.Popen(
            ["node", os.path.join(ROOT, "tests/servers/webapp/server.js"), "--port", "0",
             "--user", USER, "--password", PASSWORD],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = None
        for _ in range(200):
            self.log.seek(0)
            for line in self.log:
                if line.startswith("listening on "):
                    self.url = line.split()[-1]
            if self.url:
                break
            time.sleep(0.05)
        if not self.url:
            sys.exit("Sagsportalen did not start")

    def control(self, body):
        req = urllib.request.Request(self.url + "/_test/control", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        return json.load(urllib.request.urlopen(req))

    def cases(self):
        return json.load(urllib.request.urlopen(self.url + "/_test/cases"))

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    kids = [int(x) for x in f.read().split()]
                out += kids
                todo += kids
        except OSError:
            pass
    return out


def kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Peak RSS of one process (its own VmHWM) and, apart, the summed RSS of its
    descendants (the browsers and drivers), sampled every 100 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.own, self.others, self.done = pid, 0, 0, False

    def run(self):
        while not self.done:
            self.own = max(self.own, kib(self.pid, "VmHWM"))
            self.others = max(self.others, sum(kib(p, "VmRSS") for p in descendants(self.pid)))
            time.sleep(0.1)


def measure(what, cmd, cwd, env):
    """Runs cmd to its end: seconds, its own peak RSS and its descendants' (KiB)."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    s = Sampler(p.pid)
    s.start()
    out = p.communicate()[0].decode()
    seconds = time.monotonic() - start
    s.done = True
    s.join()
    if p.returncode != 0:
        sys.exit(what + " failed:\n" + out)
    return seconds, s.own, s.others


RECIPE = """recipe: bench-browser
params:
  portal: {type: string, required: true}
secrets:
  portal_user: {env: PORTAL_USER}
  portal_password: {env: PORTAL_PASSWORD}
source: {type: csv, path: in.csv, delimiter: ";"}
key: "{{ record.cpr }}"
targets:
  - name: portal
    type: browser
    url: "{{ params.portal }}"
    sessions: @SESSIONS@
    login:
      - goto: /login
      - fill: {label: Brugernavn, value: "{{ secrets.portal_user }}"}
      - fill: {label: Adgangskode, value: "{{ secrets.portal_password }}"}
      - click: {role: button, name: Log ind}
      - expect: {text: Log ud}
    logged_out: {role: heading, name: Log ind}
    errors: {css: "[role=alert]"}
    write:
      - goto: /cases/new
      - fill: {label: CPR-nummer, value: "{{ record.cpr }}"}
      - fill: {label: Navn, value: "{{ record.navn }}"}
      - fill: {label: Ansøgningsdato, value: "{{ record.dato }}"}
      - select: {label: Ydelse, option: "{{ record.ydelse }}"}
      - check: {label: Samtykke givet}
      - click: {role: button, name: Opret sag, dialog: accept, submits: true}
      - expect: {text: Sagen er oprettet}
      - read: {sagsnummer: {label: Sagsnummer}}
    exists:
      actions:
        - goto: "/search?cpr={{ record.cpr | urlencode }}"
      found: {css: "#resultater tbody td"}
      absent: {text: Ingen sager fundet}
      read: {sagsnummer: {css: "#resultater tbody td", nth: 1}}
    capture: {sagsnummer: "{{ reply.sagsnummer }}"}
  - name: trail
    type: jsonl
    path: out/trail.jsonl
    body: {cpr: "{{ record.cpr }}", sag: "{{ captures.portal.sagsnummer }}"}
"""


def run_keyonce(keyonce, portal, work, apps, sessions):
    d = os.path.join(work, "keyonce-%d" % sessions)
    os.makedirs(d)
    with open(os.path.join(d, "recipe.yaml"), "w") as f:
        f.write(RECIPE.replace("@SESSIONS@", str(sessions)))
    with open(os.path.join(d, "in.csv"), "w") as f:
        f.write("cpr;navn;dato;ydelse\n")
        for a in apps:
            f.write("%s;%s;%s;%s\n" % (a["cpr"], a["navn"], a["dato"], a["ydelse"]))
    env = dict(os.environ, PORTAL_USER=USER, PORTAL_PASSWORD=PASSWORD, TMPDIR=work)
    seconds, own, others = measure("keyonce", [keyonce, "run", "recipe.yaml", "--state", "state.db",
                                               "--no-progress", "--param", "portal=" + portal.url],
                                   d, env)
    captured = {}
    with open(os.path.join(d, "out/trail.jsonl")) as f:
        for line in f:
            v = json.loads(line)
            captured[v["cpr"]] = v["sag"]
    return seconds, own, others, captured


SELENIUM = r'''
import json, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

url, user, password, apps_file, out_file = sys.argv[1:6]
apps = json.load(open(apps_file))
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
wait = WebDriverWait(driver, 10, poll_frequency=0.1)

def field(label):
    # The way such robots find a field: its <label>, then the element it names.
    lab = wait.until(EC.visibility_of_element_located(
        (By.XPATH, "//label[normalize-space()='%s']" % label)))
    return wait.until(EC.element_to_be_clickable((By.ID, lab.get_attribute("for"))))

def fill(label, value):
    el = field(label)
    el.clear()
    if el.get_attribute("type") == "date":
        driver.execute_script("arguments[0].value = arguments[1];"
                              "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
                              el, value)
    else:
        el.send_keys(value)

driver.get(url + "/login")
fill("Brugernavn", user)
fill("Adgangskode", password)
driver.find_element(By.XPATH, "//button[normalize-space()='Log ind']").click()
wait.until(EC.presence_of_element_located((By.LINK_TEXT, "Log ud")))
out = {}
for a in apps:
    driver.get(url + "/cases/new")
    fill("CPR-nummer", a["cpr"])
    fill("Navn", a["navn"])
    fill("Ansøgningsdato", a["dato"])
    # The list is replaced when its options arrive: wait for an enabled one.
    wait.until(lambda d: d.find_element(By.ID, field("Ydelse").get_attribute("id")).is_enabled()
               and len(Select(field("Ydelse")).options) > 1)
    for attempt in range(3):
        try:
            Select(field("Ydelse")).select_by_visible_text(a["ydelse"])
            break
        except Exception:
            time.sleep(0.1)
    box = field("Samtykke givet")
    if not box.is_selected():
        box.click()
    wait.until(EC.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Opret sag']"))).click()
    wait.until(EC.alert_is_present()).accept()
    wait.until(EC.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Sagen er oprettet"))
    out[a["cpr"]] = driver.find_element(By.ID, "sagsnummer").text
driver.quit()
json.dump(out, open(out_file, "w"))
'''


def run_selenium(portal, work, apps):
    d = os.path.join(work, "selenium")
    os.makedirs(d)
    script = os.path.join(d, "robot.py")
    with open(script, "w") as f:
        f.write(SELENIUM)
    with open(os.path.join(d, "apps.json"), "w") as f:
        json.dump(apps, f)
    out_file = os.path.join(d, "out.json")
    seconds, own, others = measure(
        "the Selenium robot", ["/usr/bin/python3", script, portal.url, USER, PASSWORD,
                               os.path.join(d, "apps.json"), out_file],
        d, dict(os.environ, TMPDIR=work))
    return seconds, own, others, json.load(open(out_file))


def check(portal, apps, captured, name):
    cases = portal.cases()
    by_cpr = {}
    for c in cases:
        by_cpr.setdefault(c["cpr"], []).append(c["sagsnummer"])
    bad = [a["cpr"] for a in apps if len(by_cpr.get(a["cpr"], [])) != 1]
    if bad or len(cases) != len(apps):
        sys.exit("%s: %d cases for %d applications (%d not exactly once)" %
                 (name, len(cases), len(apps), len(bad)))
    wrong = [a["cpr"] for a in apps if captured.get(a["cpr"]) != by_cpr[a["cpr"]][0]]
    if wrong:
        sys.exit("%s: %d case numbers not captured" % (name, len(wrong)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=60)
    ap.add_argument("--keyonce", default=os.environ.get("KEYONCE") or
                    os.path.join(ROOT, "build/engine/cli/keyonce"))
    ap.add_argument("--skip-selenium", action="store_true")
    args = ap.parse_args()
    apps = applications(args.records)
    # Short: chromium keeps sockets below TMPDIR (a socket path has at most 107 bytes).
    work = tempfile.mkdtemp(prefix="kb-", dir="/tmp")
    keyonce = os.path.join(work, "keyonce")
    shutil.copy(args.keyonce, keyonce)
    portal = Portal(work)
    rows = []
    try:
        workloads = [("keyonce, 1 session", lambda: run_keyonce(keyonce, portal, work, apps, 1)),
                     ("keyonce, 3 sessions", lambda: run_keyonce(keyonce, portal, work, apps, 3))]
        if not args.skip_selenium:
            workloads.insert(0, ("selenium (python3), 1 browser",
                                 lambda: run_selenium(portal, work, apps)))
        for name, fn in workloads:
            portal.control({"reset": True})
            seconds, own, others, captured = fn()
            check(portal, apps, captured, name)
            rows.append((name, seconds, own, others))
    finally:
        portal.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("%-32s %8s %9s %12s %12s %16s" % ("workload", "records", "seconds", "records/min",
                                            "peak RSS MB", "browsers MB"))
    for name, seconds, own, others in rows:
        print("%-32s %8d %9.1f %12.1f %12.1f %16.0f" % (name, len(apps), seconds,
                                                          len(apps) / seconds * 60, own / 1024,
                                                          others / 1024))
    base = next((r for r in rows if r[0].startswith("selenium")), None)
    if base:
        for name, seconds, _, _ in rows:
            if not name.startswith("selenium"):
                print("%s: %.2fx the Selenium robot's rate" % (name, base[1] / seconds))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()

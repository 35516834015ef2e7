// Reference fire times for keyonce's cron schedules, from two npm libraries:
// croner 9.1.0 and cron-parser 5.4.0 (pinned in tests/package.json).
//
// Cases: expressions x zones x start points 75 minutes before each of the
// zone's clock changes in 2026 and 2027 (Asia/Kolkata, which has none, at the
// European dates). croner gets every expression in every zone; cron-parser,
// which is about 20 times slower, gets every expression in Europe/Copenhagen
// and the DST-relevant subset elsewhere, and no Lord Howe fall-back cases
// (cron-parser 5.4.0 spends seconds per case there and returns the same
// instant repeatedly).
//
// Prints one JSON object per case and line:
//   {"ref":"croner","expr":"30 2 * * *","zone":"Europe/Copenhagen",
//    "from":"2026-03-28T23:45:00Z","next":["2026-03-29T01:30:00Z",...]}
// with "error" instead of "next" when the library rejects the expression.
// tests/schedule/reference_test.cc compares them with keyonce's.
//
// Usage: node reference.js [croner|cron-parser]   (default: both)
'use strict';

const COUNT = 5;
const LEAD_MINUTES = 75;

const EXPRESSIONS = [
  // Fixed times in and around the gap and overlap hours of the zones.
  '30 2 * * *', '0 2 * * *', '59 2 * * *', '0 3 * * *', '30 1 * * *', '0 1 * * *',
  '45 1 * * *', '15 0 * * *', '0 0 * * *', '30 3 * * *', '0 12 * * *', '5 4 * * *',
  // Steps and lists inside one or a few hours.
  '*/15 2 * * *', '*/10 1 * * *', '0,30 2 * * *', '0 2,3 * * *', '0 1-3 * * *',
  '15 1,2,3 * * *', '*/20 1-3 * * *',
  // Interval schedules (the hour field is * or a step).
  '0 * * * *', '*/30 * * * *', '*/15 * * * *', '15 * * * *', '45 * * * *', '0 */2 * * *',
  '30 */3 * * *', '*/20 * * * *', '10-50/20 * * * *', '5/15 * * * *', '0 0-23/1 * * *',
  // Names, day-of-month and day-of-week.
  '30 2 * * SUN', '0 2 * * sat,sun', '0 9 * * MON-FRI', '30 2 * MAR,APR,OCT,NOV *',
  '0 2 29 3 *', '0 2 1-7 * 0', '30 1 13 * 5', '0 3 * * 7', '0 0 1 * *', '0 12 * JAN-JUN 1-5',
  '0 2 * * 1-5',
  // Macros.
  '@hourly', '@daily', '@midnight', '@weekly', '@monthly', '@yearly', '@annually',
];

// The subset cron-parser gets outside Europe/Copenhagen: times in every
// zone's gap or overlap hours and the interval kinds.
const SUBSET = [
  '30 2 * * *', '0 2 * * *', '30 1 * * *', '45 1 * * *', '*/15 2 * * *', '*/10 1 * * *',
  '0 1-3 * * *', '0 * * * *', '*/30 * * * *', '15 * * * *', '0 */2 * * *', '@daily',
];

// Each zone's clock changes in 2026 and 2027 (UTC). Kolkata has none: it is
// checked at the European dates.
const EU = ['2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z', '2027-03-28T01:00:00Z',
  '2027-10-31T01:00:00Z'];
const ZONES = {
  'Europe/Copenhagen': EU,
  'Europe/London': EU,
  'America/New_York': ['2026-03-08T07:00:00Z', '2026-11-01T06:00:00Z', '2027-03-14T07:00:00Z',
    '2027-11-07T06:00:00Z'],
  'Australia/Lord_Howe': ['2026-04-04T15:00:00Z', '2026-10-03T15:30:00Z',
    '2027-04-03T15:00:00Z', '2027-10-02T15:30:00Z'],
  'Asia/Kolkata': EU,
};

function iso(date) {
  return date.toISOString().replace('.000Z', 'Z');
}

function* cases(ref) {
  for (const [zone, changes] of Object.entries(ZONES)) {
    for (const change of changes) {
      const from = new Date(Date.parse(change) - LEAD_MINUTES * 60 * 1000);
      let exprs = EXPRESSIONS;
      if (ref === 'cron-parser') {
        if (zone === 'Australia/Lord_Howe' && change.includes('-04-')) continue;
        if (zone !== 'Europe/Copenhagen') exprs = SUBSET;
      }
      for (const expr of exprs) yield { expr, zone, from };
    }
  }
}

// Neither library knows @midnight; both know its equivalent.
const ALIASES = { '@midnight': '@daily' };

const REFS = {
  'croner': (expr, zone, from) => {
    const { Cron } = require('croner');
    const job = new Cron(expr, { timezone: zone, paused: true });
    return job.nextRuns(COUNT, from);
  },
  'cron-parser': (expr, zone, from) => {
    const { CronExpressionParser } = require('cron-parser');
    const it = CronExpressionParser.parse(expr, { tz: zone, currentDate: from });
    const out = [];
    for (let i = 0; i < COUNT; ++i) out.push(it.next().toDate());
    return out;
  },
};

function main() {
  const wanted = process.argv.slice(2);
  for (const w of wanted) {
    if (!REFS[w]) {
      process.stderr.write(`reference.js: unknown reference ${w}; use croner or cron-parser\n`);
      process.exit(2);
    }
  }
  const lines = [];
  for (const ref of wanted.length ? wanted : Object.keys(REFS)) {
    for (const c of cases(ref)) {
      const line = { ref, expr: c.expr, zone: c.zone, from: iso(c.from) };
      try {
        line.next = REFS[ref](c.expr, c.zone, c.from).map(iso);
      } catch (e) {
        line.error = String(e && e.message ? e.message : e);
        if (ALIASES[c.expr]) {  // a macro the library lacks: its equivalent
          line.next = REFS[ref](ALIASES[c.expr], c.zone, c.from).map(iso);
          line.via = ALIASES[c.expr];
          delete line.error;
        }
      }
      lines.push(JSON.stringify(line));
    }
  }
  process.stdout.write(lines.join('\n') + '\n');
}

main();

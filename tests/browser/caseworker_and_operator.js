// browser:caseworker_and_operator — the caseworkers' page of `keyonce serve` in a real browser.
//
// Starts `$KEYONCE serve` on a free loopback port with a Danish-labelled recipe (a CSV export
// with one bad row -> SQLite + CSV targets) and two tokens, then drives Debian's Chromium through
// playwright-core: a caseworker logs in, is stopped by client- and server-side validation, starts
// the run and reads its outcome; an operator fixes the quarantined row and retries it; the row
// lands in SQLite. Finally: no CPR number in the service's log, and SIGTERM exits 0.
//
// Usage: KEYONCE=/path/to/keyonce node caseworker_and_operator.js [ARTIFACT_DIR]
'use strict';

const assert = require('assert/strict');
const childProcess = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const KEYONCE = process.env.KEYONCE;
const ARTIFACTS = path.resolve(process.argv[2] || path.join(process.cwd(), 'artifacts'));
const STARTUP_MS = 60000;  // a loaded 2-core CI machine: be generous on startup
const RUN_MS = 45000;      // a run of five records; generous on purpose
const TOTAL_MS = 170000;   // hard stop for the whole test (ctest TIMEOUT is above this)

const RECIPE = 'sick-leave-to-payroll';
const LABEL = 'Sygefravær til løn på Solgården';
const DESCRIPTION = 'Sygefravær fra vagtplanens eksport til løn og afdelingsark – også weekender';
const PARAM_LABEL = 'Eksportfil fra vagtplanen';
const REASON = 'must be hours between 0 and 24';
// The rota export: semicolons, Windows-1252, CRLF, decimal commas. Nina Nør's row has 25 hours
// and is quarantined by the validate step; the operator fixes it to 7,5.
const ROWS = [
  ['Medarbejder', 'CPR', 'Afdeling', 'Fra', 'Til', 'Timer', 'Årsag'],
  ['Søren Ærø', '010185-1233', 'PLEJE1', '02-11-2026', '03-11-2026', '7,5', 'Sygdom'],
  ['Åse Østergård', '2502901234', 'PLEJE1', '02-11-2026', '', '7,4', 'Barns 1. sygedag'],
  ['Jens Hansen', '120372-3457', 'KØKKEN', '04-11-2026', '06-11-2026', '22,2', 'Sygdom'],
  ['Nina Nør', '010203-4444', 'SKOLE3', '07-11-2026', '', '25', 'Sygdom'],
  ['Eva Eg', '220794-2826', 'KØKKEN', '10-11-2026', '11-11-2026', '14,8', 'Sygdom'],
];
const GOOD_ROWS = ROWS.length - 2;
const BAD_CPR = '0102034444';

const RECIPE_YAML = `# Written by tests/browser/caseworker_and_operator.js
recipe: ${RECIPE}
label: ${LABEL}
description: ${DESCRIPTION}

schedule:
  cron: "0 3 29 2 *"              # far away: the test must not see a scheduled run
  timezone: Europe/Copenhagen
  missed: skip

params:
  file:
    type: string
    label: ${PARAM_LABEL}
    help: Stien til CSV-filen fra vagtplanen, f.eks. data/sygefravaer.csv.
    required: true
    default: data/eksport.csv
    pattern: '^data/[A-Za-z0-9_.-]+[.]csv$'

source:
  type: csv
  path: "{{ params.file }}"
  delimiter: ";"
  encoding: windows-1252

steps:
  - validate:
      CPR: {required: true, type: cpr}
      Fra: {required: true, pattern: '^\\d{2}-\\d{2}-\\d{4}$'}
      Timer: {required: true, type: number, min: 0, max: 24, message: "${REASON}"}
  - set:
      cpr: "{{ record.CPR | cpr }}"
      from_date: "{{ record.Fra | date('dk') }}"
      to_date: "{{ record.Til | default(record.Fra) | date('dk') }}"
      hours: "{{ record.Timer | number(',') }}"
      reason: "{{ record['Årsag'] | trim }}"
      department: "{{ record.Afdeling }}"
  - drop: [Medarbejder, CPR, Fra, Til, Timer, "Årsag", Afdeling]

key: "{{ record.cpr }}/{{ record.from_date }}"

targets:
  - name: payroll
    type: sqlite
    path: out/payroll.db
    table: absence
    create_table: true
    key_columns: [cpr, from_date]
    columns:
      cpr: "{{ record.cpr }}"
      from_date: "{{ record.from_date }}"
      to_date: "{{ record.to_date }}"
      hours: "{{ record.hours }}"

  - name: rota
    type: csv
    path: out/rota.csv
    delimiter: ";"
    columns:
      Afdeling: "{{ record.department }}"
      Fra: "{{ record.from_date | format_date('%d-%m-%Y') }}"
      Timer: "{{ record.hours | format_number(2, ',') }}"
      Årsag: "{{ record.reason }}"

  # Named after the file the run read: a retry must write where its run did.
  - name: trail
    type: jsonl
    path: "out/{{ params.file }}.jsonl"
    create_dirs: true
    body: {from: "{{ record.from_date }}", hours: "{{ record.hours }}"}
`;

const T0 = Date.now();
function timing(what) {
  if (process.env.KEYONCE_BROWSER_TIMING) console.log(`${what}: ${Date.now() - T0} ms`);
}
process.on('exit', () => timing('exit'));

function log(...args) {
  console.log(`[browser-test ${new Date().toISOString().slice(11, 19)}]`, ...args);
}

function fail(message) {
  throw new Error(message);
}

function loadPlaywright() {
  try {
    return require('playwright-core');
  } catch (e) {
    fail(
        'playwright-core is not installed in tests/node_modules; run `npm ci` in tests/ ' +
        '(.ci/install-deps.sh does this)');
  }
}

function which(program) {
  for (const dir of (process.env.PATH || '').split(':').concat(['/usr/bin', '/bin'])) {
    const p = path.join(dir, program);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch (e) { /* next */
    }
  }
  return null;
}

function randomToken() {
  return `ko_${crypto.randomBytes(20).toString('hex')}`;
}

function sha256(text) {
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

// Writes recipes/, its data and tokens.yaml under dir; returns the tokens.
function writeFixture(dir) {
  const recipes = path.join(dir, 'recipes');
  fs.mkdirSync(path.join(recipes, 'data'), {recursive: true});
  fs.mkdirSync(path.join(recipes, 'out'), {recursive: true});
  fs.writeFileSync(path.join(recipes, 'sick_leave.yaml'), RECIPE_YAML, 'utf8');
  // Every character of the rows is in Latin-1, where Windows-1252 agrees with it.
  const csv = ROWS.map((r) => r.join(';')).join('\r\n') + '\r\n';
  fs.writeFileSync(path.join(recipes, 'data', 'sygefravaer.csv'), Buffer.from(csv, 'latin1'));
  const tokens = {caseworker: randomToken(), operator: randomToken()};
  fs.writeFileSync(
      path.join(dir, 'tokens.yaml'), `tokens:
  - name: anna
    role: caseworker
    recipes: [${RECIPE}]
    sha256: ${sha256(tokens.caseworker)}
  - name: olga
    role: operator
    sha256: ${sha256(tokens.operator)}
`,
      'utf8');
  return tokens;
}

// Starts `keyonce serve`; resolves with {child, port, stderr()} once it logs its address.
function startService(dir) {
  const args = [
    'serve', '--recipes', path.join(dir, 'recipes'), '--state', path.join(dir, 'state.db'),
    '--listen', '127.0.0.1:0', '--tokens', path.join(dir, 'tokens.yaml')
  ];
  log(`starting ${KEYONCE} ${args.join(' ')}`);
  const child = childProcess.spawn(KEYONCE, args, {cwd: dir, stdio: ['ignore', 'pipe', 'pipe']});
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited =
      new Promise((resolve) => child.on('exit', (code, signal) => resolve({code, signal})));
  const service = {child, exited, stderr: () => stderr, stdout: () => stdout, port: 0};
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(
          `keyonce serve did not log "listening on http://127.0.0.1:PORT" within ` +
          `${STARTUP_MS / 1000} s; its log:\n${stderr}`));
    }, STARTUP_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${KEYONCE}: ${e.message}`));
    });
    const onData = () => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        child.stderr.off('data', onData);
        service.port = Number(m[1]);
        resolve(service);
      }
    };
    child.stderr.on('data', onData);
    exited.then(({code, signal}) => {
      clearTimeout(timer);
      reject(new Error(
          `keyonce serve exited (code ${code}, signal ${signal}) before listening; ` +
          `its log:\n${stderr}`));
    });
  });
}

function sqlite(db, sql) {
  const r = childProcess.spawnSync('sqlite3', ['-readonly', '-batch', db, sql], {encoding: 'utf8'});
  if (r.error) fail(`running sqlite3: ${r.error.message}`);
  if (r.status !== 0) fail(`sqlite3 ${db} "${sql}" failed: ${r.stderr}`);
  return r.stdout.trim();
}

// Fails if the page is wider than the viewport (no sideways scrolling on a phone).
async function assertNoSidewaysScroll(page, what) {
  const {scroll, width} = await page.evaluate(() => ({
                                                scroll: document.documentElement.scrollWidth,
                                                width: window.innerWidth,
                                              }));
  assert.ok(scroll <= width, `${what}: the page is ${scroll} px wide in a ${width} px viewport`);
}

async function login(page, base, token) {
  await page.goto(`${base}/`);
  const field = page.locator('#login-token');
  await field.waitFor({state: 'visible'});
  // Keyboard only: the token field has focus, Enter submits the real HTML form.
  assert.equal(
      await page.evaluate(() => document.activeElement && document.activeElement.id), 'login-token',
      'the token field has focus on the login page');
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.locator('#who-name').waitFor({state: 'visible'});
  assert.equal(page.url(), `${base}/`, 'after login the page is at /');
}

async function caseworker(page, base, tokens) {
  log('caseworker: a wrong token is refused with a plain message');
  const home = await page.goto(`${base}/`);
  assert.match(
      home.headers()['content-type'] || '', /^text\/html;\s*charset=utf-8$/i,
      'the page is served as UTF-8');
  await page.locator('#login-token').fill('ko_0000000000000000000000000000000000000000');
  await page.locator('#login-token').press('Enter');
  await page.locator('#login-failed').waitFor({state: 'visible'});
  assert.match(await page.locator('#login-failed').innerText(), /not accepted/);

  log('caseworker: logs in and sees the recipe with its Danish label');
  await login(page, base, tokens.caseworker);
  assert.match(await page.locator('#who-name').innerText(), /^anna \(caseworker\)$/);
  const card = page.locator('article.card').filter({hasText: LABEL});
  await card.waitFor({state: 'visible'});
  assert.equal(await card.locator('h2').innerText(), LABEL, 'the recipe label renders intact');
  assert.equal(await card.locator('.desc').innerText(), DESCRIPTION);
  assert.equal(await page.locator('article.card').count(), 1, 'the caseworker sees one recipe');
  const input = card.getByLabel(PARAM_LABEL);
  assert.equal(await input.inputValue(), 'data/eksport.csv', 'the default is filled in');
  assert.equal(await input.getAttribute('required'), '', 'the param is required');
  const help = await input.getAttribute('aria-describedby');
  assert.ok(help, 'the field is described by its help text');
  assert.match(
      await page.locator(`[id="${help.split(' ')[0]}"]`).innerText(), /Stien til CSV-filen/);
  await assertNoSidewaysScroll(page, 'recipe list');

  log('caseworker: an invalid value is stopped by the browser-side validation');
  await input.fill('sygefravær.txt');
  await card.getByRole('button', {name: 'Start run'}).click();
  const fieldError = card.locator('.field-error').first();
  await page.waitForFunction((el) => el.textContent.length > 0, await fieldError.elementHandle());
  assert.match(await fieldError.innerText(), /expected form/);
  assert.match(
      await card.locator('.message').innerText(), new RegExp(`Please correct “${PARAM_LABEL}”`));
  assert.equal(await input.getAttribute('aria-invalid'), 'true');
  assert.equal(
      await page.evaluate(() => document.activeElement.name), 'file', 'focus on the bad field');
  assert.ok(!page.url().includes('#/run/'), 'no run was started');

  log('caseworker: the same mistake past the browser is refused by the service, next to the field');
  await input.evaluate(
      (el) => el.removeAttribute('data-pattern'));  // as an old or hand-made client
  await input.fill('data/../../etc/passwd');
  const [reply] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(`/api/v1/recipes/${RECIPE}/runs`)),
    card.getByRole('button', {name: 'Start run'}).click(),
  ]);
  assert.equal(reply.status(), 400, 'the service refuses a param that does not match its pattern');
  await page.waitForFunction((el) => el.textContent.length > 0, await fieldError.elementHandle());
  const serverMessage = await fieldError.innerText();
  assert.match(serverMessage, /file|Eksportfil/, `the message names the param: ${serverMessage}`);
  assert.ok(!serverMessage.includes('passwd'), 'the message does not repeat the value');
  assert.match(await card.locator('.message').innerText(), /not started/);

  log('caseworker: a valid value starts the run; the page follows it to its outcome');
  await input.fill('data/sygefravaer.csv');
  await input.press('Enter');
  await page.waitForURL(/#\/run\/\d+$/);
  const runId = Number(/#\/run\/(\d+)$/.exec(page.url())[1]);
  const outcome = page.locator('section.outcome');
  await outcome.locator('h2', {hasText: 'Outcome'}).waitFor({timeout: RUN_MS});
  assert.equal(await outcome.getAttribute('aria-live'), 'polite', 'the outcome is announced');
  const outcomeText = await outcome.innerText();
  log(`run ${runId} outcome as shown:\n${outcomeText}`);
  assert.ok(
      (await outcome.locator('.outcome-text').innerText()).length > 10,
      'the service\'s outcome sentence is shown');
  assert.match(outcomeText, new RegExp(`${GOOD_ROWS} records written to payroll`));
  assert.match(outcomeText, new RegExp(`${GOOD_ROWS} records written to rota`));
  assert.match(outcomeText, /1 record needs a person/);
  const items = outcome.locator('.quarantine-list li');
  assert.equal(await items.count(), 1, 'one record went to the inbox');
  const itemText = await items.first().innerText();
  assert.ok(itemText.includes(REASON), `the inbox record shows its reason: ${itemText}`);
  const ref = (await items.first().locator('.ref').innerText()).trim();
  assert.ok(ref.length > 0, 'the inbox record shows its reference');
  for (const row of ROWS.slice(1)) {
    assert.ok(
        !outcomeText.includes(row[1]) && !outcomeText.includes(row[1].replace('-', '')),
        'no CPR number in the outcome');
  }
  assert.match(
      await page.locator('.run-panel .badge').innerText(), /Completed, some records need a person/);
  assert.ok(
      !/[{}]|Traceback|exception/i.test(await page.locator('#view').innerText()),
      'no raw JSON or traces on the page');
  await assertNoSidewaysScroll(page, 'run outcome');
  fs.mkdirSync(ARTIFACTS, {recursive: true});
  await page.screenshot({path: path.join(ARTIFACTS, 'caseworker.png'), fullPage: true});

  log('caseworker: the run is in "My recent runs"');
  await page.getByRole('link', {name: 'Start a run', exact: true}).click();
  await page.locator('#my-runs-title').waitFor();
  await page.locator('.run-list a', {hasText: `Run ${runId}:`}).waitFor();

  log('caseworker: logs out');
  await page.getByRole('button', {name: 'Log out'}).click();
  await page.locator('#login-token').waitFor({state: 'visible'});
  await page.waitForLoadState();
  const after = await page.evaluate(async () => (await fetch('/api/v1/session')).status);
  assert.equal(after, 401, 'the session ends at logout');
  return {runId, ref};
}

async function operator(page, base, tokens, dir, first) {
  log('operator: logs in and sees the inbox, recent runs and the schedule');
  await page.setViewportSize({width: 1280, height: 900});
  await login(page, base, tokens.operator);
  await page.locator('#inbox-title').waitFor();
  assert.match(await page.locator('#inbox-title').innerText(), /1 record needs a person/);
  const view = page.locator('#view');
  await view.locator('table', {hasText: '0 3 29 2 *'}).waitFor();
  const scheduleRow = view.locator('section[aria-labelledby="schedule-title"] tbody tr');
  assert.match(await scheduleRow.innerText(), new RegExp(LABEL));
  assert.match(await scheduleRow.innerText(), /Europe\/Copenhagen/);
  const runRow = view.locator('tbody tr', {hasText: `Run ${first.runId}`});
  assert.match(await runRow.innerText(), /anna/, 'recent runs show who started the run');
  assert.match(await runRow.innerText(), new RegExp(`${GOOD_ROWS + 1} read`));

  log('operator: opens the inbox and the quarantined record');
  await page.getByRole('link', {name: 'Inbox', exact: true}).click();
  // The overview lists the same record; wait until the inbox itself is shown.
  await view.locator('p.lead', {hasText: 'Records a run could not process'}).waitFor();
  const link = page.locator('#view table a', {hasText: first.ref});
  await link.waitFor();
  assert.match(await page.locator('#view tbody tr').innerText(), new RegExp(REASON));
  await link.click();
  const timer = page.getByLabel('Timer', {exact: true});
  await timer.waitFor();
  assert.equal(await timer.inputValue(), '25');
  assert.equal(
      await page.getByLabel('Årsag', {exact: true}).inputValue(), 'Sygdom',
      'field names and values with æøå render intact');

  log('operator: fixes Timer, saves and retries');
  await timer.fill('7,5');
  const patched = page.waitForRequest((r) => r.method() === 'PATCH');
  await page.getByRole('button', {name: 'Save and retry'}).click();
  const patch = await patched;
  assert.deepEqual(
      JSON.parse(patch.postData()), {fields: {Timer: '7,5'}}, 'only the changed field is sent');
  assert.ok(patch.headers()['x-csrf-token'], 'the PATCH carries the CSRF token');
  const message = page.locator('#view .message[role="status"]');
  await page.waitForFunction(
      (el) => /record was written|did not fully succeed/.test(el.textContent),
      await message.elementHandle(), {timeout: RUN_MS});
  assert.match(await message.innerText(), /The record was written/);
  const retryPanel = page.locator('#view .run-panel');
  assert.match(await retryPanel.locator('.badge').innerText(), /^Completed$/);
  assert.match(await retryPanel.innerText(), /1 record written to payroll/);
  await page.screenshot({path: path.join(ARTIFACTS, 'operator.png'), fullPage: true});

  log('operator: the item has left the open inbox');
  await page.getByRole('link', {name: 'Back to the inbox'}).click();
  await page.locator('#view').getByText('The inbox is empty').waitFor();
  assert.equal(await page.locator('#view table a', {hasText: first.ref}).count(), 0);

  log('operator: the overview at 390 px is one column without sideways scrolling');
  await page.setViewportSize({width: 390, height: 844});
  await page.getByRole('link', {name: 'Overview', exact: true}).click();
  await page.locator('#runs-title').waitFor();
  await assertNoSidewaysScroll(page, 'operator overview');
  await page.screenshot({path: path.join(ARTIFACTS, 'operator-narrow.png'), fullPage: true});

  log('operator: the fixed record is in the payroll table (sqlite3)');
  const db = path.join(dir, 'recipes', 'out', 'payroll.db');
  assert.equal(
      sqlite(db, `SELECT hours FROM absence WHERE cpr = '${BAD_CPR}';`), '7.5',
      'the fixed record is in the payroll table');
  assert.equal(sqlite(db, 'SELECT count(*) FROM absence;'), String(GOOD_ROWS + 1));

  log('operator: the retry wrote where the run that read the record did (its parameters)');
  const trail = path.join(dir, 'recipes', 'out', 'data', 'sygefravaer.csv.jsonl');
  const lines = fs.readFileSync(trail, 'utf8').split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, GOOD_ROWS + 1, 'the fixed record joined its run\'s trail');
  assert.ok(
      !fs.existsSync(path.join(dir, 'recipes', 'out', 'data', 'eksport.csv.jsonl')),
      'nothing was written where the recipe\'s default points');
}

async function main() {
  if (!KEYONCE) fail('set KEYONCE to the keyonce binary (ctest does this)');
  if (!fs.existsSync(CHROMIUM)) {
    fail(
        `Chromium is not installed at ${CHROMIUM}; install Debian's chromium package ` +
        '(.ci/install-deps.sh does this)');
  }
  if (!which('sqlite3')) {
    fail('the sqlite3 command-line program is not installed (apt-get install sqlite3)');
  }
  const {chromium} = loadPlaywright();

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyonce-browser-'));
  let service = null;
  let browser = null;
  const watchdog = setTimeout(() => {
    console.error(`browser test: gave up after ${TOTAL_MS / 1000} s`);
    if (service) service.child.kill('SIGKILL');
    if (service) console.error(`--- keyonce serve log ---\n${service.stderr()}\n--- end ---`);
    fs.rmSync(dir, {recursive: true, force: true});
    process.exit(1);
  }, TOTAL_MS);
  try {
    const tokens = writeFixture(dir);
    service = await startService(dir);
    const base = `http://127.0.0.1:${service.port}`;
    log(`service listening at ${base}`);

    const home = path.join(dir, 'home');
    fs.mkdirSync(home);
    browser = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--disable-dev-shm-usage'
      ],
      env: {...process.env, HOME: home},
      viewport: {width: 390, height: 844},
      timeout: STARTUP_MS,
    });
    browser.setDefaultTimeout(20000);
    // Only the service's own address may be contacted.
    await browser.route('**/*', (r) => {
      const u = new URL(r.request().url());
      if (u.origin === base || u.protocol === 'data:') return r.continue();
      log(`blocked a request to ${u.origin}`);
      return r.abort();
    });
    const page = browser.pages()[0] || (await browser.newPage());
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      // Refused requests (401 before login, the 400 the test provokes) are logged by Chromium
      // as "Failed to load resource"; anything else is a script problem.
      if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) {
        pageErrors.push(`console: ${m.text()}`);
      }
    });

    const first = await caseworker(page, base, tokens);
    await operator(page, base, tokens, dir, first);
    assert.deepEqual(pageErrors, [], 'no script errors on the page');
    await browser.close();
    browser = null;

    log('service: no CPR number in its log; SIGTERM exits 0');
    const logText = service.stderr() + service.stdout();
    for (const row of ROWS.slice(1)) {
      const cpr = row[1].includes('-') ? row[1] : `${row[1].slice(0, 6)}-${row[1].slice(6)}`;
      assert.ok(
          !logText.includes(cpr) && !logText.includes(cpr.replace('-', '')),
          'a CPR number from the fixture appears in the service log');
      assert.ok(!logText.includes(row[0]), 'a name from the fixture appears in the service log');
    }
    assert.ok(
        !logText.includes(tokens.caseworker) && !logText.includes(tokens.operator),
        'a token appears in the service log');
    service.child.kill('SIGTERM');
    const {code, signal} = await Promise.race([
      service.exited,
      new Promise((resolve) => {
        setTimeout(() => resolve({code: 'timeout', signal: null}), 30000).unref();
      }),
    ]);
    assert.equal(code, 0, `keyonce serve exits 0 on SIGTERM (got ${code}, signal ${signal})`);
    service = null;
    log('passed');
    timing('end of test');
  } catch (e) {
    if (service) console.error(`--- keyonce serve log ---\n${service.stderr()}\n--- end ---`);
    throw e;
  } finally {
    clearTimeout(watchdog);
    if (browser) await browser.close().catch(() => {});
    if (service && service.child.exitCode === null) {
      service.child.kill('SIGKILL');
      await service.exited;
    }
    fs.rmSync(dir, {recursive: true, force: true});
  }
}

module.exports = {writeFixture};
if (require.main !== module) return;
main().catch((e) => {
  console.error(`browser test FAILED: ${e.message}`);
  if (e.stack) console.error(e.stack.split('\n').slice(1, 4).join('\n'));
  process.exit(1);
});

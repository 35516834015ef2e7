// Sagsportalen: a server-rendered legacy case system for the browser connector's tests, example
// and benchmark. It behaves like the vendor web applications municipal robots fight with: a
// login with a CSRF token and an account lock, sessions that run out, a case form built by
// JavaScript (late select options, an iframe editor, a confirm() dialog, an upload), server-side
// validation in Danish, a confirmation page with the case number, a search page, and no
// protection at all against the same case being submitted twice. Node.js standard library only;
// cases live in memory. README.md beside this file describes every page.
//
//   node server.js [--port P] [--user U] [--password PW] [--<setting> VALUE ...]
//
// Listens on 127.0.0.1 only; port 0 (the default) takes a free port. Prints
// `listening on http://127.0.0.1:PORT` once it accepts connections. Every request is one line
// on stdout: `METHOD /path STATUS MSms` (no query string, no field values; `-` for the status
// when the client went away before the reply).
//
// Environment instead of arguments: PORT, WEBAPP_USER, WEBAPP_PASSWORD, and WEBAPP_<SETTING>
// (e.g. WEBAPP_EXPIRE_EVERY=5). Defaults: user "robot", password "Sommer2026!".
//
// Settings: start with --expire-every 5 (dashes) or set later with POST /_test/control
// {"expire_every": 5} (underscores). A reset returns to the values given at start.
//   expire_every     0       a logged-in session serves this many page requests, then the next
//                            one is answered 303 to /login?next=<path> (0 = never expires)
//   lock_after       3       wrong passwords in a row that lock the account ("Kontoen er låst")
//   slow_every       0       every k-th valid case submit is slow (0 = none)
//   slow_ms          0       how slow, in milliseconds
//   slow_phase       "after" "after": the case is saved at once and the 303 waits slow_ms (a
//                            browser killed meanwhile leaves a case whose number it never saw);
//                            "before": the submit waits slow_ms before saving, and saves nothing
//                            if the client has gone by then
//   fail_next        0       the next n valid case submits are answered fail_status
//   fail_status      500     the status of those replies (an error page)
//   fail_phase       "before" "before": nothing is saved; "after": the case is saved, then the
//                            error page is shown
//   changed_page     false   the case form's "CPR-nummer" field becomes "Personnummer" (label,
//                            id, name and placeholder), as after a vendor upgrade
//   form_delay_ms    100     the case form is inserted into the page this long after load
//   select_delay_ms  300     the "Ydelse" select is replaced by one with its options this long
//                            after load
//   first_number     1       the number of the first case (SAG-<year>-00001)
//
// Test control, JSON, for test code only (no page links to it; no login; not counted):
//   GET  /_test/cases    every case with every field, as a JSON array
//   GET  /_test/state    settings, counters (logins, failed_logins, csrf_failures, expired,
//                        submits, created, ...), the lock, active sessions
//   POST /_test/control  a JSON object of settings (above) and actions, applied in order:
//     password: "..."     the account's new password (as if an administrator changed it)
//     user: "..."         the account's new user name
//     unlock: true        unlock the account and forget the wrong passwords
//     expire_all: true    end every session now (the next page goes to /login)
//     reset: true         forget cases, sessions and counters; settings, user and password
//                         back to their start values; the account unlocked
//   Answers the state as /_test/state does; an unknown key or a wrong type is a 400 and
//   changes nothing.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const SETTINGS = {
  expire_every: {type: 'number', value: 0},
  lock_after: {type: 'number', value: 3},
  slow_every: {type: 'number', value: 0},
  slow_ms: {type: 'number', value: 0},
  slow_phase: {type: 'string', value: 'after', choices: ['after', 'before']},
  fail_next: {type: 'number', value: 0},
  fail_status: {type: 'number', value: 500},
  fail_phase: {type: 'string', value: 'before', choices: ['before', 'after']},
  changed_page: {type: 'boolean', value: false},
  form_delay_ms: {type: 'number', value: 100},
  select_delay_ms: {type: 'number', value: 300},
  first_number: {type: 'number', value: 1},
};

const BENEFITS = [
  {kode: '101', navn: 'Boligstøtte'},
  {kode: '102', navn: 'Boligydelse'},
  {kode: '103', navn: 'Huslejetilskud'},
];

const MAX_BODY_BYTES = 10 * 1024 * 1024;
const MAX_SESSIONS = 10000;
const SESSION_COOKIE = 'sagsportal_sid';
const STATIC_DIR = path.join(__dirname, 'static');
const STATIC_TYPES = {
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};

// ---------------------------------------------------------------------------------------------
// Start options.

function startOptions(argv) {
  const out = {
    port: process.env.PORT || '0',
    user: process.env.WEBAPP_USER || 'robot',
    password: process.env.WEBAPP_PASSWORD || 'Sommer2026!',
    settings: {},
  };
  for (const key of Object.keys(SETTINGS)) {
    const env = process.env['WEBAPP_' + key.toUpperCase()];
    if (env !== undefined) out.settings[key] = env;
  }
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error('expected --name value pairs, got ' + argv[i]);
    }
    const key = argv[i].slice(2).replace(/-/g, '_');
    if (key === 'port' || key === 'user' || key === 'password') {
      out[key] = argv[i + 1];
    } else if (key in SETTINGS) {
      out.settings[key] = argv[i + 1];
    } else {
      throw new Error('unknown option --' + argv[i].slice(2));
    }
  }
  // Text from the command line or environment, typed like the control's JSON.
  for (const [key, text] of Object.entries(out.settings)) {
    const spec = SETTINGS[key];
    if (spec.type === 'number') out.settings[key] = Number(text);
    else if (spec.type === 'boolean') out.settings[key] = text === 'true' || text === '1';
  }
  const error = checkSettings(out.settings);
  if (error) throw new Error(error);
  return out;
}

// Why `values` (a subset of SETTINGS) is unacceptable, or '' when it is fine.
function checkSettings(values) {
  for (const [key, value] of Object.entries(values)) {
    const spec = SETTINGS[key];
    if (!spec) return 'unknown setting ' + key;
    if (spec.type === 'number') {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
        return key + ' must be a whole number >= 0';
      }
    } else if (typeof value !== spec.type) {
      return key + ' must be a ' + spec.type;
    }
    if (spec.choices && !spec.choices.includes(value)) {
      return key + ' must be one of ' + spec.choices.join(', ');
    }
  }
  return '';
}

const options = startOptions(process.argv.slice(2));

// ---------------------------------------------------------------------------------------------
// State (all in memory).

let settings;
let account;  // {user, password, failedInARow, locked}
let cases;
let nextNumber;
let sessions;  // id -> {id, csrf, user (null before login), pages}
let counters;

function reset() {
  settings = {};
  for (const [key, spec] of Object.entries(SETTINGS)) settings[key] = spec.value;
  Object.assign(settings, options.settings);
  account = {user: options.user, password: options.password, failedInARow: 0, locked: false};
  cases = [];
  nextNumber = settings.first_number;
  sessions = new Map();
  counters = {
    logins: 0,          // successful logins
    failed_logins: 0,   // wrong user name or password (all of them, locked or not)
    locked_logins: 0,   // login attempts refused because the account was locked
    csrf_failures: 0,   // POSTs with a missing or wrong CSRF token
    expired: 0,         // sessions that ran out (expire_every, expire_all) at a page request
    submits: 0,         // POST /cases by a logged-in session with a valid CSRF token
    invalid_submits: 0, // of those, re-rendered with validation errors
    valid_submits: 0,   // of those, valid (what slow_every and fail_next count)
    failed_submits: 0,  // answered with fail_status
    abandoned: 0,       // slow_phase "before" submits not saved because the client went away
    created: 0,         // cases saved
  };
}
reset();

function state() {
  return {
    settings,
    user: account.user,
    locked: account.locked,
    failed_in_a_row: account.failedInARow,
    sessions: [...sessions.values()].filter((s) => s.user && !s.ended).length,
    cases: cases.length,
    counters,
  };
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function parseCookies(header) {
  const out = {};
  for (const part of (header || '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

function randomToken(bytes) {
  return crypto.randomBytes(bytes).toString('base64url');
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// A request body, at most MAX_BODY_BYTES (null when larger; the rest is read and dropped).
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(size <= MAX_BODY_BYTES ? Buffer.concat(chunks) : null));
    req.on('error', reject);
  });
}

// multipart/form-data as browsers send it: {fields: {name: text}, files: {name: {filename,
// contentType, data}}}; null when the body is not well formed.
function parseMultipart(body, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) return null;
  const boundary = m[1] || m[2];
  const delimiter = Buffer.from('--' + boundary);
  const separator = Buffer.from('\r\n--' + boundary);
  const fields = {};
  const files = {};
  let pos = body.indexOf(delimiter);
  if (pos < 0) return null;
  pos += delimiter.length;
  for (;;) {
    if (body.subarray(pos, pos + 2).toString('latin1') === '--') break;
    if (body.subarray(pos, pos + 2).toString('latin1') !== '\r\n') return null;
    pos += 2;
    const headEnd = body.indexOf('\r\n\r\n', pos, 'latin1');
    if (headEnd < 0) return null;
    const head = body.subarray(pos, headEnd).toString('utf8');
    const end = body.indexOf(separator, headEnd + 4);
    if (end < 0) return null;
    const data = body.subarray(headEnd + 4, end);
    const name = /;\s*name="([^"]*)"/i.exec(head);
    const filename = /;\s*filename="([^"]*)"/i.exec(head);
    const type = /^content-type:\s*(.+)$/im.exec(head);
    if (name && filename) {
      files[name[1]] = {
        filename: filename[1].replace(/%22/g, '"'),
        contentType: type ? type[1].trim() : 'application/octet-stream',
        data: Buffer.from(data),
      };
    } else if (name) {
      fields[name[1]] = data.toString('utf8');
    }
    pos = end + separator.length;
  }
  return {fields, files};
}

function parseForm(body, contentType) {
  if (/^multipart\/form-data/i.test(contentType || '')) return parseMultipart(body, contentType);
  const fields = {};
  for (const [k, v] of new URLSearchParams(body.toString('utf8'))) fields[k] = v;
  return {fields, files: {}};
}

// A CPR number as DDMMYY-SSSS, or null when `text` is not 10 digits (with or without the dash).
function normalCpr(text) {
  const m = /^\s*(\d{6})-?(\d{4})\s*$/.exec(text || '');
  return m ? m[1] + '-' + m[2] : null;
}

function cprDateIsValid(cpr) {
  const day = Number(cpr.slice(0, 2));
  const month = Number(cpr.slice(2, 4));
  return day >= 1 && day <= 31 && month >= 1 && month <= 12;
}

// YYYY-MM-DD (what a date input sends) that names a real day.
function isoDateIsValid(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || '');
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 &&
      d.getUTCDate() === Number(m[3]);
}

function danishDate(iso) {
  const [y, m, d] = iso.split('-');
  return `${d}-${m}-${y}`;
}

function caseNumber(number) {
  return `SAG-${new Date().getFullYear()}-${String(number).padStart(5, '0')}`;
}

// Only paths on this site: no open redirect to another host.
function safeNext(next) {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') &&
      !next.startsWith('/\\') ? next : '/';
}

// The path for the request log: no query string, and nothing that looks like a CPR number.
function loggedPath(pathname) {
  return pathname.replace(/\d{6}-?\d{4}/g, '[cpr]');
}

// ---------------------------------------------------------------------------------------------
// Sessions.

function newSession(res) {
  if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value);
  const session = {id: randomToken(18), csrf: randomToken(24), user: null, pages: 0};
  sessions.set(session.id, session);
  res.setHeader('Set-Cookie',
      `${SESSION_COOKIE}=${session.id}; Path=/; HttpOnly; SameSite=Lax`);
  return session;
}

function sessionOf(req) {
  return sessions.get(parseCookies(req.headers.cookie)[SESSION_COOKIE]) || null;
}

// The logged-in session of a page request, counted against expire_every; null after answering
// with a redirect to the login page (never logged in, or the session ran out).
function authenticate(req, res, next) {
  const session = sessionOf(req);
  if (session && session.user) {
    const runOut = session.ended ||
        (settings.expire_every > 0 && session.pages >= settings.expire_every);
    if (!runOut) {
      session.pages++;
      return session;
    }
    sessions.delete(session.id);
    counters.expired++;
  }
  redirect(res, '/login?next=' + encodeURIComponent(next));
  return null;
}

// ---------------------------------------------------------------------------------------------
// Pages.

function redirect(res, location) {
  res.writeHead(303, {'Location': location, 'Content-Type': 'text/html; charset=utf-8'});
  res.end(`<!DOCTYPE html><p>Se <a href="${escapeHtml(location)}">${escapeHtml(location)}</a></p>`);
}

function sendPage(res, status, {title, session, main}) {
  const header = session && session.user ?
      `<header class="top">
  <a class="logo" href="/">Sagsportalen</a>
  <nav aria-label="Hovedmenu"><a href="/cases/new">Ny sag</a> <a href="/search">Søg sag</a></nav>
  <span class="bruger">Logget ind som ${escapeHtml(session.user)}</span>
  <a href="/logout">Log ud</a>
</header>` :
      `<header class="top"><span class="logo">Sagsportalen</span></header>`;
  const html = `<!DOCTYPE html>
<html lang="da">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)} – Sagsportalen</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/sagsportal.css">
</head>
<body>
${header}
<main>
${main}
</main>
<footer>Sagsportalen 4.2.1 · Kommunens sagssystem</footer>
</body>
</html>
`;
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
  });
  res.end(html);
}

function alertBox(message, extraClass) {
  return message ? `<div role="alert" class="${extraClass || 'besked'}">${message}</div>` : '';
}

function loginPage(res, status, session, {next, user, alert}) {
  sendPage(res, status, {
    title: 'Log ind',
    session: null,
    main: `<h1>Log ind</h1>
${alertBox(alert ? escapeHtml(alert) : '', 'fejl')}
<form method="post" action="/login" class="login">
  <input type="hidden" name="_csrf" value="${escapeHtml(session.csrf)}">
  <input type="hidden" name="next" value="${escapeHtml(next || '/')}">
  <div class="felt">
    <label for="brugernavn">Brugernavn</label>
    <input type="text" id="brugernavn" name="brugernavn" autocomplete="username" value="${escapeHtml(user || '')}">
  </div>
  <div class="felt">
    <label for="adgangskode">Adgangskode</label>
    <input type="password" id="adgangskode" name="adgangskode" autocomplete="current-password">
  </div>
  <button type="submit">Log ind</button>
</form>`,
  });
}

function frontPage(res, session) {
  sendPage(res, 200, {
    title: 'Forside',
    session,
    main: `<h1>Velkommen til Sagsportalen</h1>
<ul class="genveje">
  <li><a href="/cases/new">Opret ny sag</a></li>
  <li><a href="/search">Søg efter sager</a></li>
</ul>`,
  });
}

// The case form. The form itself is in a <template> that sagsformular.js inserts after load;
// `values` refill it after a validation error (never the file: browsers cannot).
function caseFormPage(res, status, session, values, errors) {
  const changed = settings.changed_page;
  const cpr = changed ?
      {label: 'Personnummer', id: 'personnummer', placeholder: 'Personnummer'} :
      {label: 'CPR-nummer', id: 'cpr', placeholder: 'DDMMÅÅ-XXXX'};
  const invalid = (field) => errors.some((e) => e.field === field) ?
      ' aria-invalid="true"' : '';
  const errorBox = errors.length ?
      alertBox(`<p>Sagen blev ikke oprettet. Ret følgende:</p>
<ul>${errors.map((e) => `<li>${escapeHtml(e.message)}</li>`).join('')}</ul>`, 'fejl') : '';
  sendPage(res, status, {
    title: 'Opret ny sag',
    session,
    main: `<h1>Opret ny sag</h1>
${errorBox}
<div id="formular-pladsholder" data-formular-efter-ms="${settings.form_delay_ms}" data-ydelser-efter-ms="${settings.select_delay_ms}">
  <p class="indlaeser">Indlæser formularen …</p>
</div>
<template id="sagsformular">
<form id="sag" method="post" action="/cases" enctype="multipart/form-data">
  <input type="hidden" name="_csrf" value="${escapeHtml(session.csrf)}">
  <div class="felt">
    <label for="${cpr.id}">${cpr.label}</label>
    <input type="text" id="${cpr.id}" name="${cpr.id}" placeholder="${cpr.placeholder}" autocomplete="off" value="${escapeHtml(values.cpr || '')}"${invalid('cpr')}>
  </div>
  <div class="felt">
    <label for="navn">Navn</label>
    <input type="text" id="navn" name="navn" autocomplete="off" value="${escapeHtml(values.navn || '')}"${invalid('navn')}>
  </div>
  <div class="felt">
    <label for="ansoegningsdato">Ansøgningsdato</label>
    <input type="date" id="ansoegningsdato" name="ansoegningsdato" value="${escapeHtml(values.ansoegningsdato || '')}"${invalid('ansoegningsdato')}>
  </div>
  <div class="felt">
    <label for="ydelse">Ydelse</label>
    <select id="ydelse" name="ydelse" disabled data-valgt="${escapeHtml(values.ydelse || '')}"${invalid('ydelse')}>
      <option value="">Henter ydelser …</option>
    </select>
  </div>
  <div class="felt afkryds">
    <input type="checkbox" id="samtykke" name="samtykke" value="ja"${values.samtykke ? ' checked' : ''}${invalid('samtykke')}>
    <label for="samtykke">Samtykke givet</label>
  </div>
  <div class="felt">
    <label for="bilag">Bilag</label>
    <input type="file" id="bilag" name="bilag">
  </div>
  <div class="felt">
    <span class="etiket" id="bemaerkning-etiket">Bemærkning</span>
    <iframe title="Bemærkning" id="bemaerkning-editor" src="/static/editor.html" aria-labelledby="bemaerkning-etiket"></iframe>
    <input type="hidden" id="bemaerkning" name="bemaerkning" value="${escapeHtml(values.bemaerkning || '')}">
  </div>
  <div class="knapper">
    <button type="submit">Opret sag</button>
  </div>
</form>
</template>
<script type="application/json" id="ydelser">${JSON.stringify(BENEFITS)}</script>
<script src="/static/sagsformular.js" defer></script>`,
  });
}

function maskedCpr(cpr) {
  return cpr.slice(0, 7) + '****';
}

function attachmentText(c) {
  return c.bilag ? `${c.bilag.navn} (${c.bilag.stoerrelse} byte)` : 'Intet bilag';
}

function createdPage(res, session, c) {
  const attachment = c.bilag ?
      `<dd id="bilag"><span id="bilag-navn">${escapeHtml(c.bilag.navn)}</span>
        (<span id="bilag-stoerrelse">${c.bilag.stoerrelse} byte</span>)</dd>` :
      '<dd id="bilag">Intet bilag</dd>';
  sendPage(res, 200, {
    title: 'Sagen er oprettet',
    session,
    main: `<h1>Sagen er oprettet</h1>
<p role="status">Sagen er oprettet og sendt til behandling.</p>
<dl class="kvittering">
  <dt>Sagsnummer</dt><dd id="sagsnummer">${c.sagsnummer}</dd>
  <dt>CPR-nummer</dt><dd id="cpr">${maskedCpr(c.cpr)}</dd>
  <dt>Navn</dt><dd id="navn">${escapeHtml(c.navn)}</dd>
  <dt>Ansøgningsdato</dt><dd id="ansoegningsdato">${danishDate(c.ansoegningsdato)}</dd>
  <dt>Ydelse</dt><dd id="ydelse">${escapeHtml(c.ydelse)}</dd>
  <dt>Bilag</dt>${attachment}
</dl>
<ul class="handlinger">
  <li><a href="/cases/${c.id}/kvittering">Hent kvittering</a></li>
  <li><a href="/cases/${c.id}" target="_blank">Vis sagen i nyt vindue</a></li>
  <li><a href="/cases/new">Opret endnu en sag</a></li>
</ul>`,
  });
}

function casePage(res, session, c) {
  sendPage(res, 200, {
    title: 'Sag ' + c.sagsnummer,
    session,
    main: `<h1>Sag <span id="sagsnummer">${c.sagsnummer}</span></h1>
<dl class="sag">
  <dt>CPR-nummer</dt><dd id="cpr">${c.cpr}</dd>
  <dt>Navn</dt><dd id="navn">${escapeHtml(c.navn)}</dd>
  <dt>Ansøgningsdato</dt><dd id="ansoegningsdato">${danishDate(c.ansoegningsdato)}</dd>
  <dt>Ydelse</dt><dd id="ydelse">${escapeHtml(c.ydelse)}</dd>
  <dt>Samtykke givet</dt><dd id="samtykke">Ja</dd>
  <dt>Bemærkning</dt><dd id="bemaerkning">${escapeHtml(c.bemaerkning) || '–'}</dd>
  <dt>Bilag</dt><dd id="bilag">${escapeHtml(attachmentText(c))}</dd>
  <dt>Oprettet</dt><dd id="oprettet">${c.oprettet} af ${escapeHtml(c.bruger)}</dd>
</dl>`,
  });
}

function notFoundPage(res, session) {
  sendPage(res, 404, {
    title: 'Siden findes ikke',
    session,
    main: '<h1>Siden findes ikke</h1>\n' +
        alertBox('Siden eller sagen findes ikke. Gå til <a href="/">forsiden</a>.', 'fejl'),
  });
}

function errorPage(res, status, session) {
  sendPage(res, status, {
    title: 'Der opstod en fejl',
    session,
    main: '<h1>Der opstod en fejl</h1>\n' +
        alertBox('Der opstod en uventet fejl. Prøv igen senere. Fejlreference: ' +
                 `<code>${crypto.randomBytes(4).toString('hex')}</code>`, 'fejl'),
  });
}

function csrfPage(res, session) {
  counters.csrf_failures++;
  sendPage(res, 403, {
    title: 'Ugyldig formular',
    session,
    main: '<h1>Ugyldig formular</h1>\n' +
        alertBox('Sikkerhedstokenet mangler eller er forkert. Genindlæs siden og prøv igen.',
                 'fejl'),
  });
}

function searchPage(res, session, query) {
  let result = '';
  if (query !== null && query.trim() !== '') {
    const cpr = normalCpr(query);
    if (!cpr) {
      result = alertBox('CPR-nummer skal skrives som DDMMÅÅ-XXXX (10 cifre)', 'fejl');
    } else {
      const found = cases.filter((c) => c.cpr === cpr);
      result = found.length === 0 ?
          '<p id="ingen-sager" role="status">Ingen sager fundet</p>' :
          `<table id="resultater">
  <caption>${found.length === 1 ? '1 sag fundet' : found.length + ' sager fundet'}</caption>
  <thead><tr><th scope="col">Sagsnummer</th><th scope="col">Navn</th><th scope="col">Ansøgningsdato</th></tr></thead>
  <tbody>
${found.map((c) => `    <tr><td><a href="/cases/${c.id}">${c.sagsnummer}</a></td><td>${escapeHtml(c.navn)}</td><td>${danishDate(c.ansoegningsdato)}</td></tr>`).join('\n')}
  </tbody>
</table>`;
    }
  }
  sendPage(res, 200, {
    title: 'Søg sag',
    session,
    main: `<h1>Søg sag</h1>
<form method="get" action="/search" class="soeg">
  <div class="felt">
    <label for="soeg-cpr">Søg efter CPR-nummer</label>
    <input type="text" id="soeg-cpr" name="cpr" autocomplete="off" value="${escapeHtml(query || '')}">
  </div>
  <button type="submit">Søg</button>
</form>
${result}`,
  });
}

// A small, valid PDF naming the case: the receipt behind "Hent kvittering".
function receiptPdf(c) {
  const text = `Kvittering for ${c.sagsnummer} - oprettet ${c.oprettet}`;
  const stream = `BT /F1 14 Tf 72 760 Td (${text}) Tj ET`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R ' +
        '/Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let pdf = '%PDF-1.4\n';
  const offsets = [];
  objects.forEach((body, i) => {
    offsets.push(pdf.length);
    pdf += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const o of offsets) pdf += `${String(o).padStart(10, '0')} 00000 n \n`;
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, 'latin1');
}

// ---------------------------------------------------------------------------------------------
// Handlers.

async function postLogin(req, res) {
  const body = await readBody(req);
  const fields = body ? parseForm(body, '').fields : {};
  const session = sessionOf(req);
  const next = safeNext(fields.next);
  if (!session || !fields._csrf || fields._csrf !== session.csrf) {
    counters.csrf_failures++;
    return loginPage(res, 403, newSession(res), {
      next,
      alert: 'Siden var udløbet af sikkerhedshensyn. Log ind igen.',
    });
  }
  const user = fields.brugernavn || '';
  const password = fields.adgangskode || '';
  if (user === '' || password === '') {
    return loginPage(res, 200, session, {next, user, alert: 'Udfyld brugernavn og adgangskode'});
  }
  if (account.locked) {
    counters.locked_logins++;
    return loginPage(res, 200, session, {
      next, user, alert: 'Kontoen er låst. Kontakt din administrator.',
    });
  }
  if (user !== account.user || password !== account.password) {
    counters.failed_logins++;
    if (user === account.user && ++account.failedInARow >= settings.lock_after) {
      account.locked = true;
      return loginPage(res, 200, session, {
        next,
        user,
        alert: `Kontoen er låst efter ${account.failedInARow} forkerte forsøg. ` +
            'Kontakt din administrator.',
      });
    }
    return loginPage(res, 200, session, {
      next, user, alert: 'Forkert brugernavn eller adgangskode',
    });
  }
  account.failedInARow = 0;
  counters.logins++;
  // A fresh session id and token at login (no session fixation).
  sessions.delete(session.id);
  const fresh = newSession(res);
  fresh.user = user;
  redirect(res, next);
}

function validateCase(fields) {
  const errors = [];
  const cprText = settings.changed_page ? fields.personnummer : fields.cpr;
  const cprLabel = settings.changed_page ? 'Personnummer' : 'CPR-nummer';
  const cpr = normalCpr(cprText);
  if (!cprText || cprText.trim() === '') {
    errors.push({field: 'cpr', message: `${cprLabel} skal udfyldes`});
  } else if (!cpr) {
    errors.push({field: 'cpr', message: `${cprLabel} skal skrives som DDMMÅÅ-XXXX (10 cifre)`});
  } else if (!cprDateIsValid(cpr)) {
    errors.push({field: 'cpr', message: `${cprLabel} indeholder ikke en gyldig fødselsdato`});
  }
  const navn = (fields.navn || '').trim();
  if (navn === '') errors.push({field: 'navn', message: 'Navn skal udfyldes'});
  else if (navn.length > 100) errors.push({field: 'navn', message: 'Navn må højst være 100 tegn'});
  const dato = (fields.ansoegningsdato || '').trim();
  if (dato === '') {
    errors.push({field: 'ansoegningsdato', message: 'Ansøgningsdato skal udfyldes'});
  } else if (!isoDateIsValid(dato)) {
    errors.push({field: 'ansoegningsdato', message: 'Ansøgningsdato er ikke en gyldig dato'});
  }
  const benefit = BENEFITS.find((b) => b.kode === fields.ydelse);
  if (!benefit) errors.push({field: 'ydelse', message: 'Vælg en ydelse'});
  if (fields.samtykke !== 'ja') {
    errors.push({field: 'samtykke', message: 'Samtykke skal være givet, før sagen kan oprettes'});
  }
  return {errors, cpr, navn, dato, benefit};
}

async function postCase(req, res) {
  const body = await readBody(req);
  // Read the body first: an expired session still sends its whole upload.
  const session = authenticate(req, res, '/cases/new');
  if (!session) return;
  if (body === null) {
    return sendPage(res, 413, {
      title: 'For stor formular',
      session,
      main: '<h1>For stor formular</h1>\n' +
          alertBox('Formularen og bilaget må højst fylde 10 MB tilsammen.', 'fejl'),
    });
  }
  const form = parseForm(body, req.headers['content-type']);
  if (!form) return errorPage(res, 400, session);
  const {fields, files} = form;
  if (!fields._csrf || fields._csrf !== session.csrf) return csrfPage(res, session);
  counters.submits++;
  const v = validateCase(fields);
  const values = {
    cpr: settings.changed_page ? fields.personnummer : fields.cpr,
    navn: fields.navn,
    ansoegningsdato: fields.ansoegningsdato,
    ydelse: fields.ydelse,
    samtykke: fields.samtykke === 'ja',
    bemaerkning: fields.bemaerkning,
  };
  if (v.errors.length) {
    counters.invalid_submits++;
    return caseFormPage(res, 200, session, values, v.errors);
  }
  counters.valid_submits++;
  const slow = settings.slow_every > 0 && counters.valid_submits % settings.slow_every === 0;
  let failing = false;
  if (settings.fail_next > 0) {
    settings.fail_next--;
    failing = true;
  }
  if (failing && settings.fail_phase === 'before') {
    counters.failed_submits++;
    return errorPage(res, settings.fail_status, session);
  }
  if (slow && settings.slow_phase === 'before') {
    let gone = false;
    res.on('close', () => gone = !res.writableFinished);
    await delay(settings.slow_ms);
    if (gone || req.socket.destroyed) {
      counters.abandoned++;
      return;
    }
  }
  const file = files.bilag && files.bilag.filename !== '' ? files.bilag : null;
  const c = {
    id: nextNumber,
    sagsnummer: caseNumber(nextNumber),
    cpr: v.cpr,
    navn: v.navn,
    ansoegningsdato: v.dato,
    ydelse: v.benefit.navn,
    ydelse_kode: v.benefit.kode,
    samtykke: true,
    bemaerkning: (fields.bemaerkning || '').replace(/\r\n/g, '\n'),
    bilag: file ? {
      navn: path.basename(file.filename.replace(/\\/g, '/')),
      type: file.contentType,
      stoerrelse: file.data.length,
      sha256: crypto.createHash('sha256').update(file.data).digest('hex'),
    } : null,
    oprettet: new Date().toISOString(),
    bruger: session.user,
  };
  nextNumber++;
  cases.push(c);
  counters.created++;
  if (failing) {
    counters.failed_submits++;
    return errorPage(res, settings.fail_status, session);
  }
  if (slow && settings.slow_phase === 'after') await delay(settings.slow_ms);
  redirect(res, `/cases/${c.id}/created`);
}

function control(req, res, body) {
  let changes;
  try {
    changes = JSON.parse(body.toString('utf8') || '{}');
  } catch (e) {
    return sendJson(res, 400, {error: 'the body is not JSON: ' + e.message});
  }
  if (typeof changes !== 'object' || changes === null || Array.isArray(changes)) {
    return sendJson(res, 400, {error: 'expected a JSON object'});
  }
  const actions = {password: 'string', user: 'string', unlock: 'boolean',
    expire_all: 'boolean', reset: 'boolean'};
  const newSettings = {};
  for (const [key, value] of Object.entries(changes)) {
    if (key in actions) {
      if (typeof value !== actions[key] || (key === 'user' && value === '') ||
          (key === 'password' && value === '')) {
        return sendJson(res, 400, {error: `${key} must be a non-empty ${actions[key]}`});
      }
    } else {
      newSettings[key] = value;
    }
  }
  const error = checkSettings(newSettings);
  if (error) return sendJson(res, 400, {error});
  for (const [key, value] of Object.entries(changes)) {
    if (key === 'reset') {
      if (value) reset();
    } else if (key === 'password') {
      account.password = value;
    } else if (key === 'user') {
      account.user = value;
    } else if (key === 'unlock') {
      if (value) Object.assign(account, {locked: false, failedInARow: 0});
    } else if (key === 'expire_all') {
      if (value) for (const s of sessions.values()) s.ended = true;
    } else {
      settings[key] = value;
    }
  }
  sendJson(res, 200, state());
}

function sendJson(res, status, value) {
  res.writeHead(status, {'Content-Type': 'application/json; charset=utf-8'});
  res.end(JSON.stringify(value, null, 1) + '\n');
}

function sendStatic(res, name) {
  const file = path.join(STATIC_DIR, path.basename(name));
  const type = STATIC_TYPES[path.extname(file)];
  if (!type || !fs.existsSync(file)) return notFoundPage(res, null);
  res.writeHead(200, {'Content-Type': type, 'Cache-Control': 'max-age=600'});
  res.end(fs.readFileSync(file));
}

async function handle(req, res, url) {
  const p = url.pathname;
  const method = req.method;
  if (method === 'GET' && p.startsWith('/static/')) return sendStatic(res, p.slice(8));
  if (method === 'GET' && p === '/favicon.ico') {
    res.writeHead(404, {'Content-Type': 'text/plain'});
    return res.end();
  }
  if (p === '/login' && method === 'GET') {
    const session = sessionOf(req) || newSession(res);
    return loginPage(res, 200, session, {next: safeNext(url.searchParams.get('next'))});
  }
  if (p === '/login' && method === 'POST') return postLogin(req, res);
  if (p === '/logout' && method === 'GET') {
    const session = sessionOf(req);
    if (session) sessions.delete(session.id);
    return redirect(res, '/login');
  }
  if (p === '/_test/cases' && method === 'GET') return sendJson(res, 200, cases);
  if (p === '/_test/state' && method === 'GET') return sendJson(res, 200, state());
  if (p === '/_test/control' && method === 'POST') return control(req, res, await readBody(req));
  if (p === '/cases' && method === 'POST') return postCase(req, res);
  if (method !== 'GET') {
    res.writeHead(405, {'Content-Type': 'text/plain; charset=utf-8', 'Allow': 'GET'});
    return res.end('Metoden er ikke tilladt\n');
  }

  const caseRoute = /^\/cases\/(\d+)(\/created|\/kvittering)?$/.exec(p);
  const known = p === '/' || p === '/cases/new' || p === '/search' || caseRoute;
  if (!known) return notFoundPage(res, sessionOf(req));
  const session = authenticate(req, res, p + url.search);
  if (!session) return;
  if (p === '/') return frontPage(res, session);
  if (p === '/cases/new') return caseFormPage(res, 200, session, {}, []);
  if (p === '/search') return searchPage(res, session, url.searchParams.get('cpr'));
  const c = cases.find((x) => x.id === Number(caseRoute[1]));
  if (!c) return notFoundPage(res, session);
  if (caseRoute[2] === '/created') return createdPage(res, session, c);
  if (caseRoute[2] === '/kvittering') {
    const pdf = receiptPdf(c);
    res.writeHead(200, {
      'Content-Type': 'application/pdf',
      'Content-Length': pdf.length,
      'Content-Disposition': `attachment; filename="kvittering-${c.sagsnummer}.pdf"`,
      'Cache-Control': 'no-store',
    });
    return res.end(pdf);
  }
  return casePage(res, session, c);
}

const server = http.createServer((req, res) => {
  const started = process.hrtime.bigint();
  let url;
  try {
    url = new URL(req.url, 'http://127.0.0.1');
  } catch (e) {
    res.writeHead(400, {'Content-Type': 'text/plain'});
    return res.end('Bad request\n');
  }
  res.on('close', () => {
    const ms = Number((process.hrtime.bigint() - started) / 1000000n);
    const status = res.writableFinished ? res.statusCode : '-';
    console.log(`${req.method} ${loggedPath(url.pathname)} ${status} ${ms}ms`);
  });
  handle(req, res, url).catch((err) => {
    // The message only: a stack or the request could hold field values.
    console.log('error: ' + (err && err.message ? err.message : String(err)));
    if (!res.headersSent) errorPage(res, 500, null);
    else res.destroy();
  });
});

server.listen(Number(options.port), '127.0.0.1', () => {
  console.log('listening on http://127.0.0.1:' + server.address().port);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));

// keyonce: the caseworkers' and operators' page, served by `keyonce serve`. Talks only to the
// service's /login, /logout and /api/v1. Plain ES2020, no build step; every text from the API is
// inserted as text, never as HTML.
'use strict';

document.documentElement.classList.add('booting');

(() => {
  const POLL_MS = 1000;
  const FINISHED = new Set(
      ['completed', 'completed_with_errors', 'failed', 'refused', 'interrupted', 'cancelled']);
  const STATUS_WORDS = {
    queued: 'Waiting to start',
    running: 'Running',
    completed: 'Completed',
    completed_with_errors: 'Completed, some records need a person',
    failed: 'Failed',
    refused: 'Did not start',
    interrupted: 'Interrupted, will resume',
    cancelled: 'Cancelled',
  };
  const TRIGGER_WORDS = {
    schedule: 'schedule',
    api: 'started by hand',
    retry: 'retry from the inbox',
    missed: 'missed schedule',
    resume: 'resumed after a stop',
  };
  const ITEM_DONE_WORDS = {
    retried: '(since retried)',
    resolved: '(since fixed)',
    dismissed: '(dismissed)'
  };
  const NETWORK_MESSAGE =
      'Could not reach keyonce just now. Check your connection; the page will keep trying.';

  const state = {
    me: null,           // {name, role, recipes, csrf}
    generation: 0,      // bumped on every view change; stale async work checks it and stops
    pendingNotice: '',  // shown by the next view (set just before changing the hash)
    timers: new Set(),
  };

  // ---------------------------------------------------------------- small DOM helpers

  // h('p', {class: 'x'}, 'text', child) builds an element; strings become text nodes.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') {
        el.className = v;
      } else if (k.startsWith('on')) {
        el.addEventListener(k.slice(2), v);
      } else if (k === 'value' || k === 'checked') {
        el[k] = v;  // properties, not attributes
      } else {
        el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function $(id) {
    return document.getElementById(id);
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;  // unchanged text is not re-announced
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  // Quarantine reasons carry the recipe position for IT: "step validate (/srv/r.yaml:27): field
  // 'Timer' must be ...". People get the sentence; the step goes to "where".
  function tidyReason(reason) {
    const m =
        /^((?:step|target|source|lookup|table)\s+[^\s():]+)\s*(?:\([^()]*\))?:\s*([^]+)$/.exec(
            reason || '');
    return m ? {text: m[2], where: m[1]} : {text: reason || '', where: ''};
  }

  function whereOf(item) {
    if (item.target) return `target ${item.target}`;
    return tidyReason(item.reason).where || item.stage || '';
  }

  function records(n) {
    return plural(n, 'record', 'records');
  }

  function formatTime(iso, timeZone) {
    if (!iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const opts = {dateStyle: 'medium', timeStyle: 'short', hourCycle: 'h23'};
    try {
      return new Intl.DateTimeFormat('en-GB', timeZone ? {...opts, timeZone} : opts).format(d);
    } catch (e) {
      return new Intl.DateTimeFormat('en-GB', opts).format(d);
    }
  }

  function statusBadge(status) {
    return h('span', {class: `badge badge-${status}`}, STATUS_WORDS[status] || status || 'Unknown');
  }

  function focusHeading(el) {
    if (!el) return;
    el.setAttribute('tabindex', '-1');
    el.focus({preventScroll: false});
  }

  function notice(text) {
    setText($('notice'), text || '');
  }

  // ---------------------------------------------------------------- the API

  class ApiError extends Error {
    constructor(status, message, field) {
      super(message);
      this.status = status;
      this.field = field || null;
    }
  }

  // Turns any failed reply into one plain sentence: the service's own `error` when it is a
  // short sentence, otherwise a message chosen by status. Raw bodies are never shown.
  function plainError(status, data) {
    const e = data && typeof data.error === 'string' ? data.error.trim() : '';
    if (e && e.length <= 400 && !/\n\s+at\s|Traceback|std::|exception/i.test(e)) {
      return /[.!?]$/.test(e) ? e.charAt(0).toUpperCase() + e.slice(1) :
                                `${e.charAt(0).toUpperCase()}${e.slice(1)}.`;
    }
    switch (status) {
      case 400:
        return 'The service did not accept the request.';
      case 403:
        return 'You are not allowed to do that.';
      case 404:
        return 'That was not found. It may have been removed.';
      case 409:
        return 'That cannot be done right now; something else is in the way.';
      case 413:
        return 'That is too large for the service to accept.';
      case 503:
        return 'keyonce is shutting down or restarting. Try again in a minute.';
      default:
        return status >= 500 ? 'Something went wrong inside keyonce. Try again; if it keeps ' +
                'happening, tell IT.' :
                               'The request did not succeed.';
    }
  }

  async function api(method, path, body, csrfRetried) {
    const opts = {method, credentials: 'same-origin', headers: {Accept: 'application/json'}};
    if (method !== 'GET') opts.headers['X-CSRF-Token'] = state.me ? state.me.csrf : '';
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, NETWORK_MESSAGE);
    }
    let data = null;
    if ((res.headers.get('Content-Type') || '').includes('json')) {
      try {
        data = await res.json();
      } catch (e) {
        data = null;
      }
    }
    if (res.status === 401 && state.me) {
      sessionLost();
      throw new ApiError(401, 'Your session has ended. Please log in again.');
    }
    if (res.status === 403 && method !== 'GET' && !csrfRetried && data &&
        /csrf/i.test(String(data.error))) {
      // The session's CSRF token changed (e.g. the service restarted): fetch it once more.
      const session = await api('GET', '/api/v1/session');
      if (state.me && session && session.csrf) {
        state.me.csrf = session.csrf;
        $('logout-csrf').value = session.csrf;
        return api(method, path, body, true);
      }
    }
    if (!res.ok) throw new ApiError(res.status, plainError(res.status, data), data && data.field);
    if (data === null && res.status !== 204) {
      throw new ApiError(res.status, 'keyonce sent a reply this page could not read. Try again.');
    }
    return data;
  }

  // Runs fn() until it stops asking to continue; network errors are retried calmly. A view
  // change (generation bump) ends the loop.
  function poll(fn, gen) {
    let delay = POLL_MS;
    const tick = async () => {
      if (gen !== state.generation) return;
      let again = false;
      try {
        again = await fn();
        delay = POLL_MS;
        if (gen === state.generation) notice('');
      } catch (e) {
        if (gen !== state.generation || e.status === 401) return;
        if (e.status === 0 || e.status === 503 || e.status >= 500) {
          notice(e.status === 0 ? NETWORK_MESSAGE : `${e.message} Trying again…`);
          delay = Math.min(delay * 2, 10000);
          again = true;
        } else {
          throw e;
        }
      }
      if (again && gen === state.generation) {
        const t = setTimeout(() => {
          state.timers.delete(t);
          tick().catch(showViewError(gen));
        }, delay);
        state.timers.add(t);
      }
    };
    return tick();
  }

  function showViewError(gen) {
    return (e) => {
      if (gen !== state.generation || e.status === 401) return;
      const view = $('view');
      // Unreachable or restarting: try the same view again by itself a little later.
      const passing = e.status === 0 || e.status >= 500;
      view.replaceChildren(
          h('h1', {}, passing ? 'keyonce cannot be reached just now' : 'Something is not right'),
          h('p', {class: 'message message-error'},
            passing ? `${e.status ? e.message : 'Check your connection.'} The page tries ` +
                    'again by itself in a few seconds.' :
                      e.message),
          h('p', {class: 'actions'},
            h('button', {type: 'button', onclick: () => route()}, 'Try again'),
            h('a', {href: '#/'}, 'Back to the start page')));
      focusHeading(view.querySelector('h1'));
      if (passing) {
        const t = setTimeout(() => {
          state.timers.delete(t);
          if (gen === state.generation) route();
        }, 8000);
        state.timers.add(t);
      }
    };
  }

  // ---------------------------------------------------------------- session and login

  function isOperator() {
    return state.me && (state.me.role === 'operator' || state.me.role === 'admin');
  }

  function showLogin(message) {
    state.me = null;
    state.generation++;
    clearTimers();
    $('view').hidden = true;
    $('view').replaceChildren();
    $('nav').hidden = true;
    $('who').hidden = true;
    $('login-view').hidden = false;
    const failed = $('login-failed');
    if (message) failed.textContent = message;
    failed.hidden = !message;
    // Read out with the field that gets focus.
    $('login-token')
        .setAttribute(
            'aria-describedby', message ? 'login-failed login-token-help' : 'login-token-help');
    document.title = 'Log in – keyonce';
  }

  function sessionLost() {
    showLogin('Your session has ended. Please log in again.');
    $('login-token').focus();
  }

  function showApp() {
    $('login-view').hidden = true;
    $('view').hidden = false;
    $('who').hidden = false;
    const roleWords = {admin: 'administrator', operator: 'operator', caseworker: 'caseworker'};
    $('who-name').textContent = `${state.me.name} (${roleWords[state.me.role] || state.me.role})`;
    $('logout-csrf').value = state.me.csrf || '';
    const nav = $('nav');
    nav.replaceChildren();
    if (isOperator()) {
      nav.append(
          h('a', {href: '#/overview', 'data-view': 'overview'}, 'Overview'),
          h('a', {href: '#/inbox', 'data-view': 'inbox'}, 'Inbox'));
    }
    nav.append(h('a', {href: '#/start', 'data-view': 'start'}, 'Start a run'));
    nav.hidden = false;
  }

  async function boot() {
    const url = new URL(location.href);
    let loginMessage = '';
    if (url.searchParams.get('login') === 'failed') {
      loginMessage = 'That token was not accepted. Check that you copied all of it and try again.';
      url.searchParams.delete('login');
      history.replaceState(null, '', url.pathname + url.search + url.hash);
    }
    // With JavaScript the form posts through fetch (whatever the reply, the page then reloads
    // to the login form); without it, the browser posts the form itself.
    $('logout-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.generation++;
      clearTimers();
      const csrf = state.me ? state.me.csrf : '';
      fetch('/logout', {
        method: 'POST',
        credentials: 'same-origin',
        headers: {'X-CSRF-Token': csrf, 'Content-Type': 'application/x-www-form-urlencoded'},
        body: new URLSearchParams({csrf}).toString(),
        redirect: 'manual',
      })
          .catch(() => {})
          .finally(() => location.replace('/'));
    });
    window.addEventListener('hashchange', route);
    try {
      const res = await fetch(
          '/api/v1/session', {credentials: 'same-origin', headers: {Accept: 'application/json'}});
      if (res.ok) {
        state.me = await res.json();
      } else if (res.status !== 401) {
        loginMessage = loginMessage || plainError(res.status, null);
      }
    } catch (e) {
      notice(NETWORK_MESSAGE);
    }
    document.documentElement.classList.remove('booting');
    if (state.me && state.me.role) {
      showApp();
      route();
    } else {
      showLogin(loginMessage);
      $('login-token').focus();
    }
  }

  // ---------------------------------------------------------------- routing

  function clearTimers() {
    for (const t of state.timers) clearTimeout(t);
    state.timers.clear();
  }

  function route() {
    if (!state.me) return;
    state.generation++;
    clearTimers();
    notice(state.pendingNotice);
    state.pendingNotice = '';
    const parts = location.hash.replace(/^#\/?/, '').split('/');
    const [name, id] = [parts[0] || '', parts[1] || ''];
    let current = name;
    const gen = state.generation;
    const fail = showViewError(gen);
    if (name === 'run' && /^\d+$/.test(id)) {
      current = isOperator() ? 'overview' : 'start';
      showRun(Number(id), gen).catch(fail);
    } else if (isOperator() && name === 'inbox' && /^\d+$/.test(id)) {
      current = 'inbox';
      showItem(Number(id), gen).catch(fail);
    } else if (isOperator() && name === 'inbox') {
      showInbox(gen).catch(fail);
    } else if (name === 'start' || !isOperator()) {
      current = 'start';
      showStart(gen).catch(fail);
    } else {
      current = 'overview';
      showOverview(gen).catch(fail);
    }
    for (const a of $('nav').querySelectorAll('a')) {
      if (a.dataset.view === current) {
        a.setAttribute('aria-current', 'page');
      } else {
        a.removeAttribute('aria-current');
      }
    }
  }

  // Replaces the view with a heading (focused, so keyboard and screen-reader users land on it)
  // and a loading line; returns the container to fill.
  function beginView(title) {
    document.title = `${title} – keyonce`;
    const view = $('view');
    const heading = h('h1', {}, title);
    const body = h('div', {'aria-busy': 'true'}, h('p', {class: 'empty spinner'}, 'Loading…'));
    view.replaceChildren(heading, body);
    focusHeading(heading);
    return {heading, body};
  }

  function finish(body, ...children) {
    body.replaceChildren(...children.flat().filter(Boolean));
    body.removeAttribute('aria-busy');
  }

  // ---------------------------------------------------------------- caseworker: start a run

  async function showStart(gen) {
    const {body} = beginView('Start a run');
    const [recipes, runs] = await Promise.all([
      api('GET', '/api/v1/recipes'),
      api('GET', '/api/v1/runs?limit=50').catch(() => null),
    ]);
    if (gen !== state.generation) return;
    const cards = h('div', {class: 'cards'});
    recipes.forEach((r, i) => cards.append(recipeCard(r, i)));
    const mine = (runs || []).filter((r) => r.started_by === state.me.name).slice(0, 10);
    finish(
        body,
        recipes.length ? null :
                         h('p', {class: 'empty'},
                           'There are no recipes you may start. ' +
                               'Ask IT to give your token access.'),
        cards,
        h('section', {'aria-labelledby': 'my-runs-title'},
          h('h2', {id: 'my-runs-title'}, 'My recent runs'),
          runs === null   ? h('p', {class: 'empty'}, 'Your recent runs could not be loaded.') :
              mine.length ? h('ul', {class: 'run-list'}, mine.map(runListItem)) :
                            h('p', {class: 'empty'}, 'You have not started any runs yet.')));
  }

  function runListItem(run) {
    return h(
        'li', {}, h('a', {href: `#/run/${run.id}`}, `Run ${run.id}: ${recipeTitle(run.recipe)}`),
        ' ', statusBadge(run.status), ' ',
        h('span', {class: 'meta'}, formatTime(run.started_at || run.queued_at)));
  }

  const recipeTitles = new Map();
  function recipeTitle(name) {
    return recipeTitles.get(name) || name;
  }

  function recipeCard(recipe, index) {
    const title = recipe.label || recipe.name;
    recipeTitles.set(recipe.name, title);
    const idBase = `r${index}`;
    const message = h('div', {class: 'message message-error', 'aria-live': 'assertive'});
    const form = h('form', {novalidate: true, 'aria-labelledby': `${idBase}-title`});
    const fields = [];
    (recipe.params || []).forEach((p, j) => {
      const f = paramField(p, `${idBase}-p${j}`);
      fields.push(f);
      form.append(f.wrap);
    });
    const button = h('button', {type: 'submit', class: 'button-primary'}, 'Start run');
    form.append(message, h('div', {class: 'actions'}, button));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      startRun(recipe, fields, message, button).catch(() => {});
    });

    const meta = [];
    if (recipe.running) meta.push('Running now.');
    if (recipe.queued) meta.push(`${plural(recipe.queued, 'run', 'runs')} waiting.`);
    if (recipe.schedule && recipe.schedule.next_run) {
      meta.push(`Also runs on a schedule; next time ${
          formatTime(recipe.schedule.next_run, recipe.schedule.timezone)}.`);
    }
    return h(
        'article', {class: 'card', 'aria-labelledby': `${idBase}-title`},
        h('h2', {id: `${idBase}-title`, class: 'recipe-title'}, title),
        recipe.description ? h('p', {class: 'desc'}, recipe.description) : null,
        recipe.label && recipe.label !== recipe.name ?
            h('p', {class: 'meta'}, 'Recipe ', h('code', {}, recipe.name)) :
            null,
        meta.length ? h('p', {class: 'meta'}, meta.join(' ')) : null, form);
  }

  // One form control for a recipe parameter, with its label, help and error line.
  function paramField(p, id) {
    const helpId = `${id}-help`;
    const errId = `${id}-err`;
    const describedBy = [p.help ? helpId : null, errId].filter(Boolean).join(' ');
    const def = p.default === null || p.default === undefined ? '' : String(p.default);
    let input;
    const common = {id, name: p.name, 'aria-describedby': describedBy, required: !!p.required};
    switch (p.type) {
      case 'int':
        input =
            h('input', {...common, type: 'number', step: '1', inputmode: 'numeric', value: def});
        break;
      case 'date':
        input = h('input', {...common, type: 'date', value: isoDate(def)});
        break;
      case 'enum': {
        input = h('select', common);
        if (!p.required || !def) {
          input.append(h('option', {value: ''}, p.required ? 'Choose…' : '—'));
        }
        for (const v of p.values || []) input.append(h('option', {value: v}, v));
        input.value = def;
        break;
      }
      case 'bool':
        input = h('input', {
          ...common,
          type: 'checkbox',
          required: false,
          checked: /^(true|yes|ja|1)$/i.test(def)
        });
        break;
      default:
        // The pattern is checked by patternOf() below, not by the `pattern` attribute: browsers
        // compile that with the `v` flag, which rejects patterns the service accepts (e.g. an
        // unescaped `-` in a class), and then silently skip the check.
        input = h('input', {
          ...common,
          type: 'text',
          value: def,
          'data-pattern': p.pattern || null,
          autocomplete: 'off',
          spellcheck: 'false'
        });
    }
    const labelText = p.label || p.name;
    const label =
        h('label',
          {for: id
          },
          labelText,
          p.required && p.type !== 'bool' ? h('span', {class: 'required-mark'}, ' (required)') :
                                            null);
    const help = p.help ? h('p', {id: helpId, class: 'help'}, p.help) : null;
    const err = h('p', {id: errId, class: 'field-error'});
    const wrap = p.type === 'bool' ?
        h('div', {class: 'field field-check'}, input, label, help, err) :
        h('div', {class: 'field'}, label, input, help, err);
    input.addEventListener('input', () => {
      if (input.getAttribute('aria-invalid') === 'true') clearFieldError(input, err);
    });
    return {p, input, err, labelText, wrap};
  }

  function isoDate(text) {
    const dk = /^(\d{2})[-.](\d{2})[-.](\d{4})$/.exec(text || '');
    return dk ? `${dk[3]}-${dk[2]}-${dk[1]}` : text || '';
  }

  function setFieldError(input, err, message) {
    input.setAttribute('aria-invalid', 'true');
    err.textContent = message;
  }

  function clearFieldError(input, err) {
    input.removeAttribute('aria-invalid');
    err.textContent = '';
  }

  // The service matches the whole value against the recipe's ECMAScript pattern.
  function patternOf(input) {
    const source = input.getAttribute('data-pattern');
    if (!source) return null;
    for (const flags of ['u', '']) {
      try {
        return new RegExp(`^(?:${source})$`, flags);
      } catch (e) { /* try the next flags; if none compiles, the service decides */
      }
    }
    return null;
  }

  // The browser's own constraint validation, worded for people.
  function validityMessage(f) {
    const re = f.p.type === 'string' || !f.p.type ? patternOf(f.input) : null;
    const value = f.input.value;
    f.input.setCustomValidity(re && value !== '' && !re.test(value) ? 'pattern' : '');
    const v = f.input.validity;
    if (v.valid) return '';
    if (v.valueMissing) {
      return f.p.type === 'enum' ? 'Choose one of the values.' : 'This field is required.';
    }
    if (v.badInput || v.typeMismatch) {
      return f.p.type === 'date' ? 'Enter a valid date.' : 'Enter a whole number.';
    }
    if (v.stepMismatch) return 'Enter a whole number.';
    if (v.patternMismatch || v.customError) {
      return f.p.help ? 'This value does not have the expected form; see the hint above.' :
                        'This value does not have the expected form.';
    }
    return f.input.validationMessage || 'This value is not valid.';
  }

  async function startRun(recipe, fields, message, button) {
    message.textContent = '';
    let firstBad = null;
    for (const f of fields) {
      const m = validityMessage(f);
      if (m) {
        setFieldError(f.input, f.err, m);
        firstBad = firstBad || f;
      } else {
        clearFieldError(f.input, f.err);
      }
    }
    if (firstBad) {
      const bad = fields.filter((f) => f.input.getAttribute('aria-invalid') === 'true');
      message.textContent = bad.length === 1 ?
          `Please correct “${bad[0].labelText}” before starting.` :
          `Please correct ${bad.length} fields before starting.`;
      firstBad.input.focus();
      return;
    }
    const params = {};
    for (const f of fields) {
      if (f.p.type === 'bool') {
        params[f.p.name] = f.input.checked;
      } else if (f.p.type === 'int' && f.input.value !== '') {
        params[f.p.name] = Number(f.input.value);
      } else {
        params[f.p.name] = f.input.value;
      }
    }
    button.disabled = true;
    button.classList.add('spinner');
    try {
      const run =
          await api('POST', `/api/v1/recipes/${encodeURIComponent(recipe.name)}/runs`, {params});
      location.hash = `#/run/${run.id}`;
    } catch (e) {
      const f = e.field && fields.find((x) => x.p.name === e.field);
      if (f) {
        setFieldError(f.input, f.err, e.message);
        message.textContent = `The run was not started: please correct “${f.labelText}”.`;
        f.input.focus();
      } else {
        message.textContent = `The run was not started. ${e.message}`;
      }
    } finally {
      button.disabled = false;
      button.classList.remove('spinner');
    }
  }

  // ---------------------------------------------------------------- a run and its outcome

  async function showRun(id, gen) {
    const {heading, body} = beginView(`Run ${id}`);
    const panel = runPanel();
    let shown = false;
    await poll(async () => {
      const run = await api('GET', `/api/v1/runs/${id}`);
      if (gen !== state.generation) return false;
      if (!shown) {
        shown = true;
        setText(heading, `Run ${id}: ${recipeTitle(run.recipe)}`);
        document.title = `Run ${id} – keyonce`;
        finish(
            body, panel.el,
            h('p', {class: 'actions'},
              h('a', {href: isOperator() ? '#/overview' : '#/start'},
                isOperator() ? 'Back to the overview' : 'Start another run')));
      }
      panel.update(run);
      return !FINISHED.has(run.status);
    }, gen);
  }

  // The live part of a run: status, a progress line while it runs, the outcome when done.
  function runPanel() {
    const status = h('p', {}, 'Status: ', h('span'));
    const progress = h('p', {class: 'progress'});
    const live =
        h('div', {role: 'status', 'aria-live': 'polite', 'aria-atomic': 'false'}, status, progress);
    const outcome = h('section', {'aria-live': 'polite', class: 'outcome'});
    const details = h('div');
    const el = h('div', {class: 'panel run-panel'}, live, outcome, details);
    let lastStatus = null;
    let running = false;

    function update(run) {
      if (run.status !== lastStatus) {
        status.lastChild.replaceWith(statusBadge(run.status));
        lastStatus = run.status;
      }
      const c = run.counts || {};
      const done = FINISHED.has(run.status);
      if (!done) {
        running = true;
        progress.classList.add('spinner');
        setText(progress, progressLine(run, c));
        return;
      }
      progress.classList.remove('spinner');
      progress.hidden = true;  // the outcome below says it all
      outcome.replaceChildren(...outcomeNodes(run));
      details.replaceChildren(runFacts(run));
    }
    return {el, update};
  }

  // "written: 4 to payroll, 4 to rota"
  function writtenPerTarget(c) {
    const parts = Object.entries(c.targets || {})
                      .map(([name, t]) => `${(t.written || 0) + (t.updated || 0)} to ${name}`);
    return parts.length ? `written: ${parts.join(', ')}` : '';
  }

  function progressLine(run, c) {
    if (run.status === 'queued') return 'Waiting for its turn to start…';
    const written = writtenPerTarget(c);
    return `Working: ${records(c.read || 0)} read so far${written ? `; ${written}` : ''}.`;
  }

  function targetSentence(name, t) {
    const parts =
        [t.written ? `${records(t.written)} written to ${name}` :
                     `No new records written to ${name}`];
    if (t.updated) parts.push(`${records(t.updated)} updated`);
    if (t.unchanged) parts.push(`${records(t.unchanged)} already there and unchanged`);
    if (t.failed) parts.push(`${records(t.failed)} failed`);
    if (t.in_doubt) parts.push(`${records(t.in_doubt)} in doubt (checked on the next run)`);
    return `${parts.join(', ')}.`;
  }

  function outcomeNodes(run) {
    const c = run.counts || {};
    const nodes = [h('h2', {}, 'Outcome')];
    if (run.outcome) nodes.push(h('p', {class: 'outcome-text'}, run.outcome));
    if (run.error && !(run.outcome || '').includes(run.error)) {
      nodes.push(
          h('p', {class: 'message message-error'},
            `The run stopped: ${plainError(0, {error: run.error})}`));
    }
    const targets = Object.entries(c.targets || {});
    if (targets.length) {
      nodes.push(
          h('ul', {class: 'target-list', 'aria-label': 'What was written where'},
            targets.map(([name, t]) => h('li', {}, targetSentence(name, t)))));
    }
    const other = [];
    if (c.rejected) other.push(`${records(c.rejected)} rejected.`);
    if (c.in_doubt) other.push(`${records(c.in_doubt)} in doubt; the next run checks them.`);
    if (other.length) nodes.push(h('p', {}, other.join(' ')));
    const q = run.quarantined || [];
    if (q.length || c.quarantined) {
      const n = Math.max(q.length, c.quarantined || 0);
      nodes.push(
          h('h3', {}, `${n === 1 ? '1 record needs' : `${n} records need`} a person`),
          h('p', {},
            n === 1 ? 'It went to the inbox, where an operator can fix and retry it:' :
                      'They went to the inbox, where an operator can fix and retry them:'),
          h('ul', {class: 'quarantine-list'},
            q.map(
                (item) =>
                    h('li', {},
                      isOperator() && item.id !== undefined ?
                          h('a', {href: `#/inbox/${item.id}`, class: 'ref'}, item.ref) :
                          h('span', {class: 'ref'}, item.ref),
                      ': ', tidyReason(item.reason).text,
                      h('span', {class: 'meta'}, ` (at ${whereOf(item)})`),
                      ITEM_DONE_WORDS[item.status] ?
                          h('strong', {}, ` ${ITEM_DONE_WORDS[item.status]}`) :
                          null))));
    } else if (run.status === 'completed') {
      nodes.push(h('p', {}, 'No records needed a person.'));
    }
    return nodes;
  }

  function runFacts(run) {
    const facts = h('dl', {class: 'facts'});
    const add = (k, v) => {
      if (v !== '' && v !== null && v !== undefined) facts.append(h('dt', {}, k), h('dd', {}, v));
    };
    add('Recipe', recipeTitle(run.recipe));
    add('Started by', run.started_by || 'keyonce itself');
    add('How', TRIGGER_WORDS[run.trigger] || run.trigger);
    add('Started', formatTime(run.started_at || run.queued_at));
    add('Finished', formatTime(run.finished_at));
    const seconds = run.counts && run.counts.seconds;
    if (typeof seconds === 'number') {
      add('Took', `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} seconds`);
    }
    const params = Object.entries(run.params || {}).filter(([, v]) => v !== null && v !== '');
    if (params.length) add('Parameters', params.map(([k, v]) => `${k} = ${v}`).join(', '));
    const wrap = h('div', {}, h('h3', {}, 'Details'), facts);
    if (isOperator() || run.started_by === state.me.name) wrap.append(logDetails(run.id));
    return wrap;
  }

  function logDetails(id) {
    const pre = h('pre', {class: 'log'}, 'Loading…');
    const d = h('details', {}, h('summary', {}, 'Show the run log'), pre);
    let loaded = false;
    d.addEventListener('toggle', () => {
      if (!d.open || loaded) return;
      loaded = true;
      api('GET', `/api/v1/runs/${id}/log`)
          .then((r) => setText(pre, (r.lines || []).join('\n') || 'The log is empty.'))
          .catch((e) => {
            loaded = false;
            setText(pre, e.message);
          });
    });
    return d;
  }

  // ---------------------------------------------------------------- operator: overview

  async function showOverview(gen) {
    const {body} = beginView('Overview');
    const [schedule, runs, inbox, recipes] = await Promise.all([
      api('GET', '/api/v1/schedule'),
      api('GET', '/api/v1/runs?limit=25'),
      api('GET', '/api/v1/quarantine?status=open&limit=100'),
      api('GET', '/api/v1/recipes').catch(() => []),
    ]);
    if (gen !== state.generation) return;
    for (const r of recipes) recipeTitles.set(r.name, r.label || r.name);
    finish(
        body,
        h('p', {class: 'actions'},
          h('button', {type: 'button', onclick: () => route()}, 'Refresh')),
        h('section', {'aria-labelledby': 'inbox-title'},
          h('h2', {id: 'inbox-title'},
            inbox.length ?
                `Inbox: ${plural(inbox.length, 'record needs', 'records need')} a person` :
                'Inbox: nothing needs a person'),
          inboxTable(inbox)),
        h('section', {'aria-labelledby': 'runs-title'}, h('h2', {id: 'runs-title'}, 'Recent runs'),
          runsTable(runs)),
        h('section', {'aria-labelledby': 'schedule-title'},
          h('h2', {id: 'schedule-title'}, 'Schedule'), scheduleTable(schedule)));
  }

  async function showInbox(gen) {
    const {body} = beginView('Inbox');
    const [inbox, recipes] = await Promise.all([
      api('GET', '/api/v1/quarantine?status=open&limit=200'),
      api('GET', '/api/v1/recipes').catch(() => []),
    ]);
    if (gen !== state.generation) return;
    for (const r of recipes) recipeTitles.set(r.name, r.label || r.name);
    finish(
        body,
        h('p', {class: 'lead'},
          'Records a run could not process. Open one to fix its fields ' +
              'and retry it, or dismiss it.'),
        inboxTable(inbox));
  }

  function table(caption, headers, rows) {
    return h(
        'div', {class: 'table-wrap'},
        h('table', {}, h('caption', {class: 'visually-hidden'}, caption),
          h('thead', {}, h('tr', {}, headers.map((t) => h('th', {scope: 'col'}, t)))),
          h('tbody', {},
            rows.map(
                (cells) =>
                    h('tr', {}, cells.map((c, i) => h('td', {'data-label': headers[i]}, c)))))));
  }

  function inboxTable(items) {
    if (!items.length) {
      return h('p', {class: 'empty'}, 'The inbox is empty. Nothing needs a person.');
    }
    return table(
        'Open inbox items', ['Reference', 'Recipe', 'Where', 'Reason', 'Since'],
        items.map(
            (q) =>
                [h('a', {href: `#/inbox/${q.id}`, class: 'ref'}, q.ref || `item ${q.id}`),
                 recipeTitle(q.recipe),
                 whereOf(q),
                 tidyReason(q.reason).text,
                 formatTime(q.created_at),
    ]));
  }

  function countsSummary(c) {
    if (!c) return '';
    const parts = [`${c.read || 0} read`];
    const written = writtenPerTarget(c);
    if (written) parts.push(written);
    if (c.quarantined) parts.push(`${c.quarantined} to the inbox`);
    if (c.in_doubt) parts.push(`${c.in_doubt} in doubt`);
    return parts.join(', ');
  }

  function runsTable(runs) {
    if (!runs.length) return h('p', {class: 'empty'}, 'No runs yet.');
    return table(
        'Recent runs', ['Run', 'Recipe', 'Status', 'Records', 'Started by', 'Started'],
        runs.map(
            (r) =>
                [h('a', {href: `#/run/${r.id}`}, `Run ${r.id}`),
                 recipeTitle(r.recipe),
                 statusBadge(r.status),
                 countsSummary(r.counts),
                 `${r.started_by || 'keyonce'} (${TRIGGER_WORDS[r.trigger] || r.trigger})`,
                 formatTime(r.started_at || r.queued_at),
    ]));
  }

  function scheduleTable(schedule) {
    if (!schedule.length) return h('p', {class: 'empty'}, 'No recipe runs on a schedule.');
    return table(
        'Scheduled recipes', ['Recipe', 'When (cron)', 'Time zone', 'Next run', 'Last run'],
        schedule.map(
            (s) =>
                [recipeTitle(s.recipe),
                 h('code', {}, s.cron),
                 s.timezone || '',
                 formatTime(s.next_run, s.timezone) || 'not planned',
                 formatTime(s.last_fire, s.timezone) || 'not yet',
    ]));
  }

  // ---------------------------------------------------------------- operator: one inbox item

  async function showItem(id, gen) {
    const {heading, body} = beginView('Inbox item');
    const item = await api('GET', `/api/v1/quarantine/${id}`);
    if (gen !== state.generation) return;
    setText(heading, `Inbox item ${item.ref || id}`);

    const message = h('div', {class: 'message', role: 'status', 'aria-live': 'polite'});
    const result = h('div');
    const facts = h('dl', {class: 'facts'});
    const add = (k, v) => {
      if (v !== '' && v !== null && v !== undefined) facts.append(h('dt', {}, k), h('dd', {}, v));
    };
    add('Recipe', recipeTitle(item.recipe));
    const tidy = tidyReason(item.reason);
    add('Reason', tidy.text);
    add('Where', whereOf(item));
    if (tidy.text !== item.reason) add('Detail for IT', item.reason);
    add('Position', item.position);
    const statusWords =
        {open: 'open', retried: 'retried', resolved: 'resolved', dismissed: 'dismissed'};
    add('Status', h('span', {id: 'item-status'}, statusWords[item.status] || item.status || ''));
    add('Since', formatTime(item.created_at));
    if (item.run) add('From run', h('a', {href: `#/run/${item.run}`}, `Run ${item.run}`));

    const record = item.record && typeof item.record === 'object' ? item.record : {};
    const fields =
        Object.entries(record).map(([name, value], i) => recordField(name, value, `f${i}`));
    const open = item.status === undefined || item.status === 'open';
    const form =
        h('form', {novalidate: true, 'aria-labelledby': 'record-title'},
          h('h2', {id: 'record-title'}, 'The record'),
          fields.length ? null : h('p', {class: 'empty'}, 'This item holds no fields.'),
          fields.map((f) => f.wrap));
    for (const f of fields)
      if (!open) f.input.disabled = true;
    const saveButton = h('button', {type: 'submit', class: 'button-primary'}, 'Save and retry');
    const dismissButton = h('button', {type: 'button', class: 'button-danger'}, 'Dismiss');
    const confirmBox =
        h('div', {class: 'message message-warn', hidden: true},
          h('p', {},
            'Dismiss this record? It will not be written anywhere and ' +
                'leaves the inbox.'));
    const yes = h('button', {type: 'button', class: 'button-danger'}, 'Yes, dismiss it');
    const no = h('button', {type: 'button'}, 'Keep it');
    confirmBox.append(h('div', {class: 'actions'}, yes, no));
    if (open) {
      form.append(h('div', {class: 'actions'}, saveButton, dismissButton), confirmBox);
    } else {
      form.append(h('p', {class: 'message'}, 'This item is no longer open; it cannot be changed.'));
    }

    const busy = (on) => {
      for (const b of [saveButton, dismissButton, yes, no]) b.disabled = on;
    };
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      busy(true);
      saveAndRetry(item, fields, message, result, gen).finally(() => busy(false));
    });
    dismissButton.addEventListener('click', () => {
      confirmBox.hidden = false;
      yes.focus();
    });
    no.addEventListener('click', () => {
      confirmBox.hidden = true;
      dismissButton.focus();
    });
    yes.addEventListener('click', async () => {
      busy(true);
      try {
        await api('POST', `/api/v1/quarantine/${id}/dismiss`);
        state.pendingNotice = `Inbox item ${item.ref || id} was dismissed.`;
        location.hash = '#/inbox';
      } catch (e) {
        message.className = 'message message-error';
        setText(message, e.message);
        busy(false);
      }
    });

    // What a web page showed when the record failed there (browser targets).
    const files = Array.isArray(item.evidence) ? item.evidence : [];
    const evidence = files.length === 0 ?
        null :
        h('div', {class: 'panel evidence'}, h('h2', {}, 'What the web page showed'),
          files.filter((f) => f.endsWith('.png'))
              .map((f) => h('img', {
                     src: `/api/v1/quarantine/${id}/evidence/${encodeURIComponent(f)}`,
                     alt: 'Screenshot of the web page when the record failed',
                     loading: 'lazy',
                   })),
          h('p', {},
            files.filter((f) => f.endsWith('.html'))
                .map(
                    (f) =>
                        h('a', {
                          href: `/api/v1/quarantine/${id}/evidence/${encodeURIComponent(f)}`,
                          download: f
                        },
                          'The page\'s HTML'))));

    finish(
        body, h('div', {class: 'panel'}, facts), evidence, message,
        h('div', {class: 'panel'}, form), result,
        h('p', {class: 'actions'}, h('a', {href: '#/inbox'}, 'Back to the inbox')));
  }

  function recordField(name, value, id) {
    const errId = `${id}-err`;
    let input;
    const kind = value === null ? 'null' : Array.isArray(value) ? 'json' : typeof value;
    if (kind === 'boolean') {
      input = h('input', {id, type: 'checkbox', checked: value, 'aria-describedby': errId});
    } else if (kind === 'object' || kind === 'json') {
      input =
          h('textarea', {id, readonly: true, 'aria-describedby': errId},
            JSON.stringify(value, null, 2));
    } else {
      input = h('input', {
        id,
        type: 'text',
        value: value === null ? '' : String(value),
        autocomplete: 'off',
        spellcheck: 'false',
        'aria-describedby': errId
      });
    }
    const label = h('label', {for: id
    }, name);
    const err = h('p', {id: errId, class: 'field-error'});
    const wrap = kind === 'boolean' ? h('div', {class: 'field field-check'}, input, label, err) :
                                      h('div', {class: 'field'}, label, input, err);
    input.addEventListener('input', () => clearFieldError(input, err));
    const original = kind === 'boolean' ? value : input.value;
    return {
      name,
      input,
      err,
      wrap,
      changed() {
        if (kind === 'object' || kind === 'json') return false;
        return kind === 'boolean' ? input.checked !== original : input.value !== original;
      },
      newValue() {
        if (kind === 'boolean') return input.checked;
        if (kind === 'number' && /^-?\d+(\.\d+)?$/.test(input.value.trim())) {
          return Number(input.value.trim());
        }
        if (kind === 'null' && input.value === '') return null;
        return input.value;
      },
    };
  }

  async function saveAndRetry(item, fields, message, result, gen) {
    message.className = 'message';
    setText(message, '');
    for (const f of fields) clearFieldError(f.input, f.err);
    const changed = {};
    for (const f of fields)
      if (f.changed()) changed[f.name] = f.newValue();
    try {
      if (Object.keys(changed).length) {
        setText(message, 'Saving the changes…');
        await api('PATCH', `/api/v1/quarantine/${item.id}`, {fields: changed});
      }
      setText(message, 'Retrying the record…');
      const run = await api('POST', `/api/v1/quarantine/${item.id}/retry`);
      if (gen !== state.generation) return;
      setText(
          message,
          Object.keys(changed).length ?
              `Saved ${
                  plural(
                      Object.keys(changed).length, 'change',
                      'changes')}; the record is being retried in run ${run.id}.` :
              `The record is being retried in run ${run.id}.`);
      for (const f of fields) f.input.disabled = true;
      for (const b of result.closest('#view').querySelectorAll('form button')) b.hidden = true;
      const panel = runPanel();
      result.replaceChildren(
          h('h2', {}, `Retry: run ${run.id}`), panel.el,
          h('p', {}, h('a', {href: `#/run/${run.id}`}, `Open run ${run.id}`)));
      await poll(async () => {
        const r = await api('GET', `/api/v1/runs/${run.id}`);
        if (gen !== state.generation) return false;
        panel.update(r);
        if (!FINISHED.has(r.status)) return true;
        const ok = r.status === 'completed';
        message.className = ok ? 'message message-ok' : 'message message-warn';
        setText(
            message,
            ok ? 'The record was written. It has left the inbox.' :
                 'The retry did not fully succeed; see the outcome below.');
        api('GET', `/api/v1/quarantine/${item.id}`)
            .then((now) => {
              const el = $('item-status');
              if (el && now && now.status) setText(el, now.status);
            })
            .catch(() => {});
        return false;
      }, gen);
    } catch (e) {
      if (gen !== state.generation) return;
      message.className = 'message message-error';
      const f = e.field && fields.find((x) => x.name === e.field);
      if (f) {
        setFieldError(f.input, f.err, e.message);
        setText(message, `Not saved: please correct “${f.name}”.`);
        f.input.focus();
      } else {
        setText(message, e.message);
      }
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    boot().catch(() => {
      document.documentElement.classList.remove('booting');
      showLogin('');
      notice(NETWORK_MESSAGE);
    });
  });
})();

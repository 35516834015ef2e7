#include "connectors/browser/page_scripts.h"

namespace keyonce::connectors::browser {
namespace {

// One look: {count, element, visible, enabled, rect} (see page_scripts.h).
constexpr char kFind[] = R"js(
function find(loc, mode) {
  const norm = (s) => String(s == null ? '' : s).replace(/[\s\u00a0\u200b]+/g, ' ').trim().toLocaleLowerCase('da');
  const want = norm(loc.value), wantName = norm(loc.name || '');
  const same = (text, w) => { const t = norm(text); return loc.exact ? t === w : t.includes(w); };
  const textOf = (el) => (el.innerText !== undefined ? el.innerText : el.textContent) || '';
  const all = (sel) => Array.from(document.querySelectorAll(sel));
  const visible = (el) => {
    if (!el.isConnected) return false;
    if (el.checkVisibility && !el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  };
  const enabled = (el) => !el.disabled && !el.closest('fieldset[disabled]') &&
      el.getAttribute('aria-disabled') !== 'true' && !el.readOnly;
  const byIds = (ids) => ids.split(/\s+/).map((id) => { const x = document.getElementById(id); return x ? textOf(x) : ''; }).join(' ');
  const labelsOf = (el) => {
    const out = [];
    if (el.labels) for (const l of el.labels) out.push(textOf(l));
    const lb = el.getAttribute('aria-labelledby');
    if (lb) out.push(byIds(lb));
    const al = el.getAttribute('aria-label');
    if (al) out.push(al);
    return out;
  };
  const roleOf = (el) => {
    const r = el.getAttribute('role');
    if (r) return r.trim().split(/\s+/)[0].toLowerCase();
    const t = el.tagName.toLowerCase(), type = (el.getAttribute('type') || 'text').toLowerCase();
    if (t === 'a' || t === 'area') return el.hasAttribute('href') ? 'link' : '';
    if (t === 'button') return 'button';
    if (t === 'input') {
      if (['button', 'submit', 'reset', 'image'].includes(type)) return 'button';
      if (type === 'checkbox' || type === 'radio') return type;
      if (type === 'number') return 'spinbutton';
      if (type === 'range') return 'slider';
      if (type === 'search') return 'searchbox';
      if (type === 'hidden' || type === 'file') return '';
      return 'textbox';
    }
    if (t === 'select') return el.multiple || el.size > 1 ? 'listbox' : 'combobox';
    if (t === 'textarea') return 'textbox';
    if (/^h[1-6]$/.test(t)) return 'heading';
    const implicit = {img: 'img', table: 'table', tr: 'row', td: 'cell', th: 'columnheader', option: 'option',
      li: 'listitem', ul: 'list', ol: 'list', nav: 'navigation', main: 'main', dialog: 'dialog',
      form: 'form', article: 'article', aside: 'complementary', header: 'banner', footer: 'contentinfo',
      summary: 'button', progress: 'progressbar', iframe: 'iframe'};
    return implicit[t] || '';
  };
  const nameOf = (el) => {
    const lb = el.getAttribute('aria-labelledby');
    if (lb) return byIds(lb);
    const al = el.getAttribute('aria-label');
    if (al) return al;
    const t = el.tagName.toLowerCase(), type = (el.getAttribute('type') || '').toLowerCase();
    if (t === 'input' && ['button', 'submit', 'reset'].includes(type)) return el.value || (type === 'submit' ? 'Submit' : '');
    if (t === 'input' && type === 'image') return el.alt || '';
    if (el.labels && el.labels.length) return Array.from(el.labels).map(textOf).join(' ');
    if (t === 'img') return el.alt || '';
    if (t === 'iframe') return el.title || '';
    const tx = textOf(el);
    if (norm(tx)) return tx;
    return el.getAttribute('title') || el.getAttribute('placeholder') || '';
  };
  let found = [];
  switch (loc.by) {
    case 'css': found = all(loc.value); break;
    case 'xpath': {
      const r = document.evaluate(loc.value, document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);
      for (let i = 0; i < r.snapshotLength; i++) if (r.snapshotItem(i).nodeType === 1) found.push(r.snapshotItem(i));
      break;
    }
    case 'label': {
      found = all('input, select, textarea, button, [contenteditable], [role]')
          .filter((el) => labelsOf(el).some((t) => same(t, want)));
      if (!found.length) {
        // What a page shows next to its term: <dt>Sagsnummer</dt><dd>..</dd>,
        // <th>Sagsnummer</th><td>..</td>.
        for (const dt of all('dt')) {
          if (!same(textOf(dt), want)) continue;
          let n = dt.nextElementSibling;
          while (n && n.tagName !== 'DD') n = n.nextElementSibling;
          if (n) found.push(n);
        }
        for (const th of all('th')) {
          if (!same(textOf(th), want)) continue;
          const n = th.nextElementSibling;
          if (n && n.tagName === 'TD') found.push(n);
        }
      }
      break;
    }
    case 'placeholder': found = all('[placeholder]').filter((el) => same(el.getAttribute('placeholder'), want)); break;
    case 'title': found = all('[title]').filter((el) => same(el.getAttribute('title'), want)); break;
    case 'role': {
      const role = String(loc.value).toLowerCase();
      found = all('body *').filter((el) => roleOf(el) === role && (!wantName || same(nameOf(el), wantName)));
      break;
    }
    default: {  // text: the innermost elements whose text it is
      const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'HEAD', 'TITLE', 'OPTION']);
      const hits = all('body, body *').filter((el) => !skip.has(el.tagName) && same(textOf(el), want));
      found = hits.filter((el) => !hits.some((o) => o !== el && el.contains(o)));
      for (const b of all('input[type=submit], input[type=button], input[type=reset]')) {
        if (same(b.value, want)) found.push(b);
      }
    }
  }
  if (mode !== 'any') found = found.filter(visible);
  if (mode === 'act') found = found.filter(enabled);
  const count = found.length;
  let el = null;
  if (loc.nth > 0) el = found[loc.nth - 1] || null;
  else if (count === 1) el = found[0];
  if (!el) return {count: count};
  const r = el.getBoundingClientRect();
  return {count: count, element: el, visible: visible(el), enabled: enabled(el),
          rect: [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height)]};
}
)js";

}  // namespace

const std::string kLocateScript = std::string(kFind) + R"js(
return find(arguments[0], arguments[1]);
)js";

// Looks again whenever the page changes (and every 100 ms), and answers once
// the element has been in the same place for one frame, or when the budget
// (ms) is spent: one round trip for what took dozens of polls.
const std::string kWaitScript = std::string(kFind) + R"js(
const loc = arguments[0], mode = arguments[1], end = Date.now() + arguments[2];
const done = arguments[arguments.length - 1];
let last = '', timer = 0, lastRun = 0, finished = false;
const observer = new MutationObserver(() => {
  if (!last && !finished) {  // not there yet: look again soon
    clearTimeout(timer);
    timer = 0;
    later(lastRun + 16 - Date.now());
  }
});
const finish = (r) => {
  finished = true;
  observer.disconnect();
  clearTimeout(timer);
  done(r);
};
const later = (ms) => {
  if (!timer && !finished) timer = setTimeout(look, Math.max(0, Math.min(ms, end - Date.now())));
};
const look = () => {
  timer = 0;
  lastRun = Date.now();
  let f;
  try {
    f = find(loc, mode);
  } catch (e) {
    return finish({error: String((e && e.name) || 'Error')});
  }
  if (f.element) {
    const where = f.rect.join(',');
    if (where === last) {
      f.stable = true;
      return finish(f);
    }
    last = where;
  } else {
    last = '';
  }
  if (Date.now() >= end) return finish(f);
  later(f.element ? 16 : 100);
};
observer.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
look();
)js";

const char kReadScript[] = R"js(
const el = arguments[0];
const t = el.tagName.toLowerCase(), type = (el.getAttribute('type') || '').toLowerCase();
if (t === 'select') {
  const o = el.selectedOptions && el.selectedOptions[0];
  return o ? o.text.trim() : '';
}
if (t === 'input' && (type === 'checkbox' || type === 'radio')) return el.checked ? 'true' : 'false';
if (t === 'input' || t === 'textarea') return el.value;
return ((el.innerText !== undefined ? el.innerText : el.textContent) || '').replace(/[\s\u00a0]+/g, ' ').trim();
)js";

const char kSetValueScript[] = R"js(
const el = arguments[0], value = arguments[1];
const t = el.tagName, ty = (el.type || 'text').toLowerCase();
const editable = el.isContentEditable ||
    (t === 'BODY' && el.ownerDocument && el.ownerDocument.designMode === 'on');
if (!editable && !(t === 'TEXTAREA' || (t === 'INPUT' &&
    !['checkbox', 'radio', 'file', 'button', 'submit', 'reset', 'image', 'hidden'].includes(ty)))) {
  return 'not a field';
}
el.focus();
if (editable) {
  el.textContent = value;
} else {
  if (el.maxLength >= 0 && value.length > el.maxLength) return 'longer:' + el.maxLength;
  // The setter of the element's own prototype, so that pages built with
  // frameworks that watch it (React) see the change.
  const d = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), 'value');
  if (d && d.set) d.set.call(el, value); else el.value = value;
  if (value !== '' && el.value === '') return 'refused:' + ty;
}
el.dispatchEvent(new InputEvent('input', {bubbles: true, inputType: 'insertText', data: value}));
el.dispatchEvent(new Event('change', {bubbles: true}));
el.blur();
return '';
)js";

const char kSelectScript[] = R"js(
const el = arguments[0], want = arguments[1];
const norm = (s) => String(s == null ? '' : s).replace(/[\s\u00a0]+/g, ' ').trim().toLocaleLowerCase('da');
if (el.tagName !== 'SELECT') return 'not a list';
const opts = Array.from(el.options);
const o = opts.find((x) => norm(x.text) === norm(want)) || opts.find((x) => x.value === want);
if (!o) return opts.slice(0, 20).map((x) => x.text.trim()).join(', ') || '(no options)';
el.focus();
o.selected = true;
el.dispatchEvent(new Event('input', {bubbles: true}));
el.dispatchEvent(new Event('change', {bubbles: true}));
return '';
)js";

const char kCheckedScript[] = R"js(
const el = arguments[0];
return typeof el.checked === 'boolean' ? el.checked : (el.getAttribute('aria-checked') === 'true');
)js";

}  // namespace keyonce::connectors::browser

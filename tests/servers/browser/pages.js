// Pages for the WebDriver client's tests (connectors/browser/webdriver_test.cc):
// a form (text, select, checkbox, a button that changes the page, a submit
// to a receipt), an upload the server checks, an iframe, a link that opens a
// second window, alert/confirm/prompt, a download, a tall page, a list that
// JavaScript rebuilds, and a page that answers slowly.
//
// Usage: node pages.js PORT   (listens on 127.0.0.1:PORT)
'use strict';

const crypto = require('crypto');
const http = require('http');

const port = Number(process.argv[2]);

function page(title, body) {
  return `<!doctype html><html lang="da"><head><meta charset="utf-8"><title>${title}</title>` +
      `</head><body>${body}</body></html>`;
}

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const pages = {
  '/form': () => page('Ny sag', `
<h1>Ny sag</h1>
<form id="f" action="/submitted" method="post">
  <label for="name">Navn</label> <input id="name" name="name">
  <label for="kind">Sagstype</label>
  <select id="kind" name="kind">
    <option value="">Vælg</option>
    <option value="boligstotte">Boligstøtte</option>
    <option value="flytning">Flytning</option>
  </select>
  <label><input type="checkbox" id="agree" name="agree" value="ja"> Samtykke</label>
  <input id="hidden-field" type="hidden" name="h" value="x">
  <input id="disabled-field" disabled value="låst">
  <button type="button" id="preview">Vis</button>
  <div id="out"></div>
  <div id="keys"></div>
  <button type="submit" id="submit">Opret sag</button>
</form>
<script>
  document.getElementById('preview').onclick = () => {
    document.getElementById('out').textContent =
        'Navn: ' + document.getElementById('name').value + '; type: ' +
        document.getElementById('kind').value + '; samtykke: ' +
        document.getElementById('agree').checked;
  };
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' || e.key === 'Tab') document.getElementById('keys').textContent += e.key + ' ';
  });
</script>`),
  '/upload': () => page('Upload', `
<form action="/upload" method="post" enctype="multipart/form-data">
  <label for="doc">Bilag</label> <input type="file" id="doc" name="doc">
  <button type="submit" id="send">Send</button>
</form>`),
  '/frames': () => page('Med ramme', `
<p id="where">yderst</p>
<iframe id="inner" name="inner" src="/inner" width="400" height="200"></iframe>`),
  '/inner': () => page('Indre', `<p id="where">i rammen</p><input id="inner-field">`),
  '/windows': () => page('Vinduer', `<a id="open" href="/popup" target="_blank">Åbn kvittering</a>`),
  '/popup': () => page('Kvittering i nyt vindue', `<p id="case">Sagsnummer: S-2026-0042</p>`),
  '/dialogs': () => page('Dialoger', `
<button id="alert" onclick="alert('Gemt');document.getElementById('result').textContent='alert lukket'">Alert</button>
<button id="confirm" onclick="document.getElementById('result').textContent=confirm('Slet sagen?')?'ja':'nej'">Confirm</button>
<button id="prompt" onclick="document.getElementById('result').textContent='svar: '+prompt('Begrundelse?')">Prompt</button>
<p id="result"></p>`),
  '/download': () => page('Hent', `<a id="dl" href="/files/rapport.csv">Hent rapport</a>`),
  '/tall': () => page('Lang side', `
<div style="height:3000px;background:linear-gradient(#fff,#8ab)">top</div><p id="bottom">bund</p>`),
  '/rebuild': () => page('Genopbygges', `
<ul id="list"><li class="item">Første</li><li class="item">Anden</li></ul>
<button id="rebuild">Genopbyg</button>
<div id="status">indlæser</div>
<script>
  document.getElementById('rebuild').onclick = () => {
    document.getElementById('list').innerHTML = '<li class="item">Ny første</li><li class="item">Ny anden</li>';
  };
  // A page that builds itself after loading, as single-page applications do.
  setTimeout(() => {
    document.getElementById('status').innerHTML = '<span id="ready">Klar</span>';
  }, 300);
</script>`),
};

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('too big'));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// The first file part of a multipart/form-data body: its filename and bytes.
function firstFile(body, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType || '');
  if (!m) return null;
  const boundary = Buffer.from('--' + (m[1] || m[2]));
  let pos = body.indexOf(boundary);
  while (pos >= 0) {
    const headEnd = body.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) return null;
    const head = body.slice(pos, headEnd).toString('utf8');
    const next = body.indexOf(boundary, headEnd);
    if (next < 0) return null;
    const fn = /filename="([^"]*)"/.exec(head);
    if (fn) return {name: fn[1], data: body.slice(headEnd + 4, next - 2)};
    pos = next;
  }
  return null;
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const send = (status, type, body, headers = {}) => {
    res.writeHead(status, {'Content-Type': type, 'Cache-Control': 'no-store', ...headers});
    res.end(body);
  };
  try {
    if (req.method === 'GET' && pages[url.pathname]) {
      return send(200, 'text/html; charset=utf-8', pages[url.pathname]());
    }
    if (req.method === 'POST' && url.pathname === '/submitted') {
      const form = new URLSearchParams((await readBody(req, 1 << 20)).toString('utf8'));
      return send(200, 'text/html; charset=utf-8', page('Kvittering', `
<h1>Sag oprettet</h1>
<dl><dt>Navn</dt><dd id="r-name">${escape(form.get('name') || '')}</dd>
<dt>Type</dt><dd id="r-kind">${escape(form.get('kind') || '')}</dd>
<dt>Samtykke</dt><dd id="r-agree">${escape(form.get('agree') || 'nej')}</dd></dl>`));
    }
    if (req.method === 'POST' && url.pathname === '/upload') {
      const file = firstFile(await readBody(req, 16 << 20), req.headers['content-type']);
      if (!file) return send(400, 'text/plain', 'no file');
      const sha = crypto.createHash('sha256').update(file.data).digest('hex');
      return send(200, 'text/html; charset=utf-8', page('Modtaget', `
<p id="received">${escape(file.name)} ${file.data.length} ${sha}</p>
<pre id="content">${escape(file.data.toString('utf8'))}</pre>`));
    }
    if (url.pathname === '/files/rapport.csv') {
      return send(200, 'text/csv; charset=utf-8', 'id;navn\r\n1;Åse\r\n',
                  {'Content-Disposition': 'attachment; filename="rapport.csv"'});
    }
    if (url.pathname === '/slow') {
      const ms = Number(url.searchParams.get('ms') || 1000);
      return setTimeout(() => send(200, 'text/html; charset=utf-8', page('Langsom', '<p>sent</p>')), ms);
    }
    send(404, 'text/plain', 'not found');
  } catch (e) {
    send(500, 'text/plain', String(e.message));
  }
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));

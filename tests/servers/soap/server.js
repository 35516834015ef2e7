// A small case system served over SOAP with the npm `soap` package, for the
// soap connector's tests. Cases live in memory.
//
//   node server.js --port 8080 [--wsse user:password]
//
// SOAP 1.1 on /case11, SOAP 1.2 on /case12 (casesystem.wsdl), operations
// CreateCase, GetCase, FindCaseByExternalId, ListCases. Faults:
//   Client/Sender InvalidInput  missing title, invalid CPR format
//   Client/Sender Duplicate     a case with that external id exists (the
//                               faultstring names the CPR, as careless
//                               systems do; the client must mask it)
//   Client/Sender NotFound      GetCase / FindCaseByExternalId without a case
// With --wsse, every request needs a WS-Security UsernameToken with that
// user and password (PasswordText, or PasswordDigest over nonce + created +
// password), a Nonce and a Created; otherwise the package answers HTTP 401
// with a fault.
//
// Plain HTTP beside it, for the tests:
//   GET  /cases                  all cases as JSON (to check exactly once)
//   POST /control {"fail": n, "status": 503, "delayMs": ms, "truncate": n,
//                  "reset": true}
//        the next n SOAP requests are answered with `status` and a text
//        body (no fault); every SOAP reply is delayed by delayMs; the next
//        n replies are cut off after a few bytes (truncate); reset forgets
//        all cases.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const soap = require('soap');

function arg(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(arg('port', process.env.PORT || 0));
const wsse = arg('wsse', process.env.CASESYSTEM_WSSE || '');
const wsdl = fs.readFileSync(path.join(__dirname, 'casesystem.wsdl'), 'utf8');

let cases = [];
let nextId = 1;
let failNext = 0;
let failStatus = 503;
let delayMs = 0;
let truncateNext = 0;

function text(v) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'object' && '$value' in v) return String(v.$value);
  return String(v);
}

// A fault in the style of the endpoint's SOAP version.
function fault(v12, code, message) {
  if (v12) {
    return {
      Fault: {
        Code: {Value: 'soap:Sender', Subcode: {Value: 'cs:' + code}},
        Reason: {Text: message},
        statusCode: 400,
      },
    };
  }
  return {Fault: {faultcode: 'soap:Client.' + code, faultstring: message, statusCode: 500}};
}

function publicCase(c) {
  const out = {CaseId: c.CaseId, ExternalId: c.ExternalId, Cpr: c.Cpr, Title: c.Title};
  if (c.Kind) out.Kind = c.Kind;
  return out;
}

function operations(v12) {
  return {
    CreateCase(args) {
      const externalId = text(args.ExternalId);
      const cpr = text(args.Cpr);
      const title = text(args.Title);
      if (!title) throw fault(v12, 'InvalidInput', 'Title is required');
      if (!/^\d{6}-?\d{4}$/.test(cpr)) throw fault(v12, 'InvalidInput', 'Cpr has an invalid format');
      if (externalId && cases.some((c) => c.ExternalId === externalId)) {
        throw fault(v12, 'Duplicate', 'A case for CPR ' + cpr + ' with this external id exists');
      }
      const c = {
        CaseId: 'SAG-' + String(nextId++).padStart(6, '0'),
        ExternalId: externalId,
        Cpr: cpr,
        Title: title,
        Kind: text(args.Kind),
      };
      cases.push(c);
      return {CaseId: c.CaseId, Status: 'Created'};
    },
    GetCase(args) {
      const c = cases.find((x) => x.CaseId === text(args.CaseId));
      if (!c) throw fault(v12, 'NotFound', 'No case with this id');
      return {Case: publicCase(c)};
    },
    FindCaseByExternalId(args) {
      const c = cases.find((x) => x.ExternalId === text(args.ExternalId));
      if (!c) throw fault(v12, 'NotFound', 'No case with this external id');
      return {Case: publicCase(c)};
    },
    ListCases() {
      return {Count: cases.length, Case: cases.map(publicCase)};
    },
  };
}

// Delays the reply when asked to (the package calls operations synchronously).
function delayed(ops) {
  const out = {};
  for (const [name, fn] of Object.entries(ops)) {
    out[name] = (args, callback) => {
      let result;
      try {
        result = fn(args);
      } catch (e) {
        if (!delayMs) throw e;
        setTimeout(() => callback(e), delayMs);
        return undefined;
      }
      if (!delayMs) return result;
      setTimeout(() => callback(null, result), delayMs);
      return undefined;
    };
  }
  return out;
}

const services = {
  CaseSystem: {
    CaseSystemSoap11Port: delayed(operations(false)),
    CaseSystemSoap12Port: delayed(operations(true)),
  },
};

function checkSecurity(security) {
  if (!wsse) return true;
  const [user, password] = wsse.split(':');
  const token = security && security.UsernameToken;
  if (!token) return false;
  const nonce = text(token.Nonce);
  const created = text(token.Created);
  if (!nonce || !created || isNaN(Date.parse(created))) return false;
  if (text(token.Username) !== user) return false;
  const pw = token.Password || {};
  const type = (pw.attributes && pw.attributes.Type) || '';
  if (type.endsWith('#PasswordDigest')) {
    const digest = crypto
      .createHash('sha1')
      .update(Buffer.concat([Buffer.from(nonce, 'base64'), Buffer.from(created + password)]))
      .digest('base64');
    return text(pw) === digest;
  }
  return text(pw) === password;
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/cases') {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(cases));
    return;
  }
  if (req.method === 'POST' && req.url === '/control') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
      if (body.reset) {
        cases = [];
        nextId = 1;
      }
      if (body.fail !== undefined) failNext = body.fail;
      if (body.status !== undefined) failStatus = body.status;
      if (body.delayMs !== undefined) delayMs = body.delayMs;
      if (body.truncate !== undefined) truncateNext = body.truncate;
      res.end('ok');
    });
    return;
  }
  res.statusCode = 404;
  res.end('not found');
});

// Injected failures come before the SOAP listeners see the request.
const originalEmit = server.emit.bind(server);
server.emit = (event, req, res, ...rest) => {
  if (event === 'request' && req.method === 'POST' && req.url.startsWith('/case') && truncateNext > 0) {
    // A reply that promises 1000 bytes and breaks off after a few.
    truncateNext--;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, {'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': 1000});
      res.write('<?xml version="1.0"?><soap:Envelope', () => res.socket.destroy());
    });
    return true;
  }
  if (event === 'request' && req.method === 'POST' && req.url.startsWith('/case') && failNext > 0) {
    failNext--;
    req.resume();
    res.statusCode = failStatus;
    res.setHeader('Content-Type', 'text/plain');
    res.end('injected failure');
    return true;
  }
  return originalEmit(event, req, res, ...rest);
};

// Listen only once both SOAP endpoints are ready (the package reads the
// WSDL asynchronously), so a test never meets a half-started server.
let pending = 2;
for (const [p, v12] of [['/case11', false], ['/case12', true]]) {
  const listener = soap.listen(server, {
    path: p,
    services,
    xml: wsdl,
    forceSoap12Headers: v12,
    suppressStack: true,
    callback: (err) => {
      if (err) {
        console.error('WSDL error: ' + err);
        process.exit(1);
      }
      if (--pending === 0) {
        server.listen(port, '127.0.0.1', () => {
          console.log('case system listening on 127.0.0.1:' + server.address().port);
        });
      }
    },
  });
  listener.authenticate = (security) => checkSecurity(security);
}

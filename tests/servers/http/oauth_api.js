// OAuth2 token endpoint (the real oauth2-mock-server) plus a small protected
// API that accepts only tokens this token endpoint issued, for the http
// connector's tests.
//
//   node oauth_api.js OAUTH_PORT API_PORT
//   env: NODE_MODULES (tests/node_modules), OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET,
//        OAUTH_USERNAME, OAUTH_PASSWORD, OAUTH_EXPIRES_IN (seconds, default 3600)
//
// API: GET /stats -> {token_requests, api_requests, rejected, grants};
//      POST /revoke -> forget every issued token (the next call gets 401);
//      POST /introspect (form token=...) -> RFC 7662 {active, email}: email is
//        OAUTH_MAILBOX for a token this endpoint issued (Dovecot's oauth2
//        passdb asks this for an XOAUTH2 login);
//      anything else -> 201 {"ok": true} with a valid bearer token, else 401.
'use strict';
const http = require('node:http');
const path = require('node:path');
const { OAuth2Server } = require(path.join(process.env.NODE_MODULES, 'oauth2-mock-server'));

const [oauthPort, apiPort] = process.argv.slice(2).map(Number);
const clientId = process.env.OAUTH_CLIENT_ID || 'keyonce';
const clientSecret = process.env.OAUTH_CLIENT_SECRET || '';
const username = process.env.OAUTH_USERNAME || '';
const password = process.env.OAUTH_PASSWORD || '';
const expiresIn = Number(process.env.OAUTH_EXPIRES_IN || 3600);

const issued = new Set();
const stats = { token_requests: 0, api_requests: 0, rejected: 0, grants: [] };

async function main() {
  const server = new OAuth2Server();
  await server.issuer.keys.generate('RS256');
  server.service.on('beforeResponse', (resp, req) => {
    stats.token_requests++;
    const b = req.body || {};
    stats.grants.push(b.grant_type);
    let ok = b.client_id === clientId;
    if (b.grant_type === 'client_credentials') ok = ok && b.client_secret === clientSecret;
    else if (b.grant_type === 'password') ok = ok && b.username === username && b.password === password;
    else ok = false;
    if (!ok) {
      resp.statusCode = 401;
      resp.body = { error: 'invalid_client' };
      return;
    }
    resp.body.expires_in = expiresIn;
    issued.add(resp.body.access_token);
  });
  await server.start(oauthPort, '127.0.0.1');

  const api = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      res.setHeader('Content-Type', 'application/json');
      if (req.url === '/stats') return res.end(JSON.stringify(stats));
      if (req.url === '/introspect') {
        const token = new URLSearchParams(body).get('token') || '';
        const active = issued.has(token);
        const mailbox = process.env.OAUTH_MAILBOX || '';
        return res.end(JSON.stringify(active ? { active, email: mailbox } : { active }));
      }
      if (req.url === '/revoke') {
        issued.clear();
        return res.end('{}');
      }
      const auth = req.headers.authorization || '';
      const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      if (!issued.has(token)) {
        stats.rejected++;
        res.statusCode = 401;
        return res.end('{"error": "invalid_token"}');
      }
      stats.api_requests++;
      res.statusCode = 201;
      res.end(JSON.stringify({ ok: true, n: stats.api_requests }));
    });
  });
  api.listen(apiPort, '127.0.0.1', () => console.log('ready'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

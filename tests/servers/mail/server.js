// A real SMTP server for the smtp connector's tests (npm smtp-server +
// mailparser), listening on 127.0.0.1 only.
//
//   node server.js --port P --out DIR [--user U --password PW]
//                  [--cert server.crt --key server.key [--secure] [--require-tls]]
//
// --user/--password: AUTH PLAIN/LOGIN is required and must match (without
//   them AUTH is not offered).
// --cert/--key: STARTTLS is offered with this certificate; with --secure the
//   whole connection is TLS (smtps://); --require-tls refuses MAIL FROM on a
//   connection that did not STARTTLS (530).
//
// Recipients: unknown@... is refused with 550 (no such user), busy@... with
// 451 (try again later). Every accepted message is parsed and written to
// DIR/<n>.json (written to a temporary name, then renamed: a reader never
// sees half a file) with: envelope, secure, user, messageId, subject,
// rawSubject (the header as sent, to check RFC 2047 encoding), from, to, cc,
// text, html, and attachments [{filename, contentType, size, base64}].
'use strict';

const fs = require('fs');
const path = require('path');
const {SMTPServer} = require('smtp-server');
const {simpleParser} = require('mailparser');

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error('unexpected argument ' + a);
    const name = a.slice(2);
    if (name === 'secure' || name === 'require-tls') {
      out[name] = true;
    } else {
      out[name] = argv[++i];
    }
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
if (!args.port || !args.out) {
  console.error('usage: server.js --port P --out DIR [--user U --password PW] [--cert C --key K] [--secure] [--require-tls]');
  process.exit(2);
}
fs.mkdirSync(args.out, {recursive: true});

let counter = 0;
const withTls = Boolean(args.cert && args.key);
const withAuth = Boolean(args.user);

function addresses(field) {
  if (!field) return [];
  const list = Array.isArray(field) ? field : [field];
  const out = [];
  for (const group of list) for (const v of group.value || []) out.push(v.address);
  return out;
}

function fail(callback, code, message) {
  const err = new Error(message);
  err.responseCode = code;
  callback(err);
}

const options = {
  logger: false,
  banner: 'keyonce test mail server',
  secure: Boolean(args.secure),
  authOptional: !withAuth,
  allowInsecureAuth: true,
  disabledCommands: [],
  size: 20 * 1024 * 1024,
  onAuth(auth, session, callback) {
    if (!withAuth) return fail(callback, 502, 'Authentication not enabled');
    if (auth.username === args.user && auth.password === args.password) {
      return callback(null, {user: auth.username});
    }
    return fail(callback, 535, 'Invalid username or password');
  },
  onMailFrom(address, session, callback) {
    if (args['require-tls'] && !session.secure) {
      return fail(callback, 530, 'Must issue a STARTTLS command first');
    }
    callback();
  },
  onRcptTo(address, session, callback) {
    const local = address.address.split('@')[0].toLowerCase();
    if (local === 'unknown') return fail(callback, 550, 'No such user here');
    if (local === 'busy') return fail(callback, 451, 'Mailbox busy, try again later');
    callback();
  },
  onData(stream, session, callback) {
    simpleParser(stream, {skipTextToHtml: true, skipHtmlToText: true})
      .then((mail) => {
        const raw = (mail.headerLines || []).find((h) => h.key === 'subject');
        const doc = {
          envelope: {
            from: session.envelope.mailFrom && session.envelope.mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address),
          },
          secure: Boolean(session.secure),
          user: session.user || null,
          messageId: mail.messageId || null,
          subject: mail.subject || null,
          rawSubject: raw ? raw.line.replace(/^subject:\s*/i, '') : null,
          from: addresses(mail.from),
          to: addresses(mail.to),
          cc: addresses(mail.cc),
          text: mail.text === undefined ? null : mail.text,
          html: mail.html === false || mail.html === undefined ? null : mail.html,
          attachments: (mail.attachments || []).map((a) => ({
            filename: a.filename || null,
            contentType: a.contentType,
            size: a.size,
            base64: a.content.toString('base64'),
          })),
        };
        const n = String(++counter).padStart(6, '0');
        const file = path.join(args.out, n + '.json');
        fs.writeFileSync(file + '.tmp', JSON.stringify(doc, null, 2));
        fs.renameSync(file + '.tmp', file);
        callback(null, 'Queued as ' + n);
      })
      .catch((err) => fail(callback, 554, 'Could not parse the message: ' + err.message));
  },
};
if (withTls) {
  options.key = fs.readFileSync(args.key);
  options.cert = fs.readFileSync(args.cert);
} else {
  options.disabledCommands.push('STARTTLS');
}
if (!withAuth) options.disabledCommands.push('AUTH');

const server = new SMTPServer(options);
server.on('error', (err) => console.error('smtp server error:', err.message));
server.listen(Number(args.port), '127.0.0.1', () => {
  console.log('listening on 127.0.0.1:' + args.port);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));

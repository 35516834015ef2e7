// A real FTP server for the file-transfer tests (npm ftp-srv), listening on
// 127.0.0.1 only, with passive data connections on loopback.
//
//   node server.js --port P --root DIR --user U --password PW
//                  [--cert server.crt --key server.key [--implicit]]
//
// One user whose root folder is DIR. --cert/--key offer explicit TLS (AUTH
// TLS); with --implicit the whole connection is TLS (ftps://).
'use strict';

const fs = require('fs');
const bunyan = require('bunyan');
const {FtpSrv, ftpErrors} = require('ftp-srv');

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error('unexpected argument ' + a);
    const name = a.slice(2);
    if (name === 'implicit') {
      out[name] = true;
    } else {
      out[name] = argv[++i];
    }
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
if (!args.port || !args.root || !args.user || !args.password) {
  console.error('usage: server.js --port P --root DIR --user U --password PW [--cert C --key K [--implicit]]');
  process.exit(2);
}

// Passive ports: a random window, so parallel test servers rarely collide
// (ftp-srv probes the window for a free port).
const pasvMin = 30000 + Math.floor(Math.random() * 30000);
const tls = args.cert && args.key
  ? {key: fs.readFileSync(args.key), cert: fs.readFileSync(args.cert)}
  : false;

const server = new FtpSrv({
  url: (args.implicit ? 'ftps' : 'ftp') + '://127.0.0.1:' + args.port,
  pasv_url: '127.0.0.1',
  pasv_min: pasvMin,
  pasv_max: pasvMin + 1000,
  anonymous: false,
  greeting: 'keyonce test ftp server',
  tls,
  log: bunyan.createLogger({name: 'ftp-srv', level: 'error'}),
});

server.on('login', ({username, password}, resolve, reject) => {
  if (username === args.user && password === args.password) return resolve({root: args.root});
  return reject(new ftpErrors.GeneralError('Invalid username or password', 530));
});
server.on('client-error', ({context, error}) => console.error('client error', context, error && error.message));

server.listen().then(() => console.log('listening on 127.0.0.1:' + args.port));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close().finally(() => process.exit(0)));

// Answers every request with a JSON reply whose Content-Length promises more
// than is sent, then closes the connection: a reply cut off on the way.
//   node truncating_server.js PORT
'use strict';
const net = require('node:net');
const port = Number(process.argv[2]);
net.createServer((s) => {
  s.once('data', () => {
    s.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id": 1, "na');
  });
  s.on('error', () => {});
}).listen(port, '127.0.0.1');

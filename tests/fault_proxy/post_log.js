// json-server middleware for the exactly-once test: appends one JSON line
// {"path", "id", "status"} to $KEYONCE_POST_LOG for every POST that reaches
// json-server, so the test sees each write the upstream applied (or refused,
// e.g. a duplicate id), not only the final database.
const fs = require('fs');

module.exports = (req, res, next) => {
  const file = process.env.KEYONCE_POST_LOG;
  if (file && req.method === 'POST') {
    res.on('finish', () => {
      const id = req.body && req.body.id !== undefined ? String(req.body.id) : null;
      fs.appendFileSync(file, JSON.stringify({path: req.path, id, status: res.statusCode}) + '\n');
    });
  }
  next();
};

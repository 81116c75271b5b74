// The gateway mounted in an Express 5 app beside routes of your own, on a server you own. Build the
// package first (`npm run build`), then:
//   node examples/express-mount.js
// and point a COS client at http://127.0.0.1:8080/<Coffer>/<Key> with the printed SecretId/SecretKey
// (examples/cos-sdk-upload.js does). The configuration object is what a configuration file holds.
'use strict';
const express = require('express');
const http = require('node:http');
const { createCofferGateway } = require('..'); // package.json "main": dist/src/index.js

(async () => {
  const gateway = await createCofferGateway({
    keyring: { directory: './data/keyring' },
    embeddedUpstream: { enabled: true, directory: './data/upstream' },
    demo: { enabled: true },
    auth: { cos: { acceptKeyOnlyPath: true } }, // the official SDK 3.0.0 signs `/<Key>` without the coffer
  });
  const app = express();
  app.disable('x-powered-by');
  app.get('/app/status', (_req, res) => res.json({ ok: true })); // your routes first
  app.use(gateway.handler); // the gateway answers everything else (mount it at the root: clients sign the path they send)

  const server = http.createServer(app);
  // Before listen: without it Node sends `100 Continue` before anything could refuse, and the server
  // lacks the gateway's timeouts, header limits, connection cap, CONNECT handling and drain.
  gateway.attach(server);
  server.listen(8080, '127.0.0.1', () => {
    const { secretId, secretKey, coffer } = gateway.demoCredentials;
    console.log(`listening on http://127.0.0.1:8080 — coffer ${coffer}, SecretId ${secretId}, SecretKey ${secretKey}`);
  });
  const stop = () => void gateway.close().then(() => process.exit(0)); // drains, closes the server, releases everything
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
})().catch((error) => {
  console.error(error.message);
  process.exit(1);
});

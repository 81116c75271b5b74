import { KMSClient, GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import http from 'node:http';
it('probe', async () => {
  const c = new KMSClient({ region: 'eu-west-1', endpoint: 'http://127.0.0.1:1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 });
  try { await c.send(new GenerateDataKeyCommand({ KeyId: 'k', KeySpec: 'AES_256' })); } catch (e: any) { console.log('refused', e.name, e.code, e.constructor?.name, Object.keys(e), e.$metadata, e.cause, e.errors); }
  const srv = http.createServer((req, res) => { req.resume(); req.on('end', () => req.socket.destroy()); });
  await new Promise<void>(r => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as any).port;
  const d = new KMSClient({ region: 'eu-west-1', endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1, requestHandler: { requestTimeout: 100 } });
  try { await d.send(new GenerateDataKeyCommand({ KeyId: 'k', KeySpec: 'AES_256' })); } catch (e: any) { console.log('reset', e.name, e.code, Object.keys(e), e.$metadata); }
  const srv2 = http.createServer((req, res) => { req.resume(); });
  await new Promise<void>(r => srv2.listen(0, '127.0.0.1', r));
  const port2 = (srv2.address() as any).port;
  const f = new KMSClient({ region: 'eu-west-1', endpoint: `http://127.0.0.1:${port2}`, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1, requestHandler: { requestTimeout: 100 } });
  try { await f.send(new GenerateDataKeyCommand({ KeyId: 'k', KeySpec: 'AES_256' })); console.log('no error!'); } catch (e: any) { console.log('timeout', e.name, e.code, Object.keys(e), e.$metadata); }
  srv.close(); srv2.closeAllConnections(); srv2.close(); c.destroy(); d.destroy(); f.destroy();
});

/**
 * Write-once as the upstream sees it, through the whole composition (config → createCofferGateway →
 * decorated stores): the manifest that makes an object exist, and the coffer key record, are created
 * with `If-None-Match: *`, so two writers racing past the pre-body check cannot both win. A decorator
 * in the composition once dropped that option; this test looks at the wire, not at one module.
 */
import { send, signed, type CosCredentials } from '../support/cos-signed-request';
import { startRecordedGateway, type RecordedGateway } from '../support/recorded-gateway';

const COFFER = 'writeonce-1250000000';
const KEY: CosCredentials = { secretId: 'AKIDwriteOnceWire', secretKey: 'write-once-wire-secret-key-0123456789' };

let recorded: RecordedGateway;
beforeAll(async () => {
  recorded = await startRecordedGateway({ coffers: [COFFER], accessKeys: [{ ...KEY, grants: [{ coffer: COFFER, actions: ['*'] }] }] });
});
afterAll(async () => {
  await recorded?.stop();
});

const host = (): string => `127.0.0.1:${recorded.port}`;
const put = (key: string, params: Array<[string, string]> = [], body = Buffer.from('hello')) =>
  send(recorded.port, signed({ method: 'PUT', signedPath: `/${COFFER}/${key}`, params, host: host(), path: `/${COFFER}/${key}`, mode: 'header', credentials: KEY }), body);
const post = (key: string, params: Array<[string, string]>, body = Buffer.alloc(0)) =>
  send(recorded.port, signed({ method: 'POST', signedPath: `/${COFFER}/${key}`, params, host: host(), path: `/${COFFER}/${key}`, mode: 'header', credentials: KEY }), body);

/** The upstream PUTs (not part uploads) whose path ends with `suffix`, with their If-None-Match. */
function upstreamPuts(suffix: string): Array<string | undefined> {
  return recorded.proxy.requests.filter((r) => r.method === 'PUT' && !r.query.includes('partNumber') && r.path.endsWith(suffix)).map((r) => r.ifNoneMatch);
}

test('PutObject: the coffer key record and the manifest are created with If-None-Match: *', async () => {
  expect((await put('single.txt')).status).toBe(200);
  expect(upstreamPuts('/k/coffer-key')).toEqual(['*']);
  expect(upstreamPuts('/m/single.txt')).toEqual(['*']);
});

test('CompleteMultipartUpload: the manifest is created with If-None-Match: *', async () => {
  const initiated = await post('multi.bin', [['uploads', '']]);
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(initiated.text)?.[1] as string;
  const part = await put(
    'multi.bin',
    [
      ['partNumber', '1'],
      ['uploadId', uploadId],
    ],
    Buffer.from('only part'),
  );
  expect(part.status).toBe(200);
  const listed = await send(recorded.port, signed({ method: 'GET', signedPath: `/${COFFER}/multi.bin`, params: [['uploadId', uploadId]], host: host(), path: `/${COFFER}/multi.bin`, mode: 'header', credentials: KEY }));
  const partEtag = /<ETag>([^<]+)<\/ETag>/.exec(listed.text)?.[1] as string; // ListParts: the part's ETag as the client would echo it
  const complete = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${partEtag}</ETag></Part></CompleteMultipartUpload>`;
  expect((await post('multi.bin', [['uploadId', uploadId]], Buffer.from(complete))).status).toBe(200);
  expect(upstreamPuts('/m/multi.bin')).toEqual(['*']);
});

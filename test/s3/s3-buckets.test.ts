/**
 * Buckets as coffers in the S3 dialect, with the AWS SDK for JavaScript against a real gateway whose
 * upstream sits behind a recording proxy (test/support/recorded-gateway.ts), coffer classes
 * configured: HeadBucket and GetBucketLocation look the one bucket up (no listing of the coffer
 * directory, counted upstream) and answer the gateway's S3 region; a credential scope naming another
 * region is refused before the body and before any upstream request. CreateBucket and DeleteBucket
 * create and delete coffers of a coffer class exactly as the CDCS PUT/DELETE Coffer do (the COS SDK
 * sees them), with S3's answers for existing, foreign, invalid and non-empty buckets and for location
 * constraints; a refused create writes nothing upstream. Every error of an S3 request — also one the
 * listener refuses before the target is parsed — is rendered by the one S3 renderer; CDCS requests
 * keep CDCS's.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { createHash } from 'node:crypto';
import { CreateBucketCommand, DeleteBucketCommand, GetBucketLocationCommand, HeadBucketCommand, HeadObjectCommand, ListBucketsCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { startRecordedGateway, type RecordedGateway } from '../support/recorded-gateway';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const CONFIGURED = 'alpha-1250000000';
const ADMIN = { secretId: 'AKIDs3Buckets', secretKey: 's3-buckets-secret-key-0123456789' };
/** A creator of the class; its only configured grant lists the configured coffer. */
const CREATOR = { secretId: 'AKIDs3Creator', secretKey: 's3-creator-secret-key-0123456789', principal: 'qcs::cam::uin/100000000001:uin/100000000031' };
/** Another creator of the class, with no grant on the configured coffer. */
const RIVAL = { secretId: 'AKIDs3Rival', secretKey: 's3-rival-secret-key-0123456789', principal: 'qcs::cam::uin/100000000001:uin/100000000032' };
/** May read the configured coffer; creates nothing. */
const READER = { secretId: 'AKIDs3Reader', secretKey: 's3-reader-secret-key-0123456789' };

let recorded: RecordedGateway;

beforeAll(async () => {
  recorded = await startRecordedGateway({
    coffers: [CONFIGURED],
    accessKeys: [
      { ...ADMIN, grants: [{ coffer: '*', actions: ['*'] }] },
      { secretId: CREATOR.secretId, secretKey: CREATOR.secretKey, grants: [{ coffer: CONFIGURED, actions: ['list'] }] },
      { secretId: RIVAL.secretId, secretKey: RIVAL.secretKey, grants: [{ coffer: CONFIGURED, actions: ['list'] }] },
      { ...READER, grants: [{ coffer: CONFIGURED, actions: ['read'] }] },
    ],
    cofferClasses: { team: { pattern: 'team-*-1250000000', creators: [CREATOR.principal, RIVAL.principal] } },
    config: {
      policies: {
        principals: [
          { accessKey: CREATOR.secretId, principal: CREATOR.principal },
          { accessKey: RIVAL.secretId, principal: RIVAL.principal },
        ],
      },
    },
  });
});

afterAll(async () => {
  await recorded?.stop();
});

const clientFor = (gateway: RecordedGateway, region: string, keys: { secretId: string; secretKey: string } = ADMIN): S3Client =>
  new S3Client({ endpoint: `http://127.0.0.1:${gateway.port}`, forcePathStyle: true, region, credentials: { accessKeyId: keys.secretId, secretAccessKey: keys.secretKey } });

const failureOf = async (promise: Promise<unknown>): Promise<{ code: string; status: number; message: string }> => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof S3ServiceException) return { code: error.name, status: error.$metadata.httpStatusCode ?? 0, message: error.message };
    throw error;
  }
  return { code: 'OK', status: 200, message: '' };
};

/** The upstream requests `action` caused, as the recording proxy saw them arrive. */
async function upstreamDuring(gateway: RecordedGateway, action: () => Promise<unknown>): Promise<Array<{ method: string; path: string; query: string }>> {
  const before = gateway.proxy.arrivals.length;
  await action();
  return gateway.proxy.arrivals.slice(before);
}

const cosFor = (gateway: RecordedGateway): any => new COS({ SecretId: ADMIN.secretId, SecretKey: ADMIN.secretKey, Protocol: 'http:', Proxy: `http://127.0.0.1:${gateway.port}` });

/** PUT Coffer through the CDCS dialect (the official COS SDK). */
async function createWithCos(gateway: RecordedGateway, Bucket: string): Promise<void> {
  await cosFor(gateway).putBucket({ Bucket, Region: 'ap-guangzhou' });
}

/** GET Coffer (a listing) through the CDCS dialect: the HTTP status the COS SDK got. */
const cosListStatus = (gateway: RecordedGateway, Bucket: string): Promise<number> =>
  cosFor(gateway)
    .getBucket({ Bucket, Region: 'ap-guangzhou' })
    .then(
      () => 200,
      (error: { statusCode?: number }) => error.statusCode ?? -1,
    );

/** Upstream writes (PUT, POST, DELETE) among recorded requests. */
const writes = (requests: ReadonlyArray<{ method: string }>) => requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');

describe('HeadBucket and GetBucketLocation: one lookup, the gateway region', () => {
  let s3: S3Client;
  beforeAll(async () => {
    s3 = clientFor(recorded, 'us-east-1');
    for (const name of ['team-one-1250000000', 'team-two-1250000000', 'team-three-1250000000']) await createWithCos(recorded, name);
  });
  afterAll(() => s3?.destroy());

  test('a created coffer is found without listing the coffer directory (no upstream listing, no other registration read)', async () => {
    const requests = await upstreamDuring(recorded, async () => {
      const head = await s3.send(new HeadBucketCommand({ Bucket: 'team-two-1250000000' }));
      expect(head.BucketRegion).toBe('us-east-1');
      const location = await s3.send(new GetBucketLocationCommand({ Bucket: 'team-two-1250000000' }));
      // S3's answer for us-east-1: an empty LocationConstraint.
      expect(location.LocationConstraint ?? '').toBe('');
    });
    expect(requests.filter((r) => /(^|&)(list-type|prefix)=/.test(r.query))).toEqual([]);
    expect(requests.filter((r) => r.path.includes('/_registry/r/') && !r.path.endsWith('/team-two-1250000000'))).toEqual([]);
  });

  test("a configured coffer: no upstream request but the coffer policy's (cached); an unknown name of a class: NoSuchBucket", async () => {
    const requests = await upstreamDuring(recorded, async () => {
      expect((await s3.send(new HeadBucketCommand({ Bucket: CONFIGURED }))).BucketRegion).toBe('us-east-1');
      expect((await s3.send(new GetBucketLocationCommand({ Bucket: CONFIGURED }))).LocationConstraint ?? '').toBe('');
    });
    expect(requests.filter((r) => !r.path.endsWith('/k/policy'))).toEqual([]);
    expect((await failureOf(s3.send(new GetBucketLocationCommand({ Bucket: 'team-none-1250000000' })))).code).toBe('NoSuchBucket');
  });
});

describe('the S3 region (config s3.region)', () => {
  test('a scope naming another region → 400 AuthorizationHeaderMalformed naming the expected one; no upstream request', async () => {
    const wrong = clientFor(recorded, 'eu-west-1');
    try {
      const requests = await upstreamDuring(recorded, async () => {
        const failure = await failureOf(wrong.send(new PutObjectCommand({ Bucket: CONFIGURED, Key: 'region/x', Body: 'x' })));
        expect(failure).toMatchObject({ code: 'AuthorizationHeaderMalformed', status: 400 });
        expect(failure.message).toContain("the region 'eu-west-1' is wrong; expecting 'us-east-1'");
      });
      expect(requests).toEqual([]);
    } finally {
      wrong.destroy();
    }
  });

  test('decided before the body: a PUT waiting for 100 Continue is refused without it', async () => {
    const host = `127.0.0.1:${recorded.port}`;
    const signer = new SignatureV4({ service: 's3', region: 'eu-west-1', credentials: { accessKeyId: ADMIN.secretId, secretAccessKey: ADMIN.secretKey }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
    const signed = await signer.sign({
      method: 'PUT',
      protocol: 'http:',
      hostname: '127.0.0.1',
      path: `/${CONFIGURED}/region/continue`,
      headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': '1000', expect: '100-continue' },
    });
    const outcome = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = request({ host: '127.0.0.1', port: recorded.port, method: 'PUT', path: `/${CONFIGURED}/region/continue`, headers: signed.headers as Record<string, string> }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, continued }));
      });
      req.on('continue', () => {
        continued = true;
        req.end(Buffer.alloc(1000));
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(outcome).toEqual({ status: 400, continued: false });
  });

  test('a gateway configured for eu-central-1: its clients sign for it, GetBucketLocation and HeadBucket name it, us-east-1 is refused', async () => {
    const other = await startRecordedGateway({ coffers: [CONFIGURED], accessKeys: [{ ...ADMIN, grants: [{ coffer: '*', actions: ['*'] }] }], config: { s3: { region: 'eu-central-1' } } });
    const central = clientFor(other, 'eu-central-1');
    const east = clientFor(other, 'us-east-1');
    try {
      await central.send(new PutObjectCommand({ Bucket: CONFIGURED, Key: 'x', Body: 'x' }));
      expect((await central.send(new HeadObjectCommand({ Bucket: CONFIGURED, Key: 'x' }))).ContentLength).toBe(1);
      expect((await central.send(new GetBucketLocationCommand({ Bucket: CONFIGURED }))).LocationConstraint).toBe('eu-central-1');
      expect((await central.send(new HeadBucketCommand({ Bucket: CONFIGURED }))).BucketRegion).toBe('eu-central-1');
      const refused = await failureOf(east.send(new HeadObjectCommand({ Bucket: CONFIGURED, Key: 'x' })));
      expect(refused.status).toBe(400);
    } finally {
      central.destroy();
      east.destroy();
      await other.stop();
    }
  });
});

describe('CreateBucket and DeleteBucket: coffers of a coffer class', () => {
  let creator: S3Client;
  let rival: S3Client;
  let reader: S3Client;
  let admin: S3Client;
  beforeAll(() => {
    creator = clientFor(recorded, 'us-east-1', CREATOR);
    rival = clientFor(recorded, 'us-east-1', RIVAL);
    reader = clientFor(recorded, 'us-east-1', READER);
    admin = clientFor(recorded, 'us-east-1');
  });
  afterAll(() => [creator, rival, reader, admin].forEach((client) => client?.destroy()));

  test('a creator creates a bucket: 200 with Location; the CDCS side sees the coffer; the creator (its policy) and a "*" grant get BucketAlreadyOwnedByYou, another creator BucketAlreadyExists', async () => {
    const Bucket = 'team-sdk-1250000000';
    const created = await creator.send(new CreateBucketCommand({ Bucket }));
    expect(created.Location).toBe(`/${Bucket}`);
    expect(await cosListStatus(recorded, Bucket)).toBe(200);
    expect((await creator.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)).toContain(Bucket);
    await creator.send(new PutObjectCommand({ Bucket, Key: 'hello.txt', Body: 'hello' }));
    expect((await failureOf(creator.send(new CreateBucketCommand({ Bucket })))).code).toBe('BucketAlreadyOwnedByYou');
    expect((await failureOf(admin.send(new CreateBucketCommand({ Bucket })))).code).toBe('BucketAlreadyOwnedByYou');
    const rivalRequests = await upstreamDuring(recorded, async () => {
      expect(await failureOf(rival.send(new CreateBucketCommand({ Bucket })))).toMatchObject({ code: 'BucketAlreadyExists', status: 409 });
    });
    // Decided before anything is written (not by losing the registration's create-only race).
    expect(writes(rivalRequests)).toEqual([]);
    // The object is untouched by the refused creates.
    expect((await creator.send(new HeadObjectCommand({ Bucket, Key: 'hello.txt' }))).ContentLength).toBe(5);
  });

  test('a configured coffer: BucketAlreadyOwnedByYou to whoever may use it, AccessDenied to others (no existence oracle)', async () => {
    expect((await failureOf(admin.send(new CreateBucketCommand({ Bucket: CONFIGURED })))).code).toBe('BucketAlreadyOwnedByYou');
    expect((await failureOf(reader.send(new CreateBucketCommand({ Bucket: CONFIGURED })))).code).toBe('BucketAlreadyOwnedByYou');
    const other = await startRecordedGateway({ coffers: [CONFIGURED, 'other-1250000000'], accessKeys: [{ ...READER, grants: [{ coffer: 'other-1250000000', actions: ['*'] }] }] });
    const outsider = clientFor(other, 'us-east-1', READER);
    try {
      expect(await failureOf(outsider.send(new CreateBucketCommand({ Bucket: CONFIGURED })))).toMatchObject({ code: 'AccessDenied', status: 403 });
      // Without coffer classes nothing can be created.
      expect(await failureOf(outsider.send(new CreateBucketCommand({ Bucket: 'new-1250000000' })))).toMatchObject({ code: 'NotImplemented', status: 501 });
    } finally {
      outsider.destroy();
      await other.stop();
    }
  });

  test('refused creates write nothing upstream: a name no class admits (InvalidBucketName), a caller who is no creator (AccessDenied)', async () => {
    const requests = await upstreamDuring(recorded, async () => {
      expect(await failureOf(admin.send(new CreateBucketCommand({ Bucket: 'other-1250000000' })))).toMatchObject({ code: 'InvalidBucketName', status: 400 });
      expect(await failureOf(reader.send(new CreateBucketCommand({ Bucket: 'team-reader-1250000000' })))).toMatchObject({ code: 'AccessDenied', status: 403 });
    });
    expect(requests).toEqual([]);
    expect(await cosListStatus(recorded, 'team-reader-1250000000')).toBe(404);
  });

  test('LocationConstraint: the gateway region is the empty constraint; another region → IllegalLocationConstraintException, explicit us-east-1 → InvalidLocationConstraint, malformed → MalformedXML; nothing created', async () => {
    const Bucket = 'team-located-1250000000';
    const requests = await upstreamDuring(recorded, async () => {
      expect(await failureOf(admin.send(new CreateBucketCommand({ Bucket, CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } })))).toMatchObject({ code: 'IllegalLocationConstraintException', status: 400 });
      expect(await failureOf(admin.send(new CreateBucketCommand({ Bucket, CreateBucketConfiguration: { LocationConstraint: 'us-east-1' as never } })))).toMatchObject({ code: 'InvalidLocationConstraint', status: 400 });
      expect(await signedPut(`/${Bucket}`, Buffer.from('<CreateBucketConfiguration><LocationConstraint>'))).toMatchObject({ status: 400, code: 'MalformedXML' });
    });
    expect(writes(requests)).toEqual([]);
    expect(await cosListStatus(recorded, Bucket)).toBe(404);
    expect(await signedPut(`/${Bucket}`, Buffer.from('<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint></LocationConstraint></CreateBucketConfiguration>'))).toMatchObject({ status: 200 });
    expect(await cosListStatus(recorded, Bucket)).toBe(200);
  });

  test('DeleteBucket: an empty created bucket goes (204; gone on the CDCS side too); a non-empty one is BucketNotEmpty; a configured one and a caller without manage are AccessDenied', async () => {
    const Bucket = 'team-short-1250000000';
    await creator.send(new CreateBucketCommand({ Bucket }));
    expect(await failureOf(reader.send(new DeleteBucketCommand({ Bucket })))).toMatchObject({ code: 'AccessDenied', status: 403 });
    const deleted = await creator.send(new DeleteBucketCommand({ Bucket }));
    expect(deleted.$metadata.httpStatusCode).toBe(204);
    expect((await failureOf(creator.send(new HeadBucketCommand({ Bucket })))).status).toBe(404);
    expect(await cosListStatus(recorded, Bucket)).toBe(404);

    const Full = 'team-full-1250000000';
    await creator.send(new CreateBucketCommand({ Bucket: Full }));
    await creator.send(new PutObjectCommand({ Bucket: Full, Key: 'keep.txt', Body: 'keep' }));
    expect(await failureOf(creator.send(new DeleteBucketCommand({ Bucket: Full })))).toMatchObject({ code: 'BucketNotEmpty', status: 409 });
    expect((await creator.send(new HeadObjectCommand({ Bucket: Full, Key: 'keep.txt' }))).ContentLength).toBe(4);

    expect(await failureOf(admin.send(new DeleteBucketCommand({ Bucket: CONFIGURED })))).toMatchObject({ code: 'AccessDenied', status: 403 });
    expect((await admin.send(new HeadBucketCommand({ Bucket: CONFIGURED }))).BucketRegion).toBe('us-east-1');
  });
});

/** A header-signed PUT with `body` by the admin key (for bodies the SDK would not send): status and S3 error code. */
async function signedPut(path: string, body: Buffer): Promise<{ status: number; code?: string }> {
  const host = `127.0.0.1:${recorded.port}`;
  const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: ADMIN.secretId, secretAccessKey: ADMIN.secretKey }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
  const signed = await signer.sign({ method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', path, headers: { host, 'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'), 'content-length': String(body.length) } });
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: recorded.port, method: 'PUT', path, headers: signed.headers as Record<string, string> }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const code = /<Code>([^<]+)<\/Code>/.exec(Buffer.concat(chunks).toString('utf8'))?.[1];
        resolve({ status: res.statusCode ?? 0, ...(code === undefined ? {} : { code }) });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('one S3 error renderer for every error of an S3 request', () => {
  /** The raw answer (status line, headers, body) to `text` sent on a fresh connection. */
  function raw(text: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    return new Promise((resolve, reject) => {
      // Not half-closed: the server would drop the answer of a request still in the handler; `connection: close` ends it.
      const socket = connect(recorded.port, '127.0.0.1', () => socket.write(text));
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => {
        const answer = Buffer.concat(chunks).toString('utf8');
        const [head = '', body = ''] = answer.split('\r\n\r\n');
        const [statusLine = '', ...lines] = head.split('\r\n');
        const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
        resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
      });
    });
  }

  const s3Shape = (answer: { headers: Record<string, string>; body: string }, code: string, resource: string): void => {
    const requestId = answer.headers['x-amz-request-id'] as string;
    expect(requestId).toMatch(/^[0-9a-f]{32}$/);
    expect(answer.headers['x-amz-id-2']).toMatch(/\S/);
    expect(answer.body).toBe(
      `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code>${/<Message>[^<]*<\/Message>/.exec(answer.body)?.[0] ?? '<Message/>'}<Resource>${resource}</Resource><RequestId>${requestId}</RequestId><HostId>${answer.headers['x-amz-id-2']}</HostId></Error>`,
    );
    expect(answer.headers['x-cos-request-id']).toBeUndefined();
  };

  test("an operation's error: S3's <Error> (Code, Message, Resource, RequestId, HostId) with x-amz-request-id and x-amz-id-2", async () => {
    const host = `127.0.0.1:${recorded.port}`;
    const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: ADMIN.secretId, secretAccessKey: ADMIN.secretKey }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
    const path = `/${CONFIGURED}/missing`;
    const signed = await signer.sign({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', path, headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    const headers = Object.entries(signed.headers as Record<string, string>).map(([name, value]) => `${name}: ${value}\r\n`);
    const answer = await raw(`GET ${path} HTTP/1.1\r\n${headers.join('')}connection: close\r\n\r\n`);
    expect(answer.status).toBe(404);
    s3Shape(answer, 'NoSuchKey', path);
  });

  test("the listener's refusal before the target is parsed (no Host) and an unparsable bucket name: S3's shape too", async () => {
    const authorization = `AWS4-HMAC-SHA256 Credential=${ADMIN.secretId}/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${'0'.repeat(64)}`;
    const noHost = await raw(`GET /${CONFIGURED}/k HTTP/1.1\r\nauthorization: ${authorization}\r\nconnection: close\r\n\r\n`);
    expect(noHost.status).toBe(400);
    s3Shape(noHost, 'InvalidRequest', `/${CONFIGURED}/k`);
    const badName = await raw(`GET /backups/k HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: ${authorization}\r\nconnection: close\r\n\r\n`);
    expect(badName.status).toBe(404);
    s3Shape(badName, 'NoSuchBucket', '/backups/k');
    // A presigned parameter spelled with an escape: the parsed query (decoded) makes it S3, so its error is S3's though the raw text does not say so.
    const escaped = await raw(`GET /${CONFIGURED}/k?X-Amz%2DAlgorithm=AWS4-HMAC-SHA256 HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`);
    expect(escaped.status).toBe(400);
    s3Shape(escaped, 'AuthorizationQueryParametersError', `/${CONFIGURED}/k`);
  });

  test("a CDCS request's errors keep CDCS's shape (TraceId, x-cos-request-id; no x-amz-id-2)", async () => {
    const answer = await raw(`GET /${CONFIGURED}/k HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`);
    expect(answer.status).toBe(401);
    expect(answer.body).toMatch(/<Code>AuthFailed<\/Code>.*<TraceId>/);
    expect(answer.headers['x-cos-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(answer.headers['x-amz-id-2']).toBeUndefined();
  });
});

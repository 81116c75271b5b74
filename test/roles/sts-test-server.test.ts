/** The STS double must be at least as strict as AWS where the gateway depends on it. */
import { Readable } from 'node:stream';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { TestCredentialStore, startStsTestServer, type StsTestServer } from '../support/sts-test-server';

const REGION = 'us-east-1';
const CREDS = { accessKeyId: 'AKIDSTSSTRICT', secretAccessKey: 'sts-strict-secret' };
const ROLE = 'arn:aws:iam::111122223333:role/strict';
let clock: number;
let sts: StsTestServer;
const clients: STSClient[] = [];

beforeEach(async () => {
  clock = Date.now();
  const store = new TestCredentialStore();
  store.addUser(CREDS.accessKeyId, CREDS.secretAccessKey);
  store.addUser('AKIDOUTSIDER', 'outsider-secret', 'outsider');
  sts = await startStsTestServer({
    store,
    region: REGION,
    now: () => clock,
    roles: [{ roleArn: ROLE, maxSessionDurationSeconds: 7200, trustedPrincipals: ['arn:aws:iam::111122223333:user/gateway', ROLE] }],
  });
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await sts.close();
});

function client(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = CREDS): STSClient {
  const c = new STSClient({ region: REGION, endpoint: sts.endpoint, credentials, maxAttempts: 1 });
  clients.push(c);
  return c;
}

async function errorName(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as Error).name;
  }
  return 'no error';
}

it('answers with the AWS AssumeRoleResponse XML shape', async () => {
  const c = client();
  const bodies: string[] = [];
  c.middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      const response = out.response as { body: Readable };
      const chunks: Buffer[] = [];
      for await (const chunk of response.body) chunks.push(Buffer.from(chunk as Buffer));
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      response.body = Readable.from([Buffer.concat(chunks)]);
      return out;
    },
    { step: 'deserialize', priority: 'low' },
  );
  const out = await c.send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'shape', DurationSeconds: 900 }));
  const xml = bodies[0]!;
  expect(xml).toMatch(
    /^<AssumeRoleResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/">\s*<AssumeRoleResult>\s*<AssumedRoleUser>\s*<AssumedRoleId>AROA[A-Z2-7]{17}:shape<\/AssumedRoleId>\s*<Arn>arn:aws:sts::111122223333:assumed-role\/strict\/shape<\/Arn>/,
  );
  expect(xml).toMatch(
    /<Credentials>\s*<AccessKeyId>ASIA[A-Z2-7]{16}<\/AccessKeyId>\s*<SecretAccessKey>[^<]+<\/SecretAccessKey>\s*<SessionToken>[^<]+<\/SessionToken>\s*<Expiration>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/Expiration>\s*<\/Credentials>/,
  );
  expect(xml).toMatch(/<ResponseMetadata>\s*<RequestId>[0-9a-f-]{36}<\/RequestId>\s*<\/ResponseMetadata>\s*<\/AssumeRoleResponse>/);
  expect(out.AssumedRoleUser?.Arn).toBe('arn:aws:sts::111122223333:assumed-role/strict/shape');
  expect(out.Credentials!.Expiration!.getTime()).toBe(Math.floor(clock / 1000) * 1000 + 900_000);
});

it('unsigned request → 403 MissingAuthenticationToken as an XML ErrorResponse', async () => {
  const res = await fetch(sts.endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `Action=AssumeRole&Version=2011-06-15&RoleArn=${encodeURIComponent(ROLE)}&RoleSessionName=x1`,
  });
  expect(res.status).toBe(403);
  expect(await res.text()).toMatch(
    /^<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/">\s*<Error>\s*<Type>Sender<\/Type>\s*<Code>MissingAuthenticationToken<\/Code>\s*<Message>[^<]*<\/Message>\s*<\/Error>\s*<RequestId>[0-9a-f-]{36}<\/RequestId>\s*<\/ErrorResponse>/,
  );
});

it('validates input: session name pattern/length, duration bounds, role maximum', async () => {
  const assume = (input: Partial<{ RoleSessionName: string; DurationSeconds: number }>) => errorName(client().send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'ok', ...input })));
  expect(await assume({ RoleSessionName: 'a' })).toBe('ValidationError');
  expect(await assume({ RoleSessionName: 'has space' })).toBe('ValidationError');
  expect(await assume({ RoleSessionName: 'x'.repeat(65) })).toBe('ValidationError');
  expect(await assume({ DurationSeconds: 899 })).toBe('ValidationError');
  expect(await assume({ DurationSeconds: 43201 })).toBe('ValidationError');
  expect(await assume({ DurationSeconds: 7201 })).toBe('ValidationError');
  expect(await assume({ DurationSeconds: 7200 })).toBe('no error');
  expect(sts.calls.map((c) => c.status)).toEqual([400, 400, 400, 400, 400, 400, 200]);
});

it('enforces the trust policy, and wrong secrets / unknown keys', async () => {
  expect(await errorName(client({ accessKeyId: 'AKIDOUTSIDER', secretAccessKey: 'outsider-secret' }).send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'x1' })))).toBe('AccessDenied');
  expect(await errorName(client({ ...CREDS, secretAccessKey: 'nope' }).send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'x1' })))).toBe('SignatureDoesNotMatch');
  expect(await errorName(client({ accessKeyId: 'AKIDWHO', secretAccessKey: 'x' }).send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'x1' })))).toBe('InvalidClientTokenId');
  expect(sts.calls.map((c) => c.status)).toEqual([403, 403, 403]);
});

it('issued session credentials authenticate (role chaining ≤ 1 h) and expire by the injected clock', async () => {
  const first = await client().send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'first', DurationSeconds: 900 }));
  const session = { accessKeyId: first.Credentials!.AccessKeyId!, secretAccessKey: first.Credentials!.SecretAccessKey!, sessionToken: first.Credentials!.SessionToken! };
  expect(await errorName(client(session).send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'chain', DurationSeconds: 7200 })))).toBe('ValidationError');
  expect(await errorName(client(session).send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'chain', DurationSeconds: 3600 })))).toBe('no error');
  expect(await errorName(client({ ...session, sessionToken: 'forged' }).send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'chain' })))).toBe('InvalidClientTokenId');
  clock += 900_000;
  expect(await errorName(client(session).send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'chain' })))).toBe('ExpiredToken');
});

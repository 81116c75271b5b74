/** The KMS double must be at least as strict as AWS where the gateway depends on it. */
import { DecryptCommand, DescribeKeyCommand, EncryptCommand, GenerateDataKeyCommand, KMSClient, ReEncryptCommand } from '@aws-sdk/client-kms';
import { startKmsTestServer, type KmsTestServer, type TestKmsKey } from '../support/kms-test-server';
import { TestCredentialStore } from '../support/sts-test-server';

const REGION = 'eu-west-1';
const CREDS = { accessKeyId: 'AKIDSTRICT', secretAccessKey: 'strict-secret' };
let kms: KmsTestServer;
let key: TestKmsKey;
let client: KMSClient;

beforeEach(async () => {
  const store = new TestCredentialStore();
  store.addUser(CREDS.accessKeyId, CREDS.secretAccessKey);
  kms = await startKmsTestServer({ store, region: REGION });
  key = kms.createKey({ alias: 'alias/strict' });
  client = new KMSClient({ region: REGION, endpoint: kms.endpoint, credentials: CREDS, maxAttempts: 1 });
});
afterEach(async () => {
  client.destroy();
  await kms.close();
});

async function errorName(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as Error).name;
  }
  return 'no error';
}

async function raw(headers: Record<string, string>, body: string): Promise<{ status: number; json: { __type?: string } }> {
  const res = await fetch(kms.endpoint, { method: 'POST', headers, body });
  return { status: res.status, json: (await res.json()) as { __type?: string } };
}

it('rejects unsigned requests, wrong content type and unknown operations with AWS error shapes', async () => {
  const target = { 'x-amz-target': 'TrentService.GenerateDataKey' };
  expect(await raw({ ...target, 'content-type': 'application/x-amz-json-1.1' }, '{}')).toEqual({ status: 400, json: { __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' } });
  expect((await raw({ ...target, 'content-type': 'application/json' }, '{}')).json.__type).toBe('SerializationException');
  expect((await raw({ 'x-amz-target': 'TrentService.CreateKey', 'content-type': 'application/x-amz-json-1.1' }, '{}')).json.__type).toBe('UnknownOperationException');
  const forged = await raw(
    {
      ...target,
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-date': '20260101T000000Z',
      authorization: `AWS4-HMAC-SHA256 Credential=${CREDS.accessKeyId}/20260101/${REGION}/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`,
    },
    '{}',
  );
  expect(forged.status).toBe(400);
  expect(forged.json.__type).toBe('InvalidSignatureException');
});

it('detects a body changed after signing', async () => {
  client.middlewareStack.add(
    (next) => async (args) => {
      // The SDK hands a Uint8Array body; view its bytes without touching its string-compat methods.
      const request = args.request as { body: Uint8Array | string };
      const bytes = request.body as Uint8Array;
      request.body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').replace('AES_256', 'AES_128');
      return next(args);
    },
    { step: 'deserialize', priority: 'low' },
  );
  expect(await errorName(client.send(new GenerateDataKeyCommand({ KeyId: key.arn, KeySpec: 'AES_256' })))).toBe('InvalidSignatureException');
});

it('checks the credential scope region', async () => {
  const other = new KMSClient({ region: 'us-west-2', endpoint: kms.endpoint, credentials: CREDS, maxAttempts: 1 });
  try {
    expect(await errorName(other.send(new DescribeKeyCommand({ KeyId: key.arn })))).toBe('InvalidSignatureException');
  } finally {
    other.destroy();
  }
});

it('validates GenerateDataKey input like KMS', async () => {
  const gen = (input: Record<string, unknown>) => client.send(new GenerateDataKeyCommand({ KeyId: key.arn, ...input }));
  expect(await errorName(gen({}))).toBe('ValidationException');
  expect(await errorName(gen({ KeySpec: 'AES_256', NumberOfBytes: 32 }))).toBe('ValidationException');
  expect(await errorName(gen({ NumberOfBytes: 2000 }))).toBe('ValidationException');
  expect(await errorName(gen({ NumberOfBytes: 0 }))).toBe('ValidationException');
  expect(await errorName(client.send(new GenerateDataKeyCommand({ KeySpec: 'AES_256' } as never)))).toBe('ValidationException');
  expect((await gen({ KeySpec: 'AES_128' })).Plaintext).toHaveLength(16);
  expect((await gen({ NumberOfBytes: 64 })).Plaintext).toHaveLength(64);
  expect(await errorName(client.send(new GenerateDataKeyCommand({ KeyId: 'not-a-key', KeySpec: 'AES_256' })))).toBe('NotFoundException');
  const signing = kms.createKey({ keyUsage: 'SIGN_VERIFY' });
  expect(await errorName(client.send(new GenerateDataKeyCommand({ KeyId: signing.arn, KeySpec: 'AES_256' })))).toBe('InvalidKeyUsageException');
});

it('binds ciphertext to its key and exact context; Encrypt/ReEncrypt/DescribeKey work', async () => {
  const context = { coffer: 'c', key: 'k' };
  const sealed = await client.send(new EncryptCommand({ KeyId: 'alias/strict', Plaintext: Buffer.from('hello'), EncryptionContext: context }));
  expect(sealed.KeyId).toBe(key.arn);
  const blob = sealed.CiphertextBlob!;
  expect(Buffer.from((await client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context }))).Plaintext!).toString()).toBe('hello');
  expect(await errorName(client.send(new DecryptCommand({ CiphertextBlob: blob })))).toBe('InvalidCiphertextException');
  expect(await errorName(client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: { ...context, key: 'k2' } })))).toBe('InvalidCiphertextException');
  const other = kms.createKey();
  expect(await errorName(client.send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context, KeyId: other.arn })))).toBe('IncorrectKeyException');
  const tampered = Buffer.from(blob);
  tampered[tampered.length - 1]! ^= 1;
  expect(await errorName(client.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: context })))).toBe('InvalidCiphertextException');

  const moved = await client.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceEncryptionContext: context, DestinationKeyId: other.arn, DestinationEncryptionContext: { v: '2' } }));
  expect(moved.SourceKeyId).toBe(key.arn);
  expect(moved.KeyId).toBe(other.arn);
  const back = await client.send(new DecryptCommand({ CiphertextBlob: moved.CiphertextBlob!, EncryptionContext: { v: '2' }, KeyId: other.arn }));
  expect(Buffer.from(back.Plaintext!).toString()).toBe('hello');

  const described = await client.send(new DescribeKeyCommand({ KeyId: 'alias/strict' }));
  expect(described.KeyMetadata).toMatchObject({ Arn: key.arn, KeyId: key.keyId, Enabled: true, KeyState: 'Enabled', KeySpec: 'SYMMETRIC_DEFAULT' });
  expect(described.KeyMetadata!.CreationDate).toBeInstanceOf(Date);
});

it('disabled keys cannot decrypt either', async () => {
  const sealed = await client.send(new GenerateDataKeyCommand({ KeyId: key.arn, KeySpec: 'AES_256' }));
  kms.setKeyState(key.keyId, 'Disabled');
  expect(await errorName(client.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob! })))).toBe('DisabledException');
});

import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GatewayError } from '../../src/errors/gateway-error';
import { canonicalContext, createLocalKeyring, keyBlobAad, parseKeyBlob, unwrapDataKey, WRAP_BLOCK, wrapDataKey } from '../../src/keys/local-keyring';
import vectorFile from './vectors/local-keyring-cgk1.json';

interface Vector {
  name: string;
  masterKeyHex: string;
  keyId: string;
  nonceHex: string;
  dataKeyHex: string;
  context: Record<string, string>;
  canonicalContextHex: string;
  aadHex: string;
  wrappedHex: string;
}
const vectors: Vector[] = vectorFile.vectors as Vector[];
const hex = (s: string): Buffer => Buffer.from(s, 'hex');

async function expectKmsFailed(promise: Promise<unknown> | (() => unknown), reason: string): Promise<GatewayError> {
  let caught: unknown;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(GatewayError);
  const error = caught as GatewayError;
  expect(error.code).toBe('KMSFailed');
  expect(error.status).toBe(409);
  expect(error.reason).toBe(reason);
  return error;
}

describe('CGK1 blob format (vectors generated independently in Python)', () => {
  it('has at least one vector whose UTF-8 key order differs from JS string order', () => {
    const tricky = vectors.find((v) => v.name.includes('utf-8 order'));
    expect(tricky).toBeDefined();
    const jsOrder = Object.keys(tricky!.context).sort();
    const utf8Order = Object.keys(tricky!.context).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(jsOrder).not.toEqual(utf8Order);
  });

  it.each(vectors.map((v) => [v.name, v] as const))('%s: canonical context, AAD and wrapped bytes match exactly', (_name, v) => {
    expect(canonicalContext(v.context).toString('hex')).toBe(v.canonicalContextHex);
    expect(keyBlobAad(v.keyId, v.context).toString('hex')).toBe(v.aadHex);
    const wrapped = wrapDataKey({ masterKey: hex(v.masterKeyHex), keyId: v.keyId, dataKey: hex(v.dataKeyHex), context: v.context, nonce: hex(v.nonceHex) });
    expect(wrapped.toString('hex')).toBe(v.wrappedHex);
  });

  it.each(vectors.map((v) => [v.name, v] as const))('%s: unwraps to the data key', (_name, v) => {
    const plaintext = unwrapDataKey({ masterKey: hex(v.masterKeyHex), wrapped: hex(v.wrappedHex), context: { ...v.context } });
    expect(plaintext.toString('hex')).toBe(v.dataKeyHex);
  });

  it('lays out header, nonce, encrypted key and tag at the documented offsets', () => {
    const v = vectors[1]!;
    const wrapped = hex(v.wrappedHex);
    expect(wrapped.subarray(0, 4).toString('hex')).toBe('43474b31');
    expect(wrapped[4]).toBe(Buffer.byteLength(v.keyId));
    expect(wrapped.length).toBe(4 + 1 + Buffer.byteLength(v.keyId) + 12 + 32 + 16);
    const parsed = parseKeyBlob(wrapped);
    expect(parsed.keyId).toBe(v.keyId);
    expect(parsed.nonce.toString('hex')).toBe(v.nonceHex);
  });

  it('context key order in the object does not matter', () => {
    const v = vectors[1]!;
    const reversed = Object.fromEntries(Object.entries(v.context).reverse());
    expect(unwrapDataKey({ masterKey: hex(v.masterKeyHex), wrapped: hex(v.wrappedHex), context: reversed }).toString('hex')).toBe(v.dataKeyHex);
  });

  it('uses a fresh random nonce when none is injected', () => {
    const v = vectors[0]!;
    const input = { masterKey: hex(v.masterKeyHex), keyId: v.keyId, dataKey: hex(v.dataKeyHex), context: {} };
    const a = parseKeyBlob(wrapDataKey(input));
    const b = parseKeyBlob(wrapDataKey(input));
    expect(a.nonce.equals(b.nonce)).toBe(false);
  });
});

describe('canonical context encoding', () => {
  it('is injective across field boundaries', () => {
    const a = canonicalContext({ ab: 'c' });
    const b = canonicalContext({ a: 'bc' });
    const c = canonicalContext({ a: 'b', c: '' });
    expect(a.equals(b)).toBe(false);
    expect(a.equals(c)).toBe(false);
    expect(b.equals(c)).toBe(false);
  });

  it('rejects lone surrogates (they would collide with U+FFFD)', async () => {
    await expectKmsFailed(() => canonicalContext({ k: '\uD800' }), 'invalid-context');
    await expectKmsFailed(() => canonicalContext({ '\uDC00': 'v' }), 'invalid-context');
    expect(canonicalContext({ k: '\uFFFD' }).length).toBe(2 + 1 + 2 + 3);
  });

  it('rejects fields longer than a u16 length can express', async () => {
    await expectKmsFailed(() => canonicalContext({ k: 'x'.repeat(65536) }), 'invalid-context');
    expect(canonicalContext({ k: 'x'.repeat(65535) }).length).toBe(2 + 1 + 2 + 65535);
  });
});

describe('unwrap failures', () => {
  const v = vectors[1]!;
  const master = hex(v.masterKeyHex);
  const wrapped = hex(v.wrappedHex);

  it('wrong context → invalid-ciphertext', async () => {
    await expectKmsFailed(() => unwrapDataKey({ masterKey: master, wrapped, context: { ...v.context, coffer: 'other' } }), 'invalid-ciphertext');
    await expectKmsFailed(() => unwrapDataKey({ masterKey: master, wrapped, context: {} }), 'invalid-ciphertext');
    await expectKmsFailed(() => unwrapDataKey({ masterKey: master, wrapped, context: { ...v.context, extra: '' } }), 'invalid-ciphertext');
  });

  it('wrong master key → invalid-ciphertext', async () => {
    const other = Buffer.from(master);
    other[31] = (other[31] ?? 0) ^ 1;
    await expectKmsFailed(() => unwrapDataKey({ masterKey: other, wrapped, context: v.context }), 'invalid-ciphertext');
  });

  it('every single-bit flip anywhere in the blob is rejected', async () => {
    for (let byte = 0; byte < wrapped.length; byte++) {
      for (const bit of [0, 7]) {
        const tampered = Buffer.from(wrapped);
        tampered[byte] = (tampered[byte] ?? 0) ^ (1 << bit);
        let caught: unknown;
        try {
          unwrapDataKey({ masterKey: master, wrapped: tampered, context: v.context });
        } catch (error) {
          caught = error;
        }
        expect(caught).toBeInstanceOf(GatewayError);
        expect((caught as GatewayError).reason).toBe('invalid-ciphertext');
      }
    }
  });

  it('truncated, extended, empty and relabelled blobs are rejected', async () => {
    await expectKmsFailed(() => unwrapDataKey({ masterKey: master, wrapped: wrapped.subarray(0, wrapped.length - 1), context: v.context }), 'invalid-ciphertext');
    await expectKmsFailed(() => unwrapDataKey({ masterKey: master, wrapped: Buffer.concat([wrapped, Buffer.of(0)]), context: v.context }), 'invalid-ciphertext');
    await expectKmsFailed(() => unwrapDataKey({ masterKey: master, wrapped: Buffer.alloc(0), context: v.context }), 'invalid-ciphertext');
    // Same length key id, different name: structurally valid, but the header is authenticated.
    const relabelled = Buffer.from(wrapped);
    relabelled.write('X', 5, 'ascii');
    await expectKmsFailed(() => unwrapDataKey({ masterKey: master, wrapped: relabelled, context: v.context }), 'invalid-ciphertext');
    // Key id with a byte outside [A-Za-z0-9._-] (path separator) is refused before any file lookup.
    const slash = Buffer.from(wrapped);
    slash.write('/', 5, 'ascii');
    await expectKmsFailed(() => parseKeyBlob(slash), 'invalid-ciphertext');
  });
});

describe('local keyring provider (files)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'cg-keyring-')), 'keys');
  });
  afterEach(async () => {
    await fs.rm(path.dirname(dir), { recursive: true, force: true });
  });

  it('counts wraps per master key in <keyId>.wraps (blocks reserved ahead, shared by instances), refuses at the limit, and a new key id rotates', async () => {
    const a = createLocalKeyring({ directory: dir, keyId: 'main', create: true, wrapLimit: 3 * WRAP_BLOCK });
    const b = createLocalKeyring({ directory: dir, keyId: 'main', create: true, wrapLimit: 3 * WRAP_BLOCK });
    expect(await a.wrapCount('main')).toBe(0);
    await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).generateDataKey({ coffer: 'c' })));
    // Each instance reserved one block before its first wrap: the count is an upper bound, never low.
    expect(await a.wrapCount('main')).toBe(2 * WRAP_BLOCK);
    expect((await fs.stat(path.join(dir, 'main.wraps'))).mode & 0o777).toBe(0o600);
    // Use up a's block, then one more reservation fits (3 blocks), then the limit refuses.
    for (let i = 0; i < WRAP_BLOCK - 5; i += 1) await a.generateDataKey({ coffer: 'c' });
    await a.generateDataKey({ coffer: 'c' });
    expect(await a.wrapCount('main')).toBe(3 * WRAP_BLOCK);
    const c = createLocalKeyring({ directory: dir, keyId: 'main', wrapLimit: 3 * WRAP_BLOCK });
    await expectKmsFailed(c.generateDataKey({ coffer: 'c' }), 'wrap-limit');
    // Rotation: a new key id wraps again; the old key still unwraps what it sealed.
    const old = await b.generateDataKey({ coffer: 'c' });
    const rotated = createLocalKeyring({ directory: dir, keyId: 'main-2', create: true, wrapLimit: 3 * WRAP_BLOCK });
    const fresh = await rotated.generateDataKey({ coffer: 'c' });
    expect(fresh.keyId).toBe('main-2');
    expect((await rotated.decryptDataKey(old.wrapped, { coffer: 'c' }, 'main')).equals(old.plaintext)).toBe(true);
    expect(await rotated.wrapCount('main-2')).toBe(WRAP_BLOCK);
  });

  it('creates the directory 0700 and the key file 0600 with 32 base64 bytes on first use', async () => {
    const keyring = createLocalKeyring({ directory: dir, keyId: 'main', create: true });
    const dataKey = await keyring.generateDataKey({ coffer: 'c1' });
    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
    const file = path.join(dir, 'main.key');
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect(Buffer.from((await fs.readFile(file, 'utf8')).trim(), 'base64')).toHaveLength(32);
    expect((await fs.readdir(dir)).sort()).toEqual(['main.key', 'main.wraps']); // no temp files left behind
    expect(dataKey.plaintext).toHaveLength(32);
    expect(dataKey.keyId).toBe('main');
    expect(parseKeyBlob(dataKey.wrapped).keyId).toBe('main');
  });

  it('round-trips, and a second keyring instance on the same directory unwraps (key persisted)', async () => {
    const a = createLocalKeyring({ directory: dir, keyId: 'main', create: true });
    const dataKey = await a.generateDataKey({ coffer: 'c1', key: 'k' });
    const b = createLocalKeyring({ directory: dir, keyId: 'main' });
    expect((await b.decryptDataKey(dataKey.wrapped, { key: 'k', coffer: 'c1' })).equals(dataKey.plaintext)).toBe(true);
    await expectKmsFailed(b.decryptDataKey(dataKey.wrapped, { coffer: 'c2', key: 'k' }), 'invalid-ciphertext');
  });

  it('concurrent first uses (two instances, as two processes would) agree on exactly one key', async () => {
    const a = createLocalKeyring({ directory: dir, keyId: 'main', create: true });
    const b = createLocalKeyring({ directory: dir, keyId: 'main', create: true });
    const keys = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).generateDataKey({})));
    const reader = createLocalKeyring({ directory: dir, keyId: 'main' });
    for (const k of keys) expect((await reader.decryptDataKey(k.wrapped, {})).equals(k.plaintext)).toBe(true);
    expect((await fs.readdir(dir)).sort()).toEqual(['main.key', 'main.wraps']);
  });

  it('without create, a missing current key is key-not-found', async () => {
    const keyring = createLocalKeyring({ directory: dir, keyId: 'main' });
    await expectKmsFailed(keyring.generateDataKey({}), 'key-not-found');
  });

  it('unknown key id in a blob → key-not-found, and decrypt never creates it', async () => {
    const writer = createLocalKeyring({ directory: dir, keyId: 'old', create: true });
    const dataKey = await writer.generateDataKey({});
    await fs.rm(path.join(dir, 'old.key'));
    const reader = createLocalKeyring({ directory: dir, keyId: 'new', create: true });
    await expectKmsFailed(reader.decryptDataKey(dataKey.wrapped, {}), 'key-not-found');
    expect(await fs.readdir(dir)).toEqual(['old.wraps']); // the old key's wrap count stays; no key file was created
  });

  it('keeps unwrapping under an older key id after rotation to a new one', async () => {
    const v1 = createLocalKeyring({ directory: dir, keyId: 'v1', create: true });
    const old = await v1.generateDataKey({ c: '1' });
    const v2 = createLocalKeyring({ directory: dir, keyId: 'v2', create: true });
    const fresh = await v2.generateDataKey({ c: '1' });
    expect(parseKeyBlob(fresh.wrapped).keyId).toBe('v2');
    expect((await v2.decryptDataKey(old.wrapped, { c: '1' })).equals(old.plaintext)).toBe(true);
  });

  it("decrypt checks the envelope's key id against the blob (incorrect-key), and rewraps to another key id", async () => {
    const v1 = createLocalKeyring({ directory: dir, keyId: 'v1', create: true });
    const dataKey = await v1.generateDataKey({ c: '1' });
    await expectKmsFailed(v1.decryptDataKey(dataKey.wrapped, { c: '1' }, 'v2'), 'incorrect-key');
    const rewrapped = await v1.rewrapDataKey(dataKey.wrapped, { c: '1' }, 'v1', 'v2');
    expect(rewrapped.keyId).toBe('v2');
    expect(parseKeyBlob(rewrapped.wrapped).keyId).toBe('v2');
    // A keyring still configured with the old id reads it (the blob names its key).
    const reader = createLocalKeyring({ directory: dir, keyId: 'v1' });
    expect((await reader.decryptDataKey(rewrapped.wrapped, { c: '1' }, 'v2')).equals(dataKey.plaintext)).toBe(true);
    await expectKmsFailed(reader.decryptDataKey(rewrapped.wrapped, { c: '2' }, 'v2'), 'invalid-ciphertext');
    // The source named must be the blob's key; without `create` the target must exist.
    await expectKmsFailed(v1.rewrapDataKey(dataKey.wrapped, { c: '1' }, 'v2', 'v2'), 'incorrect-key');
    await expectKmsFailed(reader.rewrapDataKey(dataKey.wrapped, { c: '1' }, 'v1', 'v3'), 'key-not-found');
    await expectKmsFailed(reader.resolveKeyId('../x'), 'invalid-key-id');
    expect(await reader.resolveKeyId('v2')).toBe('v2');
  });

  it('refuses key files readable by group/others, and malformed key material', async () => {
    await fs.mkdir(dir, { mode: 0o700 });
    await fs.writeFile(path.join(dir, 'loose.key'), `${Buffer.alloc(32, 1).toString('base64')}\n`, { mode: 0o644 });
    await fs.chmod(path.join(dir, 'loose.key'), 0o644);
    await expectKmsFailed(createLocalKeyring({ directory: dir, keyId: 'loose' }).generateDataKey({}), 'insecure-key-file');
    await fs.writeFile(path.join(dir, 'short.key'), Buffer.alloc(16, 1).toString('base64'), { mode: 0o600 });
    await expectKmsFailed(createLocalKeyring({ directory: dir, keyId: 'short' }).generateDataKey({}), 'invalid-key-material');
  });

  it('rejects invalid key ids at construction', () => {
    expect(() => createLocalKeyring({ directory: dir, keyId: '../etc' })).toThrow(GatewayError);
    expect(() => createLocalKeyring({ directory: dir, keyId: '' })).toThrow(GatewayError);
    expect(() => createLocalKeyring({ directory: dir, keyId: 'x'.repeat(256) })).toThrow(GatewayError);
    expect(() => createLocalKeyring({ directory: dir, keyId: 'x'.repeat(255) })).not.toThrow();
  });

  it('never puts key material into error messages', async () => {
    const keyring = createLocalKeyring({ directory: dir, keyId: 'main', create: true });
    const dataKey = await keyring.generateDataKey({ a: 'b' });
    const master = (await fs.readFile(path.join(dir, 'main.key'), 'utf8')).trim();
    const error = await expectKmsFailed(keyring.decryptDataKey(dataKey.wrapped, { a: 'c' }), 'invalid-ciphertext');
    for (const secret of [master, dataKey.plaintext.toString('base64'), dataKey.plaintext.toString('hex')]) {
      expect(error.message).not.toContain(secret);
      expect(JSON.stringify(error)).not.toContain(secret);
    }
  });
});

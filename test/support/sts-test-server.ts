/**
 * A strict in-process STS (AWS Query protocol, AssumeRole only) on 127.0.0.1, for exercising the real
 * @aws-sdk/client-sts against it. Strict on purpose: a double more lenient than AWS hides bugs.
 *
 * This module also holds what the KMS test server shares with it (kept here because the brief limits us
 * to two support files; a separate `aws-test-auth.ts` would be the natural home):
 *  - TestCredentialStore: the "IAM" of the test world. Long-term users are added by tests, session
 *    credentials are issued by AssumeRole; the KMS server authenticates against the same store, so
 *    credentials issued here work (and expire) there.
 *  - verifySigV4: an independent SigV4 verifier (node:crypto only, not the SDK's signer), so a signing
 *    bug in the client path cannot be mirrored by the server.
 *  - FailureScript and seededRandom for scripted throttling/latency/resets.
 *
 * Clocks: credential expiry uses the injected `now` (tests move it); the SigV4 request-time check uses the
 * real clock, because the SDK signs with the real clock.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sha256 } from './digests';

// ---------------------------------------------------------------------------------------------------
// Shared: identities

export const TEST_ACCOUNT_ID = '111122223333';

export interface TestIdentity {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Present for temporary credentials; requests must carry it as X-Amz-Security-Token. */
  readonly sessionToken?: string;
  readonly expiration?: Date;
  /** IAM user ARN, or assumed-role session ARN (arn:aws:sts::acct:assumed-role/name/session). */
  readonly principalArn: string;
  /** For assumed-role sessions: the role ARN (what resource policies name). */
  readonly roleArn?: string;
}

export class TestCredentialStore {
  private readonly identities = new Map<string, TestIdentity>();

  addUser(accessKeyId: string, secretAccessKey: string, userName = 'gateway'): TestIdentity {
    const identity: TestIdentity = { accessKeyId, secretAccessKey, principalArn: `arn:aws:iam::${TEST_ACCOUNT_ID}:user/${userName}` };
    this.identities.set(accessKeyId, identity);
    return identity;
  }

  add(identity: TestIdentity): void {
    this.identities.set(identity.accessKeyId, identity);
  }

  get(accessKeyId: string): TestIdentity | undefined {
    return this.identities.get(accessKeyId);
  }

  revoke(accessKeyId: string): void {
    this.identities.delete(accessKeyId);
  }

  /** The identity whose principal (or role) may act on something restricted to `allowed`. */
  static principalOf(identity: TestIdentity): string {
    return identity.roleArn ?? identity.principalArn;
  }
}

// ---------------------------------------------------------------------------------------------------
// Shared: SigV4 verification

export type SigV4Failure =
  | 'missing' // no Authorization header
  | 'incomplete' // malformed Authorization / missing X-Amz-Date / host not signed
  | 'unknown-key' // access key not in the store
  | 'bad-token' // session token missing or wrong
  | 'expired-token'
  | 'scope' // wrong region/service/date in the credential scope
  | 'skew' // request time more than 15 minutes away from the server's real clock
  | 'payload' // x-amz-content-sha256 does not match the body
  | 'signature';

export type SigV4Result = { readonly ok: true; readonly identity: TestIdentity } | { readonly ok: false; readonly failure: SigV4Failure; readonly message: string };

export interface SigV4Expectation {
  readonly store: TestCredentialStore;
  readonly region: string;
  readonly service: string;
  /** Clock for credential expiry (injected in tests). */
  readonly now: () => number;
  /**
   * Accept `x-amz-content-sha256: UNSIGNED-PAYLOAD` (S3 does; the signature then covers that literal
   * instead of the body's hash). Default false: the AWS JSON/query services (KMS, STS) require the hash.
   */
  readonly allowUnsignedPayload?: boolean;
}

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 encoding as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
function sigv4Encode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  const pairs = rawQuery.split('&').map((part) => {
    const eq = part.indexOf('=');
    const name = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1));
    return [sigv4Encode(name), sigv4Encode(value)] as const;
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

export function verifySigV4(req: http.IncomingMessage, body: Buffer, expect: SigV4Expectation): SigV4Result {
  const fail = (failure: SigV4Failure, message: string): SigV4Result => ({ ok: false, failure, message });
  const authorization = req.headers.authorization;
  if (authorization === undefined) return fail('missing', 'Missing Authentication Token');
  const m = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(authorization);
  if (!m) return fail('incomplete', "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.");
  const [, credential = '', signedHeaderList = '', signature = ''] = m;
  const scopeParts = credential.split('/');
  if (scopeParts.length !== 5 || scopeParts[4] !== 'aws4_request') return fail('incomplete', 'Credential scope is malformed.');
  const [accessKeyId = '', scopeDate = '', scopeRegion = '', scopeService = ''] = scopeParts;
  const amzDate = req.headers['x-amz-date'];
  if (typeof amzDate !== 'string') return fail('incomplete', "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  const requestTime = parseAmzDate(amzDate);
  if (requestTime === undefined) return fail('incomplete', 'X-Amz-Date is malformed.');

  const signedHeaders = signedHeaderList.split(';');
  const sortedUnique = [...new Set(signedHeaders)].sort();
  if (signedHeaders.join(';') !== sortedUnique.join(';') || signedHeaders.some((h) => h !== h.toLowerCase() || h === '')) {
    return fail('incomplete', 'SignedHeaders must be lower-case, sorted and unique.');
  }
  if (!signedHeaders.includes('host') || !signedHeaders.includes('x-amz-date')) {
    return fail('incomplete', "'Host' and 'X-Amz-Date' must be signed.");
  }

  const identity = expect.store.get(accessKeyId);
  if (!identity) return fail('unknown-key', 'The security token included in the request is invalid.');
  const token = req.headers['x-amz-security-token'];
  if (identity.sessionToken !== undefined || token !== undefined) {
    const given = Buffer.from(typeof token === 'string' ? token : '');
    const wanted = Buffer.from(identity.sessionToken ?? '');
    if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
      return fail('bad-token', 'The security token included in the request is invalid.');
    }
  }
  if (scopeDate !== amzDate.slice(0, 8)) return fail('scope', `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scopeDate}' != '${amzDate.slice(0, 8)}'.`);
  if (scopeRegion !== expect.region) return fail('scope', `Credential should be scoped to a valid region, not '${scopeRegion}'.`);
  if (scopeService !== expect.service) return fail('scope', `Credential should be scoped to correct service: '${expect.service}'.`);
  if (Math.abs(Date.now() - requestTime) > 15 * 60_000) return fail('skew', 'Signature expired: the request time is more than 15 minutes from the server time.');

  const payloadHash = sha256(body);
  const declared = req.headers['x-amz-content-sha256'];
  const unsigned = expect.allowUnsignedPayload === true && declared === 'UNSIGNED-PAYLOAD';
  if (declared !== undefined && declared !== payloadHash && !unsigned) return fail('payload', 'The provided x-amz-content-sha256 header does not match what was computed.');

  // Canonical headers from rawHeaders, so repeated headers keep their order and are joined with ','.
  const values = new Map<string, string[]>();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] ?? '').toLowerCase();
    const value = (req.rawHeaders[i + 1] ?? '').trim().replace(/\s+/g, ' ');
    const list = values.get(name);
    if (list) list.push(value);
    else values.set(name, [value]);
  }
  const canonicalHeaderLines: string[] = [];
  for (const name of signedHeaders) {
    const list = values.get(name);
    if (!list) return fail('signature', `Header '${name}' is signed but absent.`);
    canonicalHeaderLines.push(`${name}:${list.join(',')}\n`);
  }
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  const canonicalUri =
    rawPath
      .split('/')
      .map((segment) => sigv4Encode(decodeURIComponent(segment)))
      .join('/') || '/';
  const canonicalRequest = [req.method ?? '', canonicalUri, canonicalQuery(rawQuery), canonicalHeaderLines.join(''), signedHeaderList, declared ?? payloadHash].join('\n');
  const scope = `${scopeDate}/${scopeRegion}/${scopeService}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${identity.secretAccessKey}`, scopeDate), scopeRegion), scopeService), 'aws4_request');
  const expected = createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest();
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return fail('signature', 'The request signature we calculated does not match the signature you provided.');
  }
  if (identity.expiration !== undefined && expect.now() >= identity.expiration.getTime()) {
    return fail('expired-token', 'The security token included in the request is expired');
  }
  return { ok: true, identity };
}

// ---------------------------------------------------------------------------------------------------
// Shared: scripted failures

/** Deterministic PRNG (mulberry32) so "30 % throttling" tests are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `ConnectionReset` destroys the socket without answering (a network failure for the client). */
export const CONNECTION_RESET = 'ConnectionReset';

export interface FailureRule {
  /** Service error code to answer with, or CONNECTION_RESET; omit for latency only. */
  readonly error?: string;
  readonly message?: string;
  /** Operation name (e.g. 'GenerateDataKey', 'AssumeRole'); omit for all. */
  readonly operation?: string;
  /** Applies to the next N matching requests (that the probability lets through); omit for unlimited. */
  readonly times?: number;
  /** Chance per matching request, drawn from the server's seeded PRNG; omit for always. */
  readonly probability?: number;
  readonly latencyMs?: number;
}

export interface ScriptedOutcome {
  readonly error?: string;
  readonly message?: string;
  readonly latencyMs: number;
}

export class FailureScript {
  private rules: Array<{ rule: FailureRule; remaining: number }> = [];

  constructor(private readonly random: () => number) {}

  add(rule: FailureRule): void {
    this.rules.push({ rule, remaining: rule.times ?? Number.POSITIVE_INFINITY });
  }

  clear(): void {
    this.rules = [];
  }

  /** Decides what happens to one request; consumes `times` of the rules that fire. */
  next(operation: string): ScriptedOutcome {
    let latencyMs = 0;
    let error: string | undefined;
    let message: string | undefined;
    for (const slot of this.rules) {
      const { rule } = slot;
      if (rule.operation !== undefined && rule.operation !== operation) continue;
      if (slot.remaining <= 0) continue;
      if (rule.probability !== undefined && this.random() >= rule.probability) continue;
      if (rule.error !== undefined && error !== undefined) continue; // first error wins; keep its budget
      slot.remaining--;
      latencyMs += rule.latencyMs ?? 0;
      if (rule.error !== undefined) {
        error = rule.error;
        message = rule.message;
      }
    }
    this.rules = this.rules.filter((slot) => slot.remaining > 0);
    return { latencyMs, ...(error === undefined ? {} : { error }), ...(message === undefined ? {} : { message }) };
  }
}

/** Common HTTP plumbing of both servers: body collection with a cap, socket tracking, clean close. */
export class TestHttpServer {
  readonly server: http.Server;
  private readonly sockets = new Set<import('node:net').Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(handler: (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void | Promise<void>) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > 1024 * 1024) tooLarge = true;
        else chunks.push(chunk);
      });
      req.on('end', () => {
        if (tooLarge) {
          res.writeHead(413).end();
          return;
        }
        Promise.resolve(handler(req, Buffer.concat(chunks), res)).catch((error: unknown) => {
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(error));
        });
      });
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  delay(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

// ---------------------------------------------------------------------------------------------------
// STS

export interface StsTestRole {
  readonly roleArn: string;
  /** When set, AssumeRole must carry exactly this ExternalId (trust-policy condition sts:ExternalId). */
  readonly externalId?: string;
  /** Role MaxSessionDuration, 3600..43200; default 3600. */
  readonly maxSessionDurationSeconds?: number;
  /** Principals (user ARNs or role ARNs) the trust policy allows; default: any authenticated identity. */
  readonly trustedPrincipals?: readonly string[];
}

export interface StsCall {
  readonly action: string;
  readonly status: number;
  readonly errorCode?: string;
  readonly accessKeyId?: string;
  readonly roleArn?: string;
  readonly roleSessionName?: string;
  readonly durationSeconds?: number;
  readonly externalId?: string;
}

export interface IssuedCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
  readonly roleArn: string;
  readonly roleSessionName: string;
}

export interface StsTestServerOptions {
  readonly store?: TestCredentialStore;
  /** Region the SDK signs for; default us-east-1. */
  readonly region?: string;
  /** Clock for issued expirations and expiry checks; default Date.now. */
  readonly now?: () => number;
  /** Seed for scripted probabilistic failures. */
  readonly seed?: number;
  readonly roles?: readonly StsTestRole[];
}

const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';

/** Status and fault type AWS uses for each STS error code. */
const STS_ERRORS: Readonly<Record<string, { status: number; type: 'Sender' | 'Receiver' }>> = {
  AccessDenied: { status: 403, type: 'Sender' },
  ValidationError: { status: 400, type: 'Sender' },
  Throttling: { status: 400, type: 'Sender' },
  ExpiredToken: { status: 403, type: 'Sender' },
  InvalidClientTokenId: { status: 403, type: 'Sender' },
  SignatureDoesNotMatch: { status: 403, type: 'Sender' },
  IncompleteSignature: { status: 400, type: 'Sender' },
  MissingAuthenticationToken: { status: 403, type: 'Sender' },
  InvalidAction: { status: 400, type: 'Sender' },
  MissingAction: { status: 400, type: 'Sender' },
  MalformedPolicyDocument: { status: 400, type: 'Sender' },
  PackedPolicyTooLarge: { status: 400, type: 'Sender' },
  RegionDisabledException: { status: 403, type: 'Sender' },
  InternalFailure: { status: 500, type: 'Receiver' },
  ServiceUnavailable: { status: 503, type: 'Receiver' },
};

const xmlEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

const ROLE_ARN_PATTERN = /^arn:aws:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]{1,64})$/;
const SESSION_NAME_PATTERN = /^[\w+=,.@-]*$/;
const EXTERNAL_ID_PATTERN = /^[\w+=,.@:/-]*$/;

function randomFrom(alphabet: string, length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return out;
}

export class StsTestServer {
  readonly store: TestCredentialStore;
  readonly region: string;
  readonly calls: StsCall[] = [];
  readonly issued: IssuedCredentials[] = [];
  readonly script: FailureScript;
  endpoint = '';
  private readonly roles = new Map<string, StsTestRole>();
  private readonly now: () => number;
  private readonly http: TestHttpServer;

  constructor(options: StsTestServerOptions = {}) {
    this.store = options.store ?? new TestCredentialStore();
    this.region = options.region ?? 'us-east-1';
    this.now = options.now ?? Date.now;
    this.script = new FailureScript(seededRandom(options.seed ?? 1));
    for (const role of options.roles ?? []) this.addRole(role);
    this.http = new TestHttpServer((req, body, res) => this.handle(req, body, res));
  }

  async start(): Promise<this> {
    this.endpoint = await this.http.listen();
    return this;
  }

  close(): Promise<void> {
    return this.http.close();
  }

  addRole(role: StsTestRole): void {
    if (!ROLE_ARN_PATTERN.test(role.roleArn)) throw new Error(`bad test role ARN ${role.roleArn}`);
    this.roles.set(role.roleArn, role);
  }

  /** The next `times` AssumeRole requests fail with `error`. */
  failNext(times: number, error: string, message?: string): void {
    this.script.add({ error, times, operation: 'AssumeRole', ...(message === undefined ? {} : { message }) });
  }

  /** Every AssumeRole request fails with `error` until `script.clear()`. */
  failAlways(error: string): void {
    this.script.add({ error, operation: 'AssumeRole' });
  }

  callCount(action = 'AssumeRole'): number {
    return this.calls.filter((c) => c.action === action).length;
  }

  private async handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const send = (status: number, xml: string): void => {
      res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId, 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
    };
    const log: { -readonly [K in keyof StsCall]: StsCall[K] } = { action: '?', status: 0 };
    const error = (code: string, message: string): void => {
      const shape = STS_ERRORS[code] ?? { status: 400, type: 'Sender' as const };
      log.status = shape.status;
      log.errorCode = code;
      this.calls.push({ ...log });
      send(
        shape.status,
        `<ErrorResponse xmlns="${STS_NS}">\n  <Error>\n    <Type>${shape.type}</Type>\n    <Code>${xmlEscape(code)}</Code>\n    <Message>${xmlEscape(message)}</Message>\n  </Error>\n  <RequestId>${requestId}</RequestId>\n</ErrorResponse>\n`,
      );
    };

    const contentType = req.headers['content-type'] ?? '';
    if (req.method !== 'POST' || req.url !== '/' || !/^application\/x-www-form-urlencoded(;\s*charset=utf-8)?$/i.test(contentType)) {
      // The real service also accepts GET with a query string; the SDK never sends that, so we refuse it.
      error('InvalidAction', 'Only POST / with a form-encoded body is supported by this test double.');
      return;
    }
    const form = new URLSearchParams(body.toString('utf8'));
    const action = form.get('Action');
    log.action = action ?? '?';
    const auth = verifySigV4(req, body, { store: this.store, region: this.region, service: 'sts', now: this.now });
    if (!auth.ok) {
      const code = {
        missing: 'MissingAuthenticationToken',
        incomplete: 'IncompleteSignature',
        'unknown-key': 'InvalidClientTokenId',
        'bad-token': 'InvalidClientTokenId',
        'expired-token': 'ExpiredToken',
        scope: 'SignatureDoesNotMatch',
        skew: 'SignatureDoesNotMatch',
        payload: 'SignatureDoesNotMatch',
        signature: 'SignatureDoesNotMatch',
      }[auth.failure];
      error(code, auth.message);
      return;
    }
    const caller = auth.identity;
    log.accessKeyId = caller.accessKeyId;
    if (action === null) {
      error('MissingAction', 'Missing Action');
      return;
    }
    if (action !== 'AssumeRole' || form.get('Version') !== '2011-06-15') {
      error('InvalidAction', `Could not find operation ${action} for version ${form.get('Version') ?? 'NO_VERSION_SPECIFIED'}`);
      return;
    }

    const roleArn = form.get('RoleArn');
    const sessionName = form.get('RoleSessionName');
    const durationText = form.get('DurationSeconds');
    const externalId = form.get('ExternalId');
    if (roleArn !== null) log.roleArn = roleArn;
    if (sessionName !== null) log.roleSessionName = sessionName;
    if (externalId !== null) log.externalId = externalId;
    const duration = durationText === null ? 3600 : Number(durationText);
    if (durationText !== null) log.durationSeconds = duration;

    const outcome = this.script.next('AssumeRole');
    await this.http.delay(outcome.latencyMs);
    if (outcome.error === CONNECTION_RESET) {
      log.status = 0;
      log.errorCode = CONNECTION_RESET;
      this.calls.push({ ...log });
      req.socket.destroy();
      return;
    }
    if (outcome.error !== undefined) {
      error(outcome.error, outcome.message ?? (outcome.error === 'Throttling' ? 'Rate exceeded' : 'Scripted failure'));
      return;
    }

    // Modelled input constraints, reported together like AWS does.
    const problems: string[] = [];
    if (roleArn === null) problems.push("Value null at 'roleArn' failed to satisfy constraint: Member must not be null");
    else if (roleArn.length < 20) problems.push(`Value '${roleArn}' at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20`);
    if (sessionName === null) problems.push("Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null");
    else {
      if (sessionName.length < 2) problems.push(`Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2`);
      if (sessionName.length > 64) problems.push(`Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must have length less than or equal to 64`);
      if (!SESSION_NAME_PATTERN.test(sessionName)) problems.push(`Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`);
    }
    if (durationText !== null && !/^\d+$/.test(durationText)) problems.push(`Value '${durationText}' at 'durationSeconds' failed to satisfy constraint: Member must be an integer`);
    else if (duration < 900) problems.push(`Value '${duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`);
    else if (duration > 43200) problems.push(`Value '${duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200`);
    if (externalId !== null) {
      if (externalId.length < 2) problems.push(`Value '${externalId}' at 'externalId' failed to satisfy constraint: Member must have length greater than or equal to 2`);
      if (externalId.length > 1224) problems.push(`Value at 'externalId' failed to satisfy constraint: Member must have length less than or equal to 1224`);
      if (!EXTERNAL_ID_PATTERN.test(externalId)) problems.push(`Value '${externalId}' at 'externalId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*`);
    }
    if (problems.length > 0) {
      error('ValidationError', `${problems.length} validation error${problems.length === 1 ? '' : 's'} detected: ${problems.join('; ')}`);
      return;
    }
    const arn = roleArn as string;
    const session = sessionName as string;
    if (!ROLE_ARN_PATTERN.test(arn)) {
      error('ValidationError', `${arn} is invalid`);
      return;
    }

    // Authorization: unknown role, untrusted caller and a wrong/missing ExternalId all look the same to
    // the caller (AWS does not reveal which condition failed).
    const role = this.roles.get(arn);
    const denied = `User: ${caller.principalArn} is not authorized to perform: sts:AssumeRole on resource: ${arn}`;
    const trusted = role?.trustedPrincipals === undefined || role.trustedPrincipals.includes(TestCredentialStore.principalOf(caller));
    if (!role || !trusted || (role.externalId !== undefined && externalId !== role.externalId)) {
      error('AccessDenied', denied);
      return;
    }
    const maxDuration = role.maxSessionDurationSeconds ?? 3600;
    if (caller.roleArn !== undefined && duration > 3600) {
      error('ValidationError', 'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.');
      return;
    }
    if (duration > maxDuration) {
      error('ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
      return;
    }

    const roleName = ROLE_ARN_PATTERN.exec(arn)?.[2] ?? 'role';
    // Whole seconds, like AWS (the wire format has no fraction).
    const expiration = new Date(Math.floor(this.now() / 1000) * 1000 + duration * 1000);
    const credentials: IssuedCredentials = {
      accessKeyId: `ASIA${randomFrom('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: `FwoGZXIvYXdzE${randomBytes(180).toString('base64')}`,
      expiration,
      roleArn: arn,
      roleSessionName: session,
    };
    const sessionArn = `arn:aws:sts::${TEST_ACCOUNT_ID}:assumed-role/${roleName}/${session}`;
    this.store.add({
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken,
      expiration,
      principalArn: sessionArn,
      roleArn: arn,
    });
    this.issued.push(credentials);
    log.status = 200;
    this.calls.push({ ...log });
    const roleId = `AROA${randomFrom('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 17)}`;
    send(
      200,
      `<AssumeRoleResponse xmlns="${STS_NS}">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>${roleId}:${xmlEscape(session)}</AssumedRoleId>
      <Arn>${xmlEscape(sessionArn)}</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>${credentials.accessKeyId}</AccessKeyId>
      <SecretAccessKey>${xmlEscape(credentials.secretAccessKey)}</SecretAccessKey>
      <SessionToken>${xmlEscape(credentials.sessionToken)}</SessionToken>
      <Expiration>${expiration.toISOString().replace(/\.\d{3}Z$/, 'Z')}</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>${requestId}</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>
`,
    );
  }
}

export async function startStsTestServer(options: StsTestServerOptions = {}): Promise<StsTestServer> {
  return new StsTestServer(options).start();
}

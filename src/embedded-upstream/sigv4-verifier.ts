/**
 * Header-based SigV4 verification for the embedded upstream: the canonical request is rebuilt from
 * what arrived (method, canonically re-encoded path, decoded query, the signed headers only) and signed
 * again with `@smithy/signature-v4` under the configured secret; the signatures are compared in
 * constant time. Presigned (query) auth, SigV2 and anonymous requests are refused.
 *
 * The payload hash the client signed (`x-amz-content-sha256`) is returned so the caller checks it
 * against the body it reads (UNSIGNED-PAYLOAD accepted; STREAMING-* refused as not implemented).
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { S3Error, s3Errors } from './s3-error';

export interface SigV4VerifierConfig {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  /** Accepted clock difference, default 15 minutes (S3's). */
  readonly maxSkewMs?: number;
}

export interface SignedRequest {
  readonly method: string;
  /** The path as the canonical URI: decoded once and re-encoded S3-style by the caller. */
  readonly canonicalPath: string;
  /** Query parameters, decoded. */
  readonly query: Readonly<Record<string, string>>;
  readonly headers: IncomingHttpHeaders;
}

export type PayloadHash = { kind: 'unsigned' } | { kind: 'sha256'; hex: string };

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

export class SigV4Verifier {
  private readonly signer: SignatureV4;
  private readonly maxSkewMs: number;

  constructor(private readonly config: SigV4VerifierConfig) {
    this.signer = new SignatureV4({
      service: 's3',
      region: config.region,
      credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
      sha256: Hash.bind(null, 'sha256'),
      uriEscapePath: false,
      applyChecksum: false,
    });
    this.maxSkewMs = config.maxSkewMs ?? 15 * 60_000;
  }

  /** Resolves with the signed payload hash, or throws an S3Error (403/400/501). */
  async verify(request: SignedRequest, now: Date = new Date()): Promise<PayloadHash> {
    if (Object.keys(request.query).some((name) => name.toLowerCase().startsWith('x-amz-'))) throw s3Errors.accessDenied('Query-string authentication is not supported.');
    const authorization = request.headers.authorization;
    if (authorization === undefined) throw s3Errors.accessDenied();
    const match = AUTH.exec(authorization);
    if (match === null) throw s3Errors.authorizationHeaderMalformed('The authorization header is malformed.');
    const [, credential = '', signedHeaderList = '', signature = ''] = match;
    const scope = credential.split('/');
    if (scope.length !== 5 || scope[3] !== 's3' || scope[4] !== 'aws4_request') throw s3Errors.authorizationHeaderMalformed('The credential scope is malformed.');
    const [accessKeyId, shortDate, region] = scope as [string, string, string];
    if (accessKeyId !== this.config.accessKeyId) throw s3Errors.invalidAccessKeyId();
    if (region !== this.config.region) throw s3Errors.authorizationHeaderMalformed(`The region '${region}' is wrong; expecting '${this.config.region}'.`);

    const amzDate = single(request.headers['x-amz-date']);
    const date = amzDate === undefined ? null : AMZ_DATE.exec(amzDate);
    if (amzDate === undefined || date === null) throw s3Errors.accessDenied('AWS authentication requires a valid x-amz-date header.');
    if (amzDate.slice(0, 8) !== shortDate) throw s3Errors.authorizationHeaderMalformed('The credential date does not match x-amz-date.');
    const signingDate = new Date(Date.UTC(Number(date[1]), Number(date[2]) - 1, Number(date[3]), Number(date[4]), Number(date[5]), Number(date[6])));
    if (Math.abs(now.getTime() - signingDate.getTime()) > this.maxSkewMs) throw s3Errors.requestTimeTooSkewed();

    const signedHeaders = signedHeaderList.split(';');
    if (!signedHeaders.includes('host')) throw s3Errors.accessDenied('The host header must be signed.');
    for (const name of Object.keys(request.headers)) {
      if (name.startsWith('x-amz-') && !signedHeaders.includes(name)) throw s3Errors.accessDenied('There were headers present in the request which were not signed.');
    }
    const headers: Record<string, string> = {};
    for (const name of signedHeaders) {
      const value = request.headers[name];
      if (value === undefined) throw s3Errors.accessDenied('A signed header is missing from the request.');
      headers[name] = Array.isArray(value) ? value.join(',') : value;
    }
    const contentSha256 = single(request.headers['x-amz-content-sha256']);
    if (contentSha256 === undefined) throw s3Errors.invalidRequest('Missing required header for this request: x-amz-content-sha256');
    let payload: PayloadHash;
    if (contentSha256 === 'UNSIGNED-PAYLOAD') payload = { kind: 'unsigned' };
    else if (/^[0-9a-f]{64}$/.test(contentSha256)) payload = { kind: 'sha256', hex: contentSha256 };
    else if (contentSha256.startsWith('STREAMING-')) throw s3Errors.notImplemented();
    else throw s3Errors.invalidArgument('x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 hex digest.');

    const signed = await this.signer.sign(
      { method: request.method, protocol: 'http:', hostname: 'embedded', path: request.canonicalPath, query: { ...request.query }, headers },
      { signingDate, signableHeaders: new Set(signedHeaders) },
    );
    const expected = /Signature=([0-9a-f]{64})$/.exec(String(signed.headers['authorization'] ?? ''))?.[1] ?? '';
    const ok = expected.length === signature.length && timingSafeEqual(Buffer.from(expected), Buffer.from(signature));
    if (!ok || !sameHeaderList(signed.headers['authorization'], signedHeaderList)) throw s3Errors.signatureDoesNotMatch();
    return payload;
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The re-signed request must have covered exactly the headers the client listed. */
function sameHeaderList(authorization: string | undefined, list: string): boolean {
  return /SignedHeaders=([^,]+),/.exec(authorization ?? '')?.[1] === list;
}

export { S3Error };

/**
 * Header-based SigV4 verification for the embedded upstream, on the gateway's one SigV4 core
 * (src/auth/sigv4-signature.ts): the canonical request is rebuilt from what arrived (method, the
 * decoded path encoded once S3-style, decoded query, the signed headers only) and signed again under
 * the configured secret; the signatures are compared in constant time. Presigned (query) auth, SigV2
 * and anonymous requests are refused.
 *
 * The payload hash the client signed (`x-amz-content-sha256`) is returned so the caller checks it
 * against the body it reads (UNSIGNED-PAYLOAD accepted; STREAMING-* refused as not implemented).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { canonicalRequest, credentialScope, hmacHex, parseAmzDate, parseAuthorizationHeader, sameSignature, SigV4FormatError, type SigV4Fields, signingKeyFor, stringToSign } from '../auth/sigv4-signature';
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
  /** The path, decoded once (`/<bucket>/<key>`); encoded canonically by the SigV4 core. */
  readonly path: string;
  /** Query parameters, decoded. */
  readonly query: Readonly<Record<string, string>>;
  readonly headers: IncomingHttpHeaders;
}

export type PayloadHash = { kind: 'unsigned' } | { kind: 'sha256'; hex: string };

export class SigV4Verifier {
  private readonly maxSkewMs: number;

  constructor(private readonly config: SigV4VerifierConfig) {
    this.maxSkewMs = config.maxSkewMs ?? 15 * 60_000;
  }

  /** Resolves with the signed payload hash, or throws an S3Error (403/400/501). */
  async verify(request: SignedRequest, now: Date = new Date()): Promise<PayloadHash> {
    if (Object.keys(request.query).some((name) => name.toLowerCase().startsWith('x-amz-'))) throw s3Errors.accessDenied('Query-string authentication is not supported.');
    const authorization = request.headers.authorization;
    if (authorization === undefined) throw s3Errors.accessDenied();
    let fields: SigV4Fields;
    try {
      fields = parseAuthorizationHeader(authorization, single(request.headers['x-amz-date']));
    } catch (error) {
      if (!(error instanceof SigV4FormatError)) throw error;
      if (error.kind === 'date') throw s3Errors.accessDenied('AWS authentication requires a valid x-amz-date header.');
      throw s3Errors.authorizationHeaderMalformed('The authorization header is malformed.');
    }
    if (fields.service !== 's3') throw s3Errors.authorizationHeaderMalformed('The credential scope is malformed.');
    if (fields.accessKeyId !== this.config.accessKeyId) throw s3Errors.invalidAccessKeyId();
    if (fields.region !== this.config.region) throw s3Errors.authorizationHeaderMalformed(`The region '${fields.region}' is wrong; expecting '${this.config.region}'.`);
    if (fields.amzDate.slice(0, 8) !== fields.shortDate) throw s3Errors.authorizationHeaderMalformed('The credential date does not match x-amz-date.');
    let signingDate: Date;
    try {
      signingDate = parseAmzDate(fields.amzDate);
    } catch {
      throw s3Errors.accessDenied('AWS authentication requires a valid x-amz-date header.');
    }
    if (Math.abs(now.getTime() - signingDate.getTime()) > this.maxSkewMs) throw s3Errors.requestTimeTooSkewed();

    const { signedHeaders } = fields;
    if (!signedHeaders.includes('host')) throw s3Errors.accessDenied('The host header must be signed.');
    for (const name of Object.keys(request.headers)) {
      if (name.startsWith('x-amz-') && !signedHeaders.includes(name)) throw s3Errors.accessDenied('There were headers present in the request which were not signed.');
    }
    const headers: Array<readonly [string, string]> = [];
    for (const name of signedHeaders) {
      const value = request.headers[name];
      if (value === undefined) throw s3Errors.accessDenied('A signed header is missing from the request.');
      headers.push([name, Array.isArray(value) ? value.join(',') : value]);
    }
    const contentSha256 = single(request.headers['x-amz-content-sha256']);
    if (contentSha256 === undefined) throw s3Errors.invalidRequest('Missing required header for this request: x-amz-content-sha256');
    let payload: PayloadHash;
    if (contentSha256 === 'UNSIGNED-PAYLOAD') payload = { kind: 'unsigned' };
    else if (/^[0-9a-f]{64}$/.test(contentSha256)) payload = { kind: 'sha256', hex: contentSha256 };
    else if (contentSha256.startsWith('STREAMING-')) throw s3Errors.notImplemented();
    else throw s3Errors.invalidArgument('x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA-256 hex digest.');

    const canonical = canonicalRequest({ method: request.method, path: request.path, query: Object.entries(request.query), headers, payloadHash: contentSha256 });
    const key = await signingKeyFor(this.config.secretAccessKey, this.config.accessKeyId, fields);
    const expected = hmacHex(key, stringToSign(fields.amzDate, credentialScope(fields), canonical));
    if (!sameSignature(expected, fields.signature)) throw s3Errors.signatureDoesNotMatch();
    return payload;
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export { S3Error };

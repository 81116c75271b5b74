/**
 * The one catalogue of errors the gateway can answer with: code → HTTP status, default message and
 * fault side. Codes and statuses follow the CDCS/COS contract (shared reference cdcs-api.md) so the
 * official SDK maps them correctly; `fault` drives metrics and whether a retry can help.
 */
export type Fault = 'client' | 'server';

export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
  readonly fault: Fault;
}

export const ERROR_CATALOGUE = {
  // 400
  InvalidArgument: { status: 400, message: 'An argument of the request is invalid.', fault: 'client' },
  InvalidObjectKey: { status: 400, message: 'The object key is not valid.', fault: 'client' },
  InvalidRequest: { status: 400, message: 'The request is not valid.', fault: 'client' },
  InvalidURI: { status: 400, message: 'The request target could not be decoded.', fault: 'client' },
  EntityTooSmall: { status: 400, message: 'A part other than the last is smaller than the minimum part size.', fault: 'client' },
  EntityTooLarge: { status: 400, message: 'The body is larger than the maximum allowed size.', fault: 'client' },
  InvalidPart: { status: 400, message: 'A listed part was not uploaded or its ETag does not match.', fault: 'client' },
  InvalidPartOrder: { status: 400, message: 'The list of parts was not in ascending order.', fault: 'client' },
  MetadataTooLarge: { status: 400, message: 'The user metadata is larger than 2 KB.', fault: 'client' },
  MalformedXML: { status: 400, message: 'The XML body is not well-formed or does not match the schema.', fault: 'client' },
  BadDigest: { status: 400, message: 'The Content-MD5 does not match the body received.', fault: 'client' },
  InvalidDigest: { status: 400, message: 'The Content-MD5 header is not a valid base64 MD5 digest.', fault: 'client' },
  IncompleteBody: { status: 400, message: 'The body ended before Content-Length bytes arrived.', fault: 'client' },
  RequestTimeout: { status: 400, message: 'The body was not received within the idle timeout.', fault: 'client' },
  MalformedAuthorization: { status: 400, message: 'The Authorization header or signature parameters are malformed.', fault: 'client' },
  // 401/403
  AuthFailed: { status: 401, message: 'The request carries no credentials the gateway accepts.', fault: 'client' },
  AccessDenied: { status: 403, message: 'Access denied.', fault: 'client' },
  InvalidAccessKeyId: { status: 403, message: 'The SecretId is not known.', fault: 'client' },
  SignatureDoesNotMatch: { status: 403, message: 'The request signature does not match.', fault: 'client' },
  RequestTimeTooSkewed: { status: 403, message: 'The signature time window is outside the allowed clock skew.', fault: 'client' },
  InvalidToken: { status: 403, message: 'The bearer token is not valid.', fault: 'client' },
  // 404
  NoSuchUpload: { status: 404, message: 'The multipart upload does not exist.', fault: 'client' },
  NoSuchKey: { status: 404, message: 'The object does not exist.', fault: 'client' },
  NoSuchCoffer: { status: 404, message: 'The coffer does not exist.', fault: 'client' },
  // 405, 409, 411, 412, 416
  MethodNotAllowed: { status: 405, message: 'The method is not allowed on this resource.', fault: 'client' },
  ObjectAlreadyExists: { status: 409, message: 'The object exists or is being uploaded; coffers are write-once.', fault: 'client' },
  AssumeRoleFailed: { status: 409, message: "The coffer's role could not be assumed.", fault: 'server' },
  KMSFailed: { status: 409, message: 'The key management service could not provide the data key.', fault: 'server' },
  MissingContentLength: { status: 411, message: 'Content-Length is required.', fault: 'client' },
  PreconditionFailed: { status: 412, message: 'A precondition of the request does not hold.', fault: 'client' },
  InvalidRange: { status: 416, message: 'The requested range is not satisfiable.', fault: 'client' },
  // 5xx
  InternalError: { status: 500, message: 'The gateway encountered an internal error.', fault: 'server' },
  IntegrityCheckFailed: { status: 500, message: 'Stored ciphertext failed authentication; no plaintext was returned.', fault: 'server' },
  BadGateway: { status: 502, message: 'The upstream object store answered with an error.', fault: 'server' },
  ServiceUnavailable: { status: 503, message: 'The service is unavailable; retry later.', fault: 'server' },
  SlowDown: { status: 503, message: 'Reduce your request rate.', fault: 'server' },
  GatewayTimeout: { status: 504, message: 'The upstream object store did not answer in time.', fault: 'server' },
  // Appended for the HTTP front (src/server, src/cdcs): answers Node's parser or the request-target checks produce.
  URITooLong: { status: 414, message: 'The request target is too long.', fault: 'client' },
  ExpectationFailed: { status: 417, message: 'The Expect header is not supported; only 100-continue is.', fault: 'client' },
  RequestHeaderFieldsTooLarge: { status: 431, message: 'The request headers are too large.', fault: 'client' },
  // Appended for coffer lifecycle (issue 16): codes of the CDCS error list and of PutCofferLifecycle / GetCofferLifecycle.
  InvalidLifeCycle: { status: 400, message: 'The lifecycle configuration is not valid.', fault: 'client' },
  NoSuchLifecycleConfiguration: { status: 404, message: 'The coffer has no lifecycle configuration.', fault: 'client' },
  // Appended for coffer policies (issue 16): S3's and COS's code for a policy document that is not valid.
  MalformedPolicy: { status: 400, message: 'The policy is not valid.', fault: 'client' },
  NoSuchCofferPolicy: { status: 404, message: 'The coffer has no policy.', fault: 'client' },
  // 501: an S3 operation this gateway does not implement, or a coffer API the upstream does not (lifecycle).
  NotImplemented: { status: 501, message: 'The request needs functionality that this gateway or its upstream does not implement.', fault: 'server' },
  // Appended for the S3 dialect (SigV4, aws-chunked bodies; issue 15).
  AuthorizationHeaderMalformed: { status: 400, message: 'The AWS4-HMAC-SHA256 Authorization header is malformed.', fault: 'client' },
  AuthorizationQueryParametersError: { status: 400, message: 'The X-Amz-* query parameters of the presigned URL are malformed.', fault: 'client' },
  XAmzContentSHA256Mismatch: { status: 400, message: "The provided 'x-amz-content-sha256' header does not match what was computed.", fault: 'client' },
  InvalidChunkedBody: { status: 400, message: 'The aws-chunked body is malformed.', fault: 'client' },
  BucketAlreadyOwnedByYou: { status: 409, message: 'The bucket exists and is yours.', fault: 'client' },
  NoSuchBucket: { status: 404, message: 'The specified bucket does not exist.', fault: 'client' },
  // Appended for PUT Coffer / DELETE Coffer (issue 16): codes of the CDCS error list.
  InvalidCofferName: { status: 400, message: 'The coffer name is not valid here.', fault: 'client' },
  CofferAlreadyExists: { status: 409, message: 'A coffer of this name already exists.', fault: 'client' },
  CofferNotEmpty: { status: 409, message: 'The coffer is not empty: it has live objects or open multipart uploads.', fault: 'client' },
  // Appended for S3 CreateBucket / DeleteBucket (issue 15): S3's codes, statuses and messages.
  BucketAlreadyExists: { status: 409, message: 'The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.', fault: 'client' },
  BucketNotEmpty: { status: 409, message: 'The bucket you tried to delete is not empty.', fault: 'client' },
  InvalidBucketName: { status: 400, message: 'The specified bucket is not valid.', fault: 'client' },
  InvalidLocationConstraint: { status: 400, message: 'The specified location-constraint is not valid.', fault: 'client' },
  IllegalLocationConstraintException: { status: 400, message: 'The location constraint is incompatible with the region of this endpoint.', fault: 'client' },
  // Never sent — the client is gone. It names the outcome in metrics and logs (nginx's 499), so a
  // download the client abandoned is not counted as a gateway failure.
  ClientClosedRequest: { status: 499, message: 'The client closed the connection before the answer was complete.', fault: 'client' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CATALOGUE, code);
}

/** An S3 error answer of the embedded upstream: `<Error><Code>…` with its HTTP status. */
export class S3Error extends Error {
  override readonly name = 'S3Error';
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const s3Errors = {
  preconditionFailed: () => new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold'),
  accessDenied: (message = 'Access Denied') => new S3Error('AccessDenied', 403, message),
  signatureDoesNotMatch: () => new S3Error('SignatureDoesNotMatch', 403, 'The request signature we calculated does not match the signature you provided.'),
  invalidAccessKeyId: () => new S3Error('InvalidAccessKeyId', 403, 'The AWS access key Id you provided does not exist in our records.'),
  requestTimeTooSkewed: () => new S3Error('RequestTimeTooSkewed', 403, 'The difference between the request time and the current time is too large.'),
  authorizationHeaderMalformed: (message: string) => new S3Error('AuthorizationHeaderMalformed', 400, message),
  noSuchKey: () => new S3Error('NoSuchKey', 404, 'The specified key does not exist.'),
  noSuchUpload: () => new S3Error('NoSuchUpload', 404, 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.'),
  noSuchBucket: () => new S3Error('NoSuchBucket', 404, 'The specified bucket does not exist.'),
  invalidArgument: (message: string) => new S3Error('InvalidArgument', 400, message),
  invalidRequest: (message: string) => new S3Error('InvalidRequest', 400, message),
  invalidURI: () => new S3Error('InvalidURI', 400, "Couldn't parse the specified URI."),
  invalidRange: () => new S3Error('InvalidRange', 416, 'The requested range is not satisfiable'),
  missingContentLength: () => new S3Error('MissingContentLength', 411, 'You must provide the Content-Length HTTP header.'),
  incompleteBody: () => new S3Error('IncompleteBody', 400, 'You did not provide the number of bytes specified by the Content-Length HTTP header.'),
  invalidDigest: () => new S3Error('InvalidDigest', 400, 'The Content-MD5 you specified is not valid.'),
  badDigest: () => new S3Error('BadDigest', 400, 'The Content-MD5 you specified did not match what we received.'),
  sha256Mismatch: () => new S3Error('XAmzContentSHA256Mismatch', 400, "The provided 'x-amz-content-sha256' header does not match what was computed."),
  entityTooLarge: () => new S3Error('EntityTooLarge', 400, 'Your proposed upload exceeds the maximum allowed size.'),
  entityTooSmall: () => new S3Error('EntityTooSmall', 400, 'Your proposed upload is smaller than the minimum allowed object size.'),
  invalidPart: () => new S3Error('InvalidPart', 400, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."),
  invalidPartOrder: () => new S3Error('InvalidPartOrder', 400, 'The list of parts was not in ascending order. Parts must be ordered by part number.'),
  malformedXML: () => new S3Error('MalformedXML', 400, 'The XML you provided was not well-formed or did not validate against our published schema.'),
  metadataTooLarge: () => new S3Error('MetadataTooLarge', 400, 'Your metadata headers exceed the maximum allowed metadata size.'),
  notImplemented: () => new S3Error('NotImplemented', 501, 'A header or query you provided implies functionality that is not implemented.'),
  methodNotAllowed: () => new S3Error('MethodNotAllowed', 405, 'The specified method is not allowed against this resource.'),
  internalError: () => new S3Error('InternalError', 500, 'We encountered an internal error. Please try again.'),
};

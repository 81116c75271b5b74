/**
 * S3 routing (pure): operations from method, target and query names; names the operation does not act
 * on are refused (re-cased ones included), S3 sub-resources the gateway lacks are 501 NotImplemented.
 */
import { parseRequestTarget } from '../../src/cdcs/request-target';
import { GatewayError } from '../../src/errors/gateway-error';
import { routeS3 } from '../../src/s3/s3-route';

const route = (method: string, target: string) => routeS3(method, parseRequestTarget(target, { acceptAbsoluteForm: false, hostHeader: '127.0.0.1:8080' }));
const code = (method: string, target: string): string => {
  try {
    return route(method, target).name;
  } catch (error) {
    return (error as GatewayError).code;
  }
};
const ID = 'a'.repeat(32);

describe('S3 routing', () => {
  test.each([
    ['GET', '/', 'ListBuckets'],
    ['HEAD', '/demo-1250000000', 'HeadBucket'],
    ['PUT', '/demo-1250000000', 'CreateBucket'],
    ['DELETE', '/demo-1250000000', 'DeleteBucket'],
    ['GET', '/demo-1250000000?location', 'GetBucketLocation'],
    ['GET', '/demo-1250000000?prefix=a&delimiter=%2F', 'ListObjects'],
    ['GET', '/demo-1250000000?list-type=2&continuation-token=x&start-after=a&fetch-owner=true', 'ListObjectsV2'],
    ['GET', '/demo-1250000000?uploads&prefix=a', 'ListMultipartUploads'],
    ['POST', '/demo-1250000000?delete', 'DeleteObjects'],
    ['PUT', '/demo-1250000000/k', 'PutObject'],
    ['PUT', `/demo-1250000000/k?partNumber=2&uploadId=${ID}`, 'UploadPart'],
    ['GET', `/demo-1250000000/k?uploadId=${ID}`, 'ListParts'],
    ['POST', '/demo-1250000000/k?uploads', 'CreateMultipartUpload'],
    ['POST', `/demo-1250000000/k?uploadId=${ID}`, 'CompleteMultipartUpload'],
    ['DELETE', `/demo-1250000000/k?uploadId=${ID}`, 'AbortMultipartUpload'],
    ['DELETE', '/demo-1250000000/k', 'DeleteObject'],
    ['GET', '/demo-1250000000/k?response-content-type=text%2Fplain&x-id=GetObject', 'GetObject'],
    ['HEAD', '/demo-1250000000/k', 'HeadObject'],
    ['GET', '/demo-1250000000/k?tagging', 'GetObjectTagging'],
  ])('%s %s → %s', (method, target, name) => {
    expect(code(method, target)).toBe(name);
  });

  test.each([
    ['GET', '/demo-1250000000/k?acl', 'NotImplemented'],
    ['PUT', '/demo-1250000000/k?tagging', 'NotImplemented'],
    ['DELETE', '/demo-1250000000/k?tagging', 'NotImplemented'],
    ['GET', '/demo-1250000000?tagging', 'NotImplemented'],
    ['GET', '/demo-1250000000/k?tagging&acl', 'NotImplemented'],
    ['GET', `/demo-1250000000/k?tagging&uploadId=${ID}`, 'NotImplemented'],
    ['GET', '/demo-1250000000?versioning', 'NotImplemented'],
    ['DELETE', '/demo-1250000000?policy', 'NotImplemented'],
    ['PATCH', '/demo-1250000000', 'MethodNotAllowed'],
    ['GET', '/demo-1250000000/k?partNumber=1', 'NotImplemented'],
    ['GET', '/demo-1250000000/k?Response-Content-Type=x', 'InvalidArgument'],
    ['GET', '/demo-1250000000/k?prefix=a', 'InvalidArgument'],
    ['PUT', '/demo-1250000000/k?uploadId=x&partNumber=1', 'NoSuchUpload'],
    ['PUT', `/demo-1250000000/k?uploadId=${ID}&partNumber=0`, 'InvalidArgument'],
    ['GET', `/demo-1250000000/k?uploadId=${ID}&uploadId=${ID}`, 'InvalidArgument'],
    ['GET', '/demo-1250000000?list-type=1', 'InvalidArgument'],
    ['PATCH', '/demo-1250000000/k', 'MethodNotAllowed'],
  ])('%s %s → %s', (method, target, expected) => {
    expect(code(method, target)).toBe(expected);
  });
});

/**
 * One listener, two dialects: each request is answered by the dialect its credentials speak. A
 * request signed with SigV4 (`Authorization: AWS4-HMAC-SHA256 …` or `X-Amz-Algorithm` in the query)
 * is S3; everything else (COS signatures, bearer tokens, no credentials) is CDCS. The choice is made
 * once, when the target is parsed (the same parse for both), and every later stage — routing,
 * authentication, the operation table, the answer — is that dialect's; a request can never be
 * verified by one dialect and acted on by the other.
 *
 * Errors before the choice are rendered once for both (the `<Error>` shapes agree, and
 * `x-amz-request-id` is added so S3 tools show the request id); a target that does not parse in a
 * SigV4-signed request, and S3 routing errors, carry S3's codes (NoSuchBucket, not NoSuchCoffer).
 */
import { hasSigV4 } from '../auth/sigv4-authenticator';
import type { RequestTarget } from '../cdcs/request-target';
import { renderError, type ErrorContext, type RenderedError } from '../errors/render-error';
import type { GatewayRequest, NamedOperation } from '../server/gateway-exchange';
import type { GatewayHandler, RequestRouter } from '../server/gateway-server';
import { toS3Error } from '../s3/s3-responses';

export interface DialectEndpoint<Operation extends NamedOperation> {
  readonly router: RequestRouter<Operation>;
  readonly handle: GatewayHandler<Operation>;
}

export interface DialectSwitch {
  readonly router: RequestRouter<NamedOperation>;
  readonly handle: GatewayHandler<NamedOperation>;
  readonly renderError: (error: unknown, context: ErrorContext) => RenderedError;
}

/** SigV4 by its header, or by its query parameter before the target is parsed (an error path only). */
function looksSigV4(rawTarget: string, headers: Parameters<typeof hasSigV4>[0]['headers']): boolean {
  return hasSigV4({ headers, query: [] }) || /[?&]X-Amz-Algorithm=/.test(rawTarget);
}

export function createDialectSwitch<Cdcs extends NamedOperation, S3 extends NamedOperation>(cdcs: DialectEndpoint<Cdcs>, s3: DialectEndpoint<S3>): DialectSwitch {
  /** Targets of requests that speak S3 (the parsed target object is the request's identity, kept to the end). */
  const s3Targets = new WeakSet<RequestTarget>();
  return {
    router: {
      parseTarget: (rawTarget, headers) => {
        let target: RequestTarget;
        try {
          target = cdcs.router.parseTarget(rawTarget, headers);
        } catch (error) {
          // A target that does not parse (e.g. a bucket name that is not a coffer name) still gets
          // the error code of the dialect the client speaks: S3 tools look for NoSuchBucket.
          throw looksSigV4(rawTarget, headers) ? toS3Error(error) : error;
        }
        if (hasSigV4({ headers, query: target.query })) s3Targets.add(target);
        return target;
      },
      route: (method, target) => {
        if (!s3Targets.has(target)) return cdcs.router.route(method, target);
        try {
          return s3.router.route(method, target);
        } catch (error) {
          throw toS3Error(error);
        }
      },
    },
    handle: async (request, response) => {
      if (!s3Targets.has(request.target)) return cdcs.handle(request as GatewayRequest<Cdcs>, response);
      try {
        return await s3.handle(request as GatewayRequest<S3>, response);
      } catch (error) {
        throw toS3Error(error);
      }
    },
    renderError: (error, context) => {
      const rendered = renderError(error, context);
      return { ...rendered, headers: { ...rendered.headers, 'x-amz-request-id': context.requestId } };
    },
  };
}

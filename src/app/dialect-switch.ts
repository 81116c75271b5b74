/**
 * One listener, two dialects: each request is answered by the dialect its credentials speak. A
 * request signed with SigV4 (`Authorization: AWS4-HMAC-SHA256 …` or `X-Amz-Algorithm` in the query)
 * is S3; everything else (COS signatures, bearer tokens, no credentials) is CDCS. The choice is made
 * once, when the target is parsed (the same parse for both), and every later stage — routing,
 * authentication, the operation table, the answer — is that dialect's; a request can never be
 * verified by one dialect and acted on by the other.
 *
 * Errors are rendered by the dialect of the request they answer, so an S3 client always gets S3's
 * `<Error>` and codes (NoSuchBucket, not NoSuchCoffer): those thrown while a dialect parsed, routed
 * or handled the request are that dialect's (a target that does not parse in a SigV4-signed request
 * is S3's); the listener's own refusals before or around those stages (headers, framing, shutdown)
 * are decided from the request as received, by the same SigV4 test.
 */
import { hasSigV4 } from '../auth/sigv4-authenticator';
import type { RequestTarget } from '../cdcs/request-target';
import type { ErrorContext, RenderedError } from '../errors/render-error';
import type { GatewayRequest, NamedOperation } from '../server/gateway-exchange';
import type { GatewayHandler, RequestRouter } from '../server/gateway-server';
import type { RequestHeaders } from '../server/request-headers';
import { toS3Error } from '../s3/s3-responses';

export interface DialectEndpoint<Operation extends NamedOperation> {
  readonly router: RequestRouter<Operation>;
  readonly handle: GatewayHandler<Operation>;
  /** The dialect's one error renderer. */
  readonly renderError: (error: unknown, context: ErrorContext) => RenderedError;
}

export interface DialectSwitch {
  readonly router: RequestRouter<NamedOperation>;
  readonly handle: GatewayHandler<NamedOperation>;
  readonly renderError: (error: unknown, context: ErrorContext) => RenderedError;
}

/** SigV4 by its header, or by its query parameter in the raw target (for requests whose target did not parse). */
function looksSigV4(rawTarget: string, headers: RequestHeaders): boolean {
  const query = rawTarget.indexOf('?');
  return hasSigV4({ headers, query: [] }) || (query >= 0 && /(^|&)X-Amz-Algorithm=/.test(rawTarget.slice(query + 1)));
}

export function createDialectSwitch<Cdcs extends NamedOperation, S3 extends NamedOperation>(cdcs: DialectEndpoint<Cdcs>, s3: DialectEndpoint<S3>): DialectSwitch {
  /** Targets of requests that speak S3 (the parsed target object is the request's identity, kept to the end). */
  const s3Targets = new WeakSet<RequestTarget>();
  /** Errors each dialect threw (objects only; what else is thrown is rendered by the request as received). */
  const thrownBy = { s3: new WeakSet<object>(), cdcs: new WeakSet<object>() };
  const mark = (dialect: keyof typeof thrownBy, error: unknown): unknown => {
    if (typeof error === 'object' && error !== null) thrownBy[dialect].add(error);
    return error;
  };
  const asS3 = (error: unknown): unknown => mark('s3', toS3Error(error));
  return {
    router: {
      parseTarget: (rawTarget, headers) => {
        let target: RequestTarget;
        try {
          target = cdcs.router.parseTarget(rawTarget, headers);
        } catch (error) {
          // A target that does not parse (e.g. a bucket name that is not a coffer name) still gets
          // the error code of the dialect the client speaks: S3 tools look for NoSuchBucket.
          throw looksSigV4(rawTarget, headers) ? asS3(error) : mark('cdcs', error);
        }
        if (hasSigV4({ headers, query: target.query })) s3Targets.add(target);
        return target;
      },
      route: (method, target) => {
        try {
          return s3Targets.has(target) ? s3.router.route(method, target) : cdcs.router.route(method, target);
        } catch (error) {
          throw s3Targets.has(target) ? asS3(error) : mark('cdcs', error);
        }
      },
    },
    handle: async (request, response) => {
      const speaksS3 = s3Targets.has(request.target);
      try {
        return speaksS3 ? await s3.handle(request as GatewayRequest<S3>, response) : await cdcs.handle(request as GatewayRequest<Cdcs>, response);
      } catch (error) {
        throw speaksS3 ? asS3(error) : mark('cdcs', error);
      }
    },
    renderError: (error, context) => {
      const known = typeof error === 'object' && error !== null;
      const speaksS3 = known && thrownBy.s3.has(error) ? true : known && thrownBy.cdcs.has(error) ? false : context.received !== undefined && looksSigV4(context.received.rawTarget, context.received.headers);
      return speaksS3 ? s3.renderError(error, context) : cdcs.renderError(error, context);
    },
  };
}

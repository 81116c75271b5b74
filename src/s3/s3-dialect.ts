/**
 * The S3 dialect: the same request identity as CDCS (src/cdcs/request-target.ts: path-style and
 * virtual-hosted with the configured base domains), S3 routing (s3-route.ts), SigV4 authentication
 * over that identity (src/auth/sigv4-authenticator.ts), the S3 operations table (s3-operations.ts) and
 * S3 XML (s3-responses.ts). The pipeline, the listener and the store are shared with CDCS.
 *
 * The payload a signature declares (a digest, UNSIGNED-PAYLOAD, aws-chunked with its chunk-signature
 * seed) is kept per request, for the table's body plan; it never leaves this dialect.
 */
import type { SigV4Authenticator, SignedPayload } from '../auth/sigv4-authenticator';
import type { GatewayConfig } from '../config/schema';
import { parseRequestTarget } from '../cdcs/request-target';
import { GatewayError } from '../errors/gateway-error';
import type { Dialect } from '../operations/operation-table';
import type { GatewayRequest, NamedOperation } from '../server/gateway-exchange';
import type { RequestRouter } from '../server/gateway-server';
import { headerValue } from '../server/request-headers';
import { createS3Operations, type S3OperationsDependencies } from './s3-operations';
import { renderS3Error, renderS3Result } from './s3-responses';
import { routeS3, type S3Operation } from './s3-route';

export interface S3DialectOptions extends Omit<S3OperationsDependencies, 'payloadOf' | 'contexts'> {
  readonly coffers: S3OperationsDependencies['coffers'] & S3OperationsDependencies['contexts'];
  readonly server: Pick<GatewayConfig['server'], 'acceptAbsoluteForm' | 'virtualHostSuffixes'>;
  readonly authenticator: SigV4Authenticator;
}

export function createS3Router(server: S3DialectOptions['server']): RequestRouter<S3Operation> {
  return {
    parseTarget: (rawTarget, headers) => parseRequestTarget(rawTarget, { acceptAbsoluteForm: server.acceptAbsoluteForm, hostHeader: headerValue(headers, 'host'), virtualHostSuffixes: server.virtualHostSuffixes }),
    // Its errors get S3's names where the dialect switch receives them (src/app/dialect-switch.ts).
    route: routeS3,
  };
}

export function createS3Dialect(options: S3DialectOptions): Dialect<S3Operation> {
  const payloads = new WeakMap<GatewayRequest<NamedOperation>, SignedPayload>();
  const payloadOf = (request: GatewayRequest<NamedOperation>): SignedPayload => {
    const payload = payloads.get(request);
    if (payload === undefined) throw new GatewayError('InternalError', 'The request was not authenticated.');
    return payload;
  };
  return {
    router: createS3Router(options.server),
    operations: createS3Operations({ ...options, contexts: options.coffers, payloadOf }),
    authenticate: async (request) => {
      const { target } = request;
      const { principal, payload } = await options.authenticator.authenticate({
        method: request.method,
        coffer: target.coffer,
        key: target.key,
        addressing: target.addressing,
        query: target.query,
        headers: request.headers,
        pathname: target.pathname,
      });
      payloads.set(request, payload);
      return principal;
    },
    renderResult: renderS3Result,
    renderError: renderS3Error,
  };
}

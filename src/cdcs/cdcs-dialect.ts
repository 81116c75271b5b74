/**
 * The CDCS dialect: COS-style routing (cdcs-router.ts), COS signature or JWT authentication over the
 * parsed target, the operations table (cdcs-operations.ts) and COS-style XML for results and errors.
 * Everything else — the listener, the pipeline, the store, the audit wrapper — is shared with any
 * other dialect.
 */
import type { AuthRequest } from '../auth/auth-request';
import type { Principal } from '../auth/principal';
import type { GatewayConfig } from '../config/schema';
import { renderError } from '../errors/render-error';
import type { Dialect } from '../operations/operation-table';
import { renderCdcsResult } from './cdcs-responses';
import { createCdcsOperations, type CdcsOperationsDependencies } from './cdcs-operations';
import { createCdcsRouter } from './cdcs-router';
import type { QueryParameterRules } from './query-parameters';
import type { Operation } from './route';

export interface CdcsDialectOptions extends CdcsOperationsDependencies {
  readonly server: Pick<GatewayConfig['server'], 'acceptAbsoluteForm' | 'virtualHostSuffixes'>;
  readonly authenticate: (request: AuthRequest) => Promise<Principal>;
  readonly queryParameters?: QueryParameterRules;
}

export function createCdcsDialect(options: CdcsDialectOptions): Dialect<Operation> {
  return {
    router: createCdcsRouter(options.server, options.queryParameters),
    operations: createCdcsOperations(options),
    // The authenticator verifies exactly the identity the router parsed and the operation acts on.
    authenticate: ({ method, target, headers }) => options.authenticate({ method, coffer: target.coffer, key: target.key, addressing: target.addressing, query: target.query, headers }),
    renderResult: renderCdcsResult,
    renderError,
  };
}

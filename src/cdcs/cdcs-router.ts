/**
 * The CDCS dialect's router: the request target parsed once (request-target.ts), its query names
 * checked (query-parameters.ts), the operation chosen (route.ts) and its parameters checked — all
 * before authentication and before any body byte. The listener calls it for every request; what it
 * throws is answered like any other error (logged and counted once).
 */
import type { GatewayConfig } from '../config/schema';
import type { RequestRouter } from '../server/gateway-server';
import { headerValue } from '../server/request-headers';
import { checkOperationParameters, checkQueryNames, queryParameterRules, type QueryParameterRules } from './query-parameters';
import { parseRequestTarget } from './request-target';
import { route, type Operation } from './route';

export function createCdcsRouter(config: Pick<GatewayConfig['server'], 'acceptAbsoluteForm' | 'virtualHostSuffixes'>, rules: QueryParameterRules = queryParameterRules()): RequestRouter<Operation> {
  return {
    parseTarget: (rawTarget, headers) => parseRequestTarget(rawTarget, { acceptAbsoluteForm: config.acceptAbsoluteForm, hostHeader: headerValue(headers, 'host'), virtualHostSuffixes: config.virtualHostSuffixes }),
    route: (method, target) => {
      checkQueryNames(target.query, rules);
      const operation = route(method, target);
      checkOperationParameters(operation.name, target.query, rules);
      return operation;
    },
  };
}

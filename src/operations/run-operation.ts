/**
 * The operation pipeline, the same for every dialect: authenticate → (coffer operations: authorize,
 * coffer context, assume role) → the entry's `prepare` → accept the body (100 Continue now, and only
 * now) → `run` → write the answer. Stored data that fails authentication becomes
 * IntegrityCheckFailed on the way out. Errors are not answered here: they go back to the listener's
 * one error path, which renders them (or ends a kept-alive body, or resets) and reports the request
 * once to the metrics and audit wrapper (src/observability/request-observer.ts).
 */
import { authorize, isAllowed } from '../auth/authorize';
import { policyActionOf, type PolicyDecision } from '../auth/coffer-policy';
import type { Principal } from '../auth/principal';
import { GatewayError } from '../errors/gateway-error';
import { IntegrityError } from '../format/integrity-error';
import type { GatewayHandler } from '../server/gateway-server';
import type { GatewayRequest, GatewayResponse, NamedOperation } from '../server/gateway-exchange';
import type { CofferContext } from '../store/coffer-context';
import type { Answer, Dialect, OperationCall, OperationEntry } from './operation-table';

export interface CofferResolver {
  /** The coffer's context for this principal (role credentials are per session), or NoSuchCoffer. */
  contextFor(coffer: string, principal: Principal): Promise<CofferContext>;
}

export interface PipelineOptions {
  readonly coffers: CofferResolver;
  /** A kept-alive answer commits to 200 and starts sending whitespace after this long (server.completeKeepAliveMs). */
  readonly keepAliveMs: number;
  /** Called when a kept-alive answer commits its 200 (metrics). */
  readonly onKeptAlive?: () => void;
  /** Coffer policies (store/coffer-policies.ts); absent: the configured grants alone decide. */
  readonly policies?: PolicyAuthority;
}

/** What the pipeline asks of coffer policies: authorization = configured grants + the coffer's policy, an explicit deny wins. */
export interface PolicyAuthority {
  /** The qcs principals the caller is (configuration); a caller with none can be refused by a policy but never granted. */
  principalsOf(principal: Principal): readonly string[];
  decide(context: CofferContext, request: { readonly principals: readonly string[]; readonly action: NonNullable<ReturnType<typeof policyActionOf>>; readonly key: string | undefined; readonly sourceIp?: string }): Promise<PolicyDecision>;
}

/** Stored data that fails authentication is IntegrityCheckFailed to the client; everything else passes through. */
export function asClientError(error: unknown): unknown {
  return error instanceof IntegrityError ? new GatewayError('IntegrityCheckFailed', undefined, { reason: error.reason, cause: error }) : error;
}

export function createOperationHandler<Operation extends NamedOperation>(dialect: Dialect<Operation>, options: PipelineOptions): GatewayHandler<Operation> {
  const table = dialect.operations as unknown as Readonly<Record<string, OperationEntry<Operation, unknown>>>;
  return async (request, response) => {
    const entry = table[request.operation.name];
    if (entry === undefined) throw new GatewayError('InternalError', `No table entry for ${request.operation.name}.`);
    try {
      await execute(dialect, options, entry, request, response);
    } catch (error) {
      throw asClientError(error);
    }
  };
}

async function execute<Operation extends NamedOperation>(dialect: Dialect<Operation>, options: PipelineOptions, entry: OperationEntry<Operation, unknown>, request: GatewayRequest<Operation>, response: GatewayResponse): Promise<void> {
  const principal = await dialect.authenticate(request);
  request.principal = principal.id;
  const { target } = request;
  let context: CofferContext | undefined;
  if (entry.scope === 'coffer') {
    const coffer = target.coffer;
    if (coffer === undefined) throw new GatewayError('InternalError', `${request.operation.name} was routed without a coffer.`);
    const granted = isAllowed(principal.grants, coffer, entry.action);
    const policyAction = policyActionOf(request.operation.name);
    const policyPrincipals = options.policies?.principalsOf(principal) ?? [];
    // Without a grant, only a caller a policy could name gets as far as reading the policy (others
    // learn nothing, not even whether the coffer exists).
    if (!granted && (policyAction === undefined || policyPrincipals.length === 0)) authorize(principal, coffer, entry.action);
    context = await options.coffers.contextFor(coffer, principal);
    await context.assumeRole?.();
    if (options.policies !== undefined && policyAction !== undefined) {
      const decision = await options.policies.decide(context, { principals: policyPrincipals, action: policyAction, key: target.key, ...(request.remoteAddress === undefined ? {} : { sourceIp: request.remoteAddress }) });
      if (decision === 'deny') throw new GatewayError('AccessDenied', "The coffer's policy denies this request.", { reason: 'policy-deny' });
      if (!granted && decision !== 'allow') authorize(principal, coffer, entry.action);
    }
  }
  const coffer = target.coffer;
  const key = target.key;
  const call: OperationCall<Operation> = {
    request,
    operation: request.operation,
    principal,
    // A service-scoped entry has no coffer: reaching for one is a bug, refused rather than undefined.
    get context(): CofferContext {
      if (context === undefined) throw new GatewayError('InternalError', `${request.operation.name} has no coffer context.`);
      return context;
    },
    get coffer(): string {
      if (coffer === undefined) throw new GatewayError('InternalError', `${request.operation.name} names no coffer.`);
      return coffer;
    },
    get key(): string {
      if (key === undefined) throw new GatewayError('InternalError', `${request.operation.name} names no object key.`);
      return key;
    },
  };
  const prepared = await entry.prepare(call);
  try {
    // Everything that can refuse the request without its body has run: only now may the client send it.
    const body = entry.body === undefined ? undefined : request.acceptBody({ ...(entry.body.maxBytes === undefined ? {} : { maxBytes: entry.body.maxBytes }) });
    const answer = await entry.run(prepared, body, call);
    await writeAnswer(dialect, options, answer, response);
  } finally {
    entry.release?.(prepared);
  }
}

async function writeAnswer<Operation extends NamedOperation>(dialect: Dialect<Operation>, options: PipelineOptions, answer: Answer, response: GatewayResponse): Promise<void> {
  switch (answer.kind) {
    case 'empty':
      response.send(answer.status, answer.headers ?? {});
      return;
    case 'document':
      response.send(answer.status, { ...answer.headers, 'content-type': 'application/xml' }, dialect.renderResult(answer.result));
      return;
    case 'object':
      await response.stream(answer.status, answer.headers, answer.chunks);
      return;
    case 'kept-alive':
      await response.keepAliveWhile(options.keepAliveMs, async (keptAlive) => dialect.renderResult(await answer.work(keptAlive)), options.onKeptAlive);
      return;
  }
}

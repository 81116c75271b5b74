/**
 * The query parameters the gateway knows, spelled exactly as CDCS/COS spell them, and which operation
 * acts on each. This is the parameter half of the request identity (docs/ARCHITECTURE.md, "Request
 * identity"): the COS signature compares parameter names case-insensitively (it lower-cases them),
 * while the router and the handler read them exactly, so a name that is not exactly one of these
 * could be signed as one parameter and acted on as another, or signed and then silently ignored.
 * Hence, before authentication:
 * - a name that differs only in case from a known one (`UPLOADID`, `Prefix`) → 400 InvalidArgument
 *   naming it;
 * - a known name given twice → 400 InvalidArgument;
 * - a name the gateway does not know (`acl`, `versionId`, `tagging`, …) → 400 InvalidArgument: the
 *   gateway implements none of those sub-resources, and ignoring one would turn, say, a signed
 *   GetObjectAcl into a GetObject;
 * - a known name the routed operation does not act on (`prefix` on a PutObject, anything on
 *   GetService) → 400 InvalidArgument.
 * So every parameter a request carries is acted on, and (COS signatures) every one of them is signed.
 * Credential parameters (the presigned `q-*` fields, security tokens, the configured JWT parameter)
 * are the authenticator's; they are exempt from the per-operation check but not from the spelling check.
 */
import { COS_AUTH_FIELDS } from '../auth/cos-auth-fields';
import { GatewayError } from '../errors/gateway-error';
import { isKeyText, type QueryPair } from './request-target';
import type { OperationName } from './route';

/** GetObject/HeadObject response-header overrides (S3 and COS). */
export const RESPONSE_OVERRIDES = {
  'response-content-type': 'content-type',
  'response-content-language': 'content-language',
  'response-expires': 'expires',
  'response-cache-control': 'cache-control',
  'response-content-disposition': 'content-disposition',
  'response-content-encoding': 'content-encoding',
} as const;

const RESPONSE_OVERRIDE_NAMES = Object.keys(RESPONSE_OVERRIDES);

/** The parameters each operation acts on. The selectors `uploads`, `uploadId`, `partNumber` are among them. */
export const OPERATION_PARAMETERS: Readonly<Record<OperationName, readonly string[]>> = {
  GetService: [],
  GetCoffer: ['prefix', 'delimiter', 'marker', 'max-keys', 'encoding-type'],
  ListMultipartUploads: ['uploads', 'prefix', 'key-marker', 'upload-id-marker', 'max-uploads'],
  InitiateMultipartUpload: ['uploads'],
  UploadPart: ['partNumber', 'uploadId'],
  ListParts: ['uploadId', 'max-parts', 'part-number-marker'],
  CompleteMultipartUpload: ['uploadId'],
  AbortMultipartUpload: ['uploadId'],
  PutObject: [],
  GetObject: RESPONSE_OVERRIDE_NAMES,
  HeadObject: RESPONSE_OVERRIDE_NAMES,
  PutCofferLifecycle: ['lifecycle'],
  GetCofferLifecycle: ['lifecycle'],
  PutCofferPolicy: ['policy'],
  GetCofferPolicy: ['policy'],
  DeleteCofferPolicy: ['policy'],
  PutCoffer: [],
  DeleteCoffer: [],
};

/** Every operation parameter the gateway knows. */
export const KNOWN_PARAMETERS: ReadonlySet<string> = new Set(Object.values(OPERATION_PARAMETERS).flat());

/** Credential parameters every gateway knows; the configured JWT query parameter is added per gateway. */
export const CREDENTIAL_PARAMETERS: readonly string[] = [...COS_AUTH_FIELDS, 'x-cos-security-token', 'x-cdcs-security-token'];

function invalid(message: string, reason: string): GatewayError {
  return new GatewayError('InvalidArgument', message, { reason });
}

/** A name for a message: JSON-quoted and bounded (it is attacker-controlled). */
function shown(name: string): string {
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
}

export interface QueryParameterRules {
  /** Names the authentication stage reads (CREDENTIAL_PARAMETERS plus a configured JWT parameter). */
  readonly credentialParameters: ReadonlySet<string>;
}

/**
 * The spelling, repetition and value checks (before routing). Values of operation parameters must be
 * text an XML answer can carry back (prefix, marker, … are echoed in listings).
 */
export function checkQueryNames(query: ReadonlyArray<QueryPair>, rules: QueryParameterRules): void {
  const seen = new Set<string>();
  for (const [name, value] of query) {
    if (rules.credentialParameters.has(name)) continue;
    if (!KNOWN_PARAMETERS.has(name)) {
      const lower = name.toLowerCase();
      const meant = [...KNOWN_PARAMETERS, ...rules.credentialParameters].find((known) => known.toLowerCase() === lower);
      if (meant !== undefined) throw invalid(`The query parameter ${shown(name)} is not spelled ${shown(meant)}; parameter names are case-sensitive.`, 'parameter-case');
      throw invalid(`The query parameter ${shown(name)} is not supported by this gateway.`, 'parameter-unknown');
    }
    if (seen.has(name)) throw invalid(`The query parameter ${shown(name)} appears more than once.`, 'parameter-repeated');
    seen.add(name);
    if (value !== null && !isKeyText(value)) throw invalid(`The value of the query parameter ${shown(name)} contains a control character or a character XML 1.0 cannot carry.`, 'parameter-value');
  }
}

/** Refuses a known parameter that the routed operation would not act on (after routing). */
export function checkOperationParameters(operation: OperationName, query: ReadonlyArray<QueryPair>, rules: QueryParameterRules): void {
  const accepted = OPERATION_PARAMETERS[operation];
  for (const [name] of query) {
    if (rules.credentialParameters.has(name) || accepted.includes(name)) continue;
    throw invalid(`The query parameter ${shown(name)} does not apply to ${operation}.`, 'parameter-not-applicable');
  }
}

/** The rules for a gateway whose JWT token parameter (if any) is `jwtQueryParam`. */
export function queryParameterRules(jwtQueryParam?: string): QueryParameterRules {
  return { credentialParameters: new Set([...CREDENTIAL_PARAMETERS, ...(jwtQueryParam === undefined ? [] : [jwtQueryParam])]) };
}

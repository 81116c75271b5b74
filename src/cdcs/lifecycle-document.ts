/**
 * The body of PutCofferLifecycle and GetCofferLifecycle (pure). CDCS documents a JSON body,
 * `{"Rule":[{"Expiration":{"Days":N}}]}` with 1 ≤ N ≤ 3650; the official COS SDK
 * (putBucketLifecycle / getBucketLifecycle) sends and parses the COS XML form,
 * `<LifecycleConfiguration><Rule><ID/><Status>Enabled</Status><Filter><Prefix/></Filter><Expiration><Days>N</Days></Expiration></Rule></LifecycleConfiguration>`.
 * Both are accepted; a configuration is answered back in the form it was put in.
 *
 * A coffer's rule has no filter: it applies to every object of the coffer. Exactly one rule is
 * accepted (two unfiltered rules would overlap); anything the gateway would not act on — a prefix or
 * tag filter, a disabled rule, transitions, a date — is refused (InvalidLifeCycle) rather than
 * silently ignored. A body that does not parse is MalformedXML (the CDCS code for a malformed body);
 * Days outside 1..3650 is InvalidArgument, as the CDCS page for PutCofferLifecycle lists.
 */
import { GatewayError } from '../errors/gateway-error';
import { MAX_LIFECYCLE_DAYS, type LifecycleDocument } from '../store/coffer-lifecycle';
import { parseXmlDocument, toXml } from './xml';

/** Far above any valid document in either form. */
export const MAX_LIFECYCLE_BODY_BYTES = 64 * 1024;

export { MAX_LIFECYCLE_DAYS, type LifecycleDocument } from '../store/coffer-lifecycle';

const invalidLifecycle = (message: string): GatewayError => new GatewayError('InvalidLifeCycle', message);

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function onlyFields(value: Record<string, unknown>, allowed: readonly string[], where: string): void {
  const extra = Object.keys(value).find((name) => !allowed.includes(name));
  if (extra !== undefined) throw invalidLifecycle(`${where} has an element the gateway does not support: ${JSON.stringify(extra.slice(0, 64))}.`);
}

function checkDays(days: unknown): number {
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > MAX_LIFECYCLE_DAYS) {
    throw new GatewayError('InvalidArgument', `Expiration.Days must be an integer from 1 to ${MAX_LIFECYCLE_DAYS}.`);
  }
  return days;
}

function parseJson(text: string): LifecycleDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new GatewayError('MalformedXML', 'The lifecycle configuration is not valid JSON.');
  }
  const top = record(value);
  if (top === undefined) throw invalidLifecycle('The lifecycle configuration must be a JSON object with a "Rule" array.');
  onlyFields(top, ['Rule'], 'The lifecycle configuration');
  const rules = top['Rule'];
  if (!Array.isArray(rules) || rules.length !== 1) throw invalidLifecycle('The lifecycle configuration must have exactly one Rule.');
  const rule = record(rules[0]);
  if (rule === undefined) throw invalidLifecycle('A Rule must be an object.');
  onlyFields(rule, ['Expiration'], 'Rule');
  const expiration = record(rule['Expiration']);
  if (expiration === undefined) throw invalidLifecycle('The Rule must have an Expiration with Days.');
  onlyFields(expiration, ['Days'], 'Expiration');
  return { days: checkDays(expiration['Days']), form: 'json' };
}

function parseXml(body: Buffer): LifecycleDocument {
  const top = parseXmlDocument(body, 'LifecycleConfiguration', ['LifecycleConfiguration.Rule']);
  onlyFields(top, ['Rule'], 'LifecycleConfiguration');
  const rules = top['Rule'];
  if (!Array.isArray(rules) || rules.length !== 1) throw invalidLifecycle('The lifecycle configuration must have exactly one Rule.');
  const rule = record(rules[0]);
  if (rule === undefined) throw invalidLifecycle('The Rule must have an Expiration with Days.');
  onlyFields(rule, ['ID', 'Status', 'Filter', 'Prefix', 'Expiration'], 'Rule');
  const ruleId = rule['ID'];
  if (ruleId !== undefined && (typeof ruleId !== 'string' || ruleId.length > 255)) throw invalidLifecycle('The rule ID must be text of at most 255 characters.');
  if (rule['Status'] !== 'Enabled') throw invalidLifecycle('The rule Status must be Enabled (a coffer has one rule; a disabled rule would expire nothing).');
  // A filter may be present only if it selects everything: a coffer's rule applies to the whole coffer.
  const filter = rule['Filter'];
  if (filter !== undefined && filter !== '') {
    const filterFields = record(filter);
    if (filterFields === undefined) throw invalidLifecycle('The rule Filter is not understood.');
    onlyFields(filterFields, ['Prefix'], 'Filter');
    if (filterFields['Prefix'] !== undefined && filterFields['Prefix'] !== '') throw invalidLifecycle('A coffer lifecycle rule applies to the whole coffer; a prefix filter is not supported.');
  }
  if (rule['Prefix'] !== undefined && rule['Prefix'] !== '') throw invalidLifecycle('A coffer lifecycle rule applies to the whole coffer; a prefix filter is not supported.');
  const expiration = record(rule['Expiration']);
  if (expiration === undefined) throw invalidLifecycle('The Rule must have an Expiration with Days.');
  onlyFields(expiration, ['Days'], 'Expiration');
  const rawDays = expiration['Days'];
  const days = typeof rawDays === 'string' && /^[0-9]{1,9}$/.test(rawDays) ? Number(rawDays) : Number.NaN;
  return { days: checkDays(days), form: 'xml', ...(typeof ruleId === 'string' && ruleId !== '' ? { ruleId } : {}) };
}

/** Parses either form: a body whose first non-blank character is `<` is XML, anything else JSON. */
export function parseLifecycleDocument(body: Buffer): LifecycleDocument {
  if (body.length > MAX_LIFECYCLE_BODY_BYTES) throw new GatewayError('EntityTooLarge', `A lifecycle configuration may hold at most ${MAX_LIFECYCLE_BODY_BYTES} bytes.`);
  const text = body.toString('utf8');
  return text.trimStart().startsWith('<') ? parseXml(body) : parseJson(text);
}

/** GetCofferLifecycle's answer, in the form the configuration was put in. */
export function renderLifecycleDocument(document: LifecycleDocument): { readonly contentType: string; readonly body: string } {
  if (document.form === 'json') return { contentType: 'application/json', body: JSON.stringify({ Rule: [{ Expiration: { Days: document.days } }] }) };
  return {
    contentType: 'application/xml',
    body: toXml({ LifecycleConfiguration: { Rule: [{ ID: document.ruleId ?? 'coffer-expiration', Filter: { Prefix: '' }, Status: 'Enabled', Expiration: { Days: document.days } }] } }),
  };
}

/**
 * Conditional GET/HEAD (RFC 9110 §13): If-Match, If-Unmodified-Since, If-None-Match,
 * If-Modified-Since, evaluated in the RFC's order, and If-Range for ranged GETs. Pure.
 *
 * Object ETags are strong validators: they are derived from the plaintext MD5s recorded in the
 * authenticated manifest, so every replica computes the same one and it never changes (objects are
 * write-once). Last-Modified is the manifest's completion time in whole seconds.
 *
 * Where S3 departs from the RFC (it answers 304 when If-None-Match fails but If-Modified-Since holds),
 * this follows the RFC: a present If-None-Match makes If-Modified-Since irrelevant.
 */
export interface Validators {
  readonly etag: string;
  readonly lastModified: Date;
}

export interface ConditionalHeaders {
  readonly ifMatch?: string;
  readonly ifNoneMatch?: string;
  readonly ifModifiedSince?: string;
  readonly ifUnmodifiedSince?: string;
  readonly ifRange?: string;
}

export type PreconditionOutcome = 'proceed' | 'not-modified' | 'failed';

/** Entity tags of an If-Match / If-None-Match value: `*`, or the list of tags (weak ones marked). */
export function parseEntityTags(value: string): '*' | Array<{ tag: string; weak: boolean }> {
  const trimmed = value.trim();
  if (trimmed === '*') return '*';
  const tags: Array<{ tag: string; weak: boolean }> = [];
  const pattern = /\s*(W\/)?("[^"]*"|[^,\s]+)\s*(?:,|$)/gy;
  let match: RegExpExecArray | null;
  while (pattern.lastIndex < trimmed.length && (match = pattern.exec(trimmed)) !== null) {
    const raw = match[2] as string;
    // Clients differ on quoting (some send the bare hex); compare the opaque part.
    tags.push({ tag: raw.startsWith('"') ? raw.slice(1, -1) : raw, weak: match[1] !== undefined });
  }
  return tags;
}

const opaque = (etag: string): string => (etag.startsWith('"') && etag.endsWith('"') ? etag.slice(1, -1) : etag);

function matches(value: string, etag: string, strong: boolean): boolean {
  const tags = parseEntityTags(value);
  if (tags === '*') return true;
  return tags.some((t) => t.tag === opaque(etag) && !(strong && t.weak));
}

/** An HTTP-date in seconds, or undefined when the value is not a date (the header is then ignored, per RFC). */
function httpDateSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

export function evaluatePreconditions(headers: ConditionalHeaders, object: Validators): PreconditionOutcome {
  const modified = Math.floor(object.lastModified.getTime() / 1000);
  if (headers.ifMatch !== undefined) {
    if (!matches(headers.ifMatch, object.etag, true)) return 'failed';
  } else {
    const since = httpDateSeconds(headers.ifUnmodifiedSince);
    if (since !== undefined && modified > since) return 'failed';
  }
  if (headers.ifNoneMatch !== undefined) {
    if (matches(headers.ifNoneMatch, object.etag, false)) return 'not-modified';
  } else {
    const since = httpDateSeconds(headers.ifModifiedSince);
    if (since !== undefined && modified <= since) return 'not-modified';
  }
  return 'proceed';
}

/**
 * Whether a Range may be applied (RFC 9110 §13.1.5): without If-Range, yes; with an entity tag, only
 * on a strong match; with a date, only when it equals Last-Modified exactly. Otherwise the whole
 * object is sent (200), so a client resuming a download never splices bytes of two versions.
 */
export function rangeApplies(headers: ConditionalHeaders, object: Validators): boolean {
  const value = headers.ifRange?.trim();
  if (value === undefined || value === '') return true;
  if (value.startsWith('"') || value.startsWith('W/')) {
    const tags = parseEntityTags(value);
    return tags !== '*' && tags.length === 1 && !(tags[0] as { weak: boolean }).weak && (tags[0] as { tag: string }).tag === opaque(object.etag);
  }
  const date = httpDateSeconds(value);
  return date !== undefined && date === Math.floor(object.lastModified.getTime() / 1000);
}

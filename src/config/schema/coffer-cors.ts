/** A coffer's CORS section: the web origins whose pages may call it. */
import { z } from 'zod';
import { parseOriginPattern } from '../../http/origin-pattern';

/**
 * CORS for browser clients (src/server/browser-cors.ts): the web origins whose pages may call a coffer.
 * Checked here to be in the form browsers send, so a request only ever compares strings.
 */
export function corsSchema(defaultOrigins: readonly string[]) {
  return z
    .strictObject({
      /** Origins exactly as browsers send them: "https://app.example.com", "http://localhost:8080"
       * (lower case, no default port, no path or trailing slash); "<scheme>://<host>:*" for any port.
       * "*" is not accepted. Empty: no browser page may call the coffer. */
      allowedOrigins: z
        .array(
          z.string().refine((text) => parseOriginPattern(text) !== undefined, {
            error: 'must be an origin as browsers send it: "https://app.example.com" or "http://localhost:8080" (lower case, no default port, no path or trailing slash), or "<scheme>://<host>:*" for any port; "*" is not accepted',
          }),
        )
        .max(100)
        .default([...defaultOrigins]),
    })
    .prefault({});
}

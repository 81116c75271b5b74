/**
 * `cofferClasses`: the classes within which PUT Coffer creates coffers at run time (README "Creating
 * and deleting coffers"). A class is a name pattern plus the settings every coffer created in it
 * has — the same upstream, role and KMS settings a configured coffer has (its `upstream.prefix` is
 * the class's base prefix: a created coffer lives under `<base prefix><coffer name>/<generation>/`)
 * — plus who may create in it. Kept in its own file so the root schema gains a single line.
 */
import { z } from 'zod';

/**
 * A class's name pattern: starting with "^", a regular expression (anchored at both ends, "$" or
 * not); anything else, a glob (`*` any run of characters, `?` one character, everything else literal).
 */
export function cofferNamePattern(raw: string): RegExp {
  if (raw.startsWith('^')) return new RegExp(`^(?:${raw.slice(1).replace(/\$$/, '')})$`);
  const escaped = raw.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`));
  return new RegExp(`^${escaped}$`);
}

/**
 * `coffer` builds the schema of a configured coffer (src/config/schema.ts), so a class validates its
 * upstream, role and KMS exactly as `coffers.<name>` does.
 */
export function cofferClassesSchema<CofferSchema extends z.ZodType>(coffer: CofferSchema) {
  return z
    .record(
      z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a class name: lowercase letters, digits and "-"'),
      z.strictObject({
        /**
         * The coffer names of this class: a glob (`*`, `?`, e.g. "team-*-1250000000"), or a regular
         * expression if it starts with "^"; anchored at both ends either way. A name must also be a
         * valid coffer name ("<name>-<APPID>").
         */
        pattern: z
          .string()
          .min(1)
          .superRefine((raw, ctx) => {
            try {
              cofferNamePattern(raw);
            } catch {
              ctx.addIssue({ code: 'custom', message: 'must be a glob or a valid regular expression' });
            }
          }),
        /** The settings of every coffer created in this class (upstream bucket, endpoint, credentials, role, kms; upstream.prefix = the base prefix). */
        coffer,
        /**
         * The qcs principals (as `policies.principals` maps callers to them) who may create coffers in
         * this class; a caller with the `manage` action on every coffer (a `*` grant) may too. The
         * creator's principals get a coffer policy allowing them `name/cdcs:*` on the new coffer.
         */
        creators: z.array(z.string().regex(/^qcs::cam::\S+$/, 'must be a principal such as "qcs::cam::uin/100000000001:uin/100000000011"')).default([]),
      }),
    )
    .default({});
}

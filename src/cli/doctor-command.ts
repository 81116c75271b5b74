/**
 * `coffer-gateway doctor`: checks what the gateway depends on before it has to. First the
 * configuration (every problem, as loadConfig reports them); then, per coffer, each dependency on its
 * own line, so a broken one is named rather than inferred: the credentials (STS AssumeRole, or the
 * static / default-chain credentials), the key provider (a data key generated and unwrapped with the
 * coffer's encryption context), the upstream bucket (listed; a probe object written, read back and
 * deleted) and, when cheap, the upstream's minimum part size. Nothing secret is printed: checks report
 * names, endpoints and error codes, which is what the gateway's own error messages contain.
 *
 * The probe lives at `<prefix>doctor/<random>`: every area of the layout (docs/FORMAT.md §8) is one
 * letter and a slash (m/ d/ u/ p/ s/), so no probe name can fall into one, and the gateway never lists
 * `<prefix>` as a whole.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { GatewayConfig } from '../config';
import { ConfigError } from '../config';
import { GatewayError } from '../errors/gateway-error';
import { encryptionContext } from '../store/coffer-context';
import { CONFIG_HELP, CONFIG_OPTION, HELP_OPTION, UsageError, parseCommandArgs } from './args';
import { cofferClassesOf } from '../app/coffer-classes';
import { WRAP_LIMIT, type LocalKeyring } from '../keys/local-keyring';
import { describeError, loadCliConfig, openClasses, openCoffer, type OpenedCoffer } from './cli-coffer';
import { EXIT_FAILURE, EXIT_OK, type CliIo } from './cli-io';

export const DOCTOR_HELP = `Usage: coffer-gateway doctor [-c <config>] [--coffer <name> | --class <class>] [--quick] [--json]

Checks the configuration (every problem at once), then for each coffer: its credentials (STS
AssumeRole, or the static / default-chain credentials), its key provider (a data key generated and
unwrapped with the coffer's encryption context), its upstream bucket (listed; a probe object
<prefix>doctor/<random> written, read back and deleted) and the upstream's minimum part size (a
multipart upload of one upstream.minPartSize part and one 1-byte part, completed and deleted).
Then the same for each coffer class (\`cofferClasses\`: the bucket, role and KMS key every coffer
created in it uses; the key check uses the class key's encryption context {coffer: "_class.<class>"},
the probe is <base prefix>doctor/<random>), and its registrations: every created coffer's must open
under the class key.

Options:
${CONFIG_HELP}
      --coffer <name>   Only this coffer.
      --class <class>   Only this coffer class.
      --quick           Skip the part-size check (it uploads upstream.minPartSize bytes).
      --json            Machine-readable report on stdout.
  -h, --help            Show this help.

Exit code 0 only if every check passed.
`;

const OPTIONS = {
  ...CONFIG_OPTION,
  ...HELP_OPTION,
  coffer: { type: 'string' },
  class: { type: 'string' },
  quick: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/** The part-size check uploads minPartSize bytes; above this it is skipped as not cheap. */
const PART_SIZE_CHECK_LIMIT = 16 * 1024 * 1024;

export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  readonly check: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

export interface CofferReport {
  readonly coffer: string;
  readonly checks: CheckResult[];
}

export interface ClassReport {
  readonly class: string;
  readonly checks: CheckResult[];
}

export interface DoctorReport {
  readonly ok: boolean;
  readonly configuration: { readonly ok: boolean; readonly problems: readonly string[]; readonly coffers: number; readonly classes: number };
  readonly coffers: CofferReport[];
  readonly classes: ClassReport[];
}

/** `<prefix>doctor/<random>`: outside every area of the layout (one letter and a slash). */
export function probeKey(prefix: string, random: string): string {
  return `${prefix}doctor/${random}`;
}

async function readBody(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

class Checks {
  readonly results: CheckResult[] = [];
  pass(check: string, detail: string): void {
    this.results.push({ check, status: 'pass', detail });
  }
  fail(check: string, detail: string): void {
    this.results.push({ check, status: 'fail', detail });
  }
  skip(check: string, detail: string): void {
    this.results.push({ check, status: 'skip', detail });
  }
  /** Runs a check: its detail on success, `<what failed>: <why>` on failure. */
  async run(check: string, body: () => Promise<string>): Promise<boolean> {
    try {
      this.pass(check, await body());
      return true;
    } catch (error) {
      this.fail(check, describeError(error));
      return false;
    }
  }
}

/** An error whose message already says what failed, in the check's words. */
function failed(message: string, cause?: unknown): Error {
  return new Error(cause === undefined ? message : `${message}: ${describeError(cause)}`);
}

async function checkCredentials(checks: Checks, opened: OpenedCoffer): Promise<boolean> {
  const settings = opened.coffer.config;
  const role = settings.role;
  if (role.type === 'sts') {
    return checks.run('credentials', async () => {
      let expiration: Date | undefined;
      try {
        expiration = (await opened.coffer.credentialsFor(SESSION)()).expiration;
      } catch (error) {
        throw failed(`cannot assume ${role.roleArn}`, error);
      }
      const until = expiration === undefined ? '' : `, valid until ${expiration.toISOString()}`;
      return `assumed ${role.roleArn} through STS ${role.endpoint ?? `(AWS, ${role.region ?? settings.upstream.region})`}${until}`;
    });
  }
  if (settings.upstream.credentials !== undefined) {
    // Static keys cannot be checked on their own: the upstream and KMS checks below use them.
    checks.pass('credentials', 'static keys from the configuration (used by the checks below)');
    return true;
  }
  return checks.run('credentials', async () => {
    try {
      await opened.coffer.credentialsFor(SESSION)();
    } catch (error) {
      throw failed('the AWS default credential chain found no credentials', error);
    }
    return 'the AWS default credential chain resolved credentials';
  });
}

async function checkKeys(checks: Checks, opened: OpenedCoffer, config: GatewayConfig, probe: string): Promise<void> {
  const kms = opened.coffer.config.kms;
  const context = encryptionContext(opened.name, probe);
  await checks.run('key provider', async () => {
    let dataKey;
    try {
      dataKey = await opened.keys.generateDataKey(context);
    } catch (error) {
      if (kms.type === 'local' && error instanceof GatewayError && error.reason === 'key-not-found' && config.keyring.create) {
        return `local key ${kms.keyId} does not exist yet in ${config.keyring.directory}; the gateway creates it on first use (keyring.create)`;
      }
      throw failed(kms.type === 'local' ? `local key ${kms.keyId}: cannot generate a data key` : `KMS key ${kms.keyId}: GenerateDataKey failed`, error);
    }
    try {
      let plaintext: Buffer;
      try {
        plaintext = await opened.keys.decryptDataKey(dataKey.wrapped, context, dataKey.keyId);
      } catch (error) {
        throw failed(kms.type === 'local' ? `local key ${kms.keyId}: cannot unwrap the data key it made` : `KMS key ${kms.keyId}: Decrypt failed`, error);
      }
      const same = plaintext.equals(dataKey.plaintext);
      plaintext.fill(0);
      if (!same) throw failed('the unwrapped data key differs from the generated one');
    } finally {
      dataKey.plaintext.fill(0);
    }
    if (kms.type !== 'local') return `KMS key ${dataKey.keyId}: GenerateDataKey and Decrypt with the coffer's encryption context`;
    // Random GCM nonces under one master key: the keyring counts wraps against 2^32 (docs/FORMAT.md §9).
    const wrapCount = (opened.keys as Partial<Pick<LocalKeyring, 'wrapCount'>>).wrapCount;
    const used = wrapCount === undefined ? undefined : await wrapCount(kms.keyId);
    const share = used === undefined ? '' : `; ${used} of ${WRAP_LIMIT} wraps used (${((used / WRAP_LIMIT) * 100).toFixed(4)}%; rotate to a new key id well before the limit)`;
    return `local keyring key ${kms.keyId}: data key generated and unwrapped with the coffer's encryption context${share}`;
  });
}

/** `listPrefix`: what the read check lists (a coffer's manifests; a class's registrations). */
async function checkUpstream(checks: Checks, opened: OpenedCoffer, quick: boolean, listPrefix = opened.layout.manifestPrefix()): Promise<void> {
  const upstream = opened.coffer.config.upstream;
  const where = `bucket ${upstream.bucket} at ${upstream.endpoint}`;
  const store = opened.store();
  const prefix = opened.coffer.prefix ?? '';
  const reachable = await checks.run('upstream read', async () => {
    try {
      await store.listObjects(listPrefix, { maxKeys: 1 });
    } catch (error) {
      throw failed(`cannot list ${where}`, error);
    }
    return `${where}: listed ${listPrefix || '(bucket root)'}`;
  });
  if (!reachable) {
    checks.skip('upstream write', 'skipped: the bucket cannot be read');
    if (!quick) checks.skip('upstream part size', 'skipped: the bucket cannot be read');
    return;
  }

  const key = probeKey(prefix, randomBytes(12).toString('hex'));
  const writable = await checks.run('upstream write', async () => {
    const body = randomBytes(64);
    try {
      await store.putObject(key, { body });
    } catch (error) {
      throw failed(`cannot write ${key} to ${where}`, error);
    }
    // Written: from here on the probe is deleted whatever else fails.
    try {
      let back: Buffer;
      try {
        back = await readBody((await store.getObject(key)).body);
      } catch (error) {
        throw failed(`wrote ${key} but cannot read it back`, error);
      }
      if (!back.equals(body)) throw failed(`${key} read back differs from what was written`);
    } finally {
      try {
        await store.deleteObjects([key]);
      } catch (error) {
        // Reported even when the read failed: an object left behind is worth knowing about.
        checks.fail('upstream delete', `cannot delete the probe ${key}; remove it by hand: ${describeError(error)}`);
      }
    }
    return `${where}: wrote, read back and deleted ${key}`;
  });
  if (quick) return;
  if (!writable) {
    checks.skip('upstream part size', 'skipped: the bucket cannot be written');
    return;
  }
  const minPartSize = upstream.minPartSize;
  if (minPartSize > PART_SIZE_CHECK_LIMIT) {
    checks.skip('upstream part size', `skipped: upstream.minPartSize ${minPartSize} is too large to upload as a check`);
    return;
  }
  const partsKey = `${key}-parts`;
  await checks.run('upstream part size', async () => {
    let uploadId: string;
    try {
      ({ uploadId } = await store.createMultipartUpload(partsKey));
    } catch (error) {
      throw failed(`cannot start a multipart upload of ${partsKey}`, error);
    }
    let completed = false;
    try {
      const parts: Array<{ partNumber: number; etag: string }> = [];
      for (const [partNumber, size] of [
        [1, minPartSize],
        [2, 1],
      ] as const) {
        const { etag } = await store.uploadPart(partsKey, uploadId, partNumber, { body: Readable.from([Buffer.alloc(size)]), contentLength: size });
        parts.push({ partNumber, etag });
      }
      try {
        await store.completeMultipartUpload(partsKey, uploadId, parts);
      } catch (error) {
        throw failed(`the upstream refused a ${minPartSize}-byte part before the last (upstream.minPartSize is below the upstream's minimum)`, error);
      }
      completed = true;
    } finally {
      if (completed) await store.deleteObjects([partsKey]).catch((error: unknown) => checks.fail('upstream delete', `cannot delete the probe ${partsKey}; remove it by hand: ${describeError(error)}`));
      else await store.abortMultipartUpload(partsKey, uploadId).catch(() => undefined);
    }
    return `a ${minPartSize}-byte part followed by a 1-byte part completes (upstream.minPartSize holds); probe deleted`;
  });
}

const SESSION = 'coffer-gateway-doctor';

export async function runDoctor(config: GatewayConfig, options: { coffer?: string; quick?: boolean } = {}): Promise<CofferReport[]> {
  // Checking must not create anything but the probe: no keyring key files (the gateway creates them).
  const checked: GatewayConfig = { ...config, keyring: { ...config.keyring, create: false } };
  const names = options.coffer !== undefined ? [options.coffer] : Object.keys(config.coffers);
  const reports: CofferReport[] = [];
  for (const name of names) {
    const checks = new Checks();
    reports.push({ coffer: name, checks: checks.results });
    if (config.coffers[name] === undefined) {
      if (config.demo.enabled && config.demo.coffer === name) checks.skip('demo coffer', 'embedded upstream and local keyring inside the gateway process; checked when the gateway starts');
      else if (cofferClassesOf(config).some((c) => c.pattern.test(name))) checks.fail('coffer', `${name} is not configured; a coffer class admits the name: check the class with --class`);
      else checks.fail('coffer', `${name} is not configured`);
      continue;
    }
    const opened = openCoffer(checked, name, SESSION);
    try {
      const probe = `doctor/${randomBytes(12).toString('hex')}`;
      const credentials = await checkCredentials(checks, opened);
      const awsKms = opened.coffer.config.kms.type === 'aws-kms';
      if (credentials || !awsKms) await checkKeys(checks, opened, config, probe);
      else checks.skip('key provider', 'skipped: no credentials to call KMS with');
      if (credentials) await checkUpstream(checks, opened, options.quick === true);
      else checks.skip('upstream', 'skipped: no credentials to call the upstream with');
    } finally {
      opened.close();
    }
  }
  if (options.coffer === undefined && config.demo.enabled) {
    reports.push({ coffer: config.demo.coffer, checks: [{ check: 'demo coffer', status: 'skip', detail: 'embedded upstream and local keyring inside the gateway process; checked when the gateway starts' }] });
  }
  return reports;
}

/**
 * Each coffer class: what every coffer created in it depends on — the class's credentials, KMS key
 * (the class key's encryption context) and bucket (read, probe written under the base prefix, part
 * size) — checked through the class's own pseudo-coffer, as the gateway reaches its registry; then
 * its registrations, listed and opened as the gateway's GetService does.
 */
export async function runClassDoctor(config: GatewayConfig, options: { className?: string; quick?: boolean } = {}): Promise<ClassReport[]> {
  const checked: GatewayConfig = { ...config, keyring: { ...config.keyring, create: false } };
  const classes = openClasses(checked, SESSION);
  const reports: ClassReport[] = [];
  try {
    const selected = options.className === undefined ? classes.classes.all : [classes.cofferClass(options.className)];
    for (const cofferClass of selected) {
      const checks = new Checks();
      reports.push({ class: cofferClass.name, checks: checks.results });
      const registry = classes.openRegistry(cofferClass);
      try {
        const probe = `doctor/${randomBytes(12).toString('hex')}`;
        const credentials = await checkCredentials(checks, registry);
        if (credentials || registry.coffer.config.kms.type !== 'aws-kms') await checkKeys(checks, registry, config, probe);
        else checks.skip('key provider', 'skipped: no credentials to call KMS with');
        if (!credentials) {
          checks.skip('upstream', 'skipped: no credentials to call the upstream with');
          continue;
        }
        await checkUpstream(checks, registry, options.quick === true, `${classes.classes.registryPrefix(cofferClass)}r/`);
        await checks.run('registrations', async () => {
          const { created, rejected } = await classes.list(cofferClass);
          if (rejected.length > 0) {
            const first = rejected[0] as { coffer: string; error: unknown };
            throw failed(`${rejected.length} of ${created.length + rejected.length} registrations under ${classes.classes.registryPrefix(cofferClass)}r/ do not open under the class key (first: ${first.coffer})`, first.error);
          }
          return `${created.length === 1 ? '1 created coffer' : `${created.length} created coffers`}; every registration opens under the class key`;
        });
      } finally {
        registry.close();
      }
    }
  } finally {
    classes.close();
  }
  return reports;
}

const SYMBOL: Record<CheckStatus, string> = { pass: '✓', fail: '✗', skip: '–' };

export async function doctorCommand(args: readonly string[], io: CliIo): Promise<number> {
  const values = parseCommandArgs('doctor', args, OPTIONS);
  if (values.help === true) {
    io.stdout.write(DOCTOR_HELP);
    return EXIT_OK;
  }
  const json = values.json === true;
  let config: GatewayConfig;
  try {
    config = loadCliConfig(values.config, io);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const report: DoctorReport = { ok: false, configuration: { ok: false, problems: error.problems, coffers: 0, classes: 0 }, coffers: [], classes: [] };
    if (json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else io.stdout.write(`✗ configuration: ${error.problems.length === 1 ? '1 problem' : `${error.problems.length} problems`}\n${error.problems.map((p) => `    - ${p}`).join('\n')}\n`);
    return EXIT_FAILURE;
  }
  const cofferCount = Object.keys(config.coffers).length + (config.demo.enabled ? 1 : 0);
  if (values.coffer !== undefined && values.class !== undefined) throw new UsageError('give --coffer or --class, not both.\nRun `coffer-gateway doctor --help` for the options.');
  const classCount = Object.keys(config.cofferClasses).length;
  const quick = values.quick === true;
  const coffers = values.class !== undefined ? [] : await runDoctor(config, { ...(values.coffer === undefined ? {} : { coffer: values.coffer }), quick });
  const classes = values.coffer !== undefined ? [] : await runClassDoctor(config, { ...(values.class === undefined ? {} : { className: values.class }), quick });
  const all = [...coffers, ...classes].flatMap((c) => c.checks);
  const failures = all.filter((c) => c.status === 'fail').length;
  const report: DoctorReport = { ok: failures === 0, configuration: { ok: true, problems: [], coffers: cofferCount, classes: classCount }, coffers, classes };
  if (json) {
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    const classesText = classCount === 0 ? '' : `, ${classCount === 1 ? '1 coffer class' : `${classCount} coffer classes`}`;
    const lines = [`✓ configuration: valid (${cofferCount === 1 ? '1 coffer' : `${cofferCount} coffers`}${classesText})`];
    for (const [heading, checks] of [...coffers.map((c) => [`coffer ${c.coffer}`, c.checks] as const), ...classes.map((c) => [`coffer class ${c.class}`, c.checks] as const)]) {
      lines.push(heading);
      for (const check of checks) lines.push(`  ${SYMBOL[check.status]} ${check.check}: ${check.detail}`);
    }
    const passed = all.filter((c) => c.status === 'pass').length;
    lines.push(failures === 0 ? `all ${passed} checks passed` : `${failures} of ${passed + failures} checks failed`);
    io.stdout.write(`${lines.join('\n')}\n`);
  }
  return failures === 0 ? EXIT_OK : EXIT_FAILURE;
}

/**
 * `coffer-gateway decrypt`: recovers one object's plaintext without a running gateway — straight from
 * the coffer's upstream bucket (online), or from its two upstream objects downloaded to files
 * (offline) — with the coffer's configured role and KMS / keyring.
 *
 * Both modes run the gateway's own read path (ObjectService.head + read): manifest AEAD (v1: MAC) and layout,
 * the data object's length, every part header (key commitment) and every segment tag are verified,
 * and a segment's bytes are released only after its tag verified. So on any failure nothing past the
 * last verified byte is ever written: a file is written as `<out>.partial` and renamed only when the
 * whole object (or range) verified; stdout only ever receives verified bytes.
 */
import { existsSync, promises as fs } from 'node:fs';
import { GatewayError } from '../errors/gateway-error';
import { objectEtag } from '../format/manifest';
import { ObjectService } from '../store/object-service';
import { CONFIG_HELP, CONFIG_OPTION, HELP_OPTION, UsageError, parseCommandArgs, required } from './args';
import { CliError, describeError, loadCliConfig, openAnyCoffer, openCofferOffline } from './cli-coffer';
import { EXIT_FAILURE, EXIT_OK, writeChunk, type CliIo } from './cli-io';
import { downloadedObjectStore } from './downloaded-object-store';
import { createProgress, formatBytes } from './progress';

export const DECRYPT_HELP = `Usage:
  coffer-gateway decrypt -c <config> --coffer <name> --key <object key> [-o <file>|-]
  coffer-gateway decrypt -c <config> --coffer <name> --key <object key> --manifest-file <file> --data-file <file> [-o <file>|-]

Recovers an object without a running gateway, verifying everything the gateway verifies (manifest authentication — format 2 AEAD or format 1 MAC —,
lengths, every part header and segment). Online, the manifest m/<key> and data object d/<key>/<uploadId>
are read from the coffer's upstream bucket with the coffer's role (a created coffer's under
<base prefix><coffer>/<generation>/); offline, from the two files you downloaded. Either way the data key is unwrapped by the coffer's KMS key or local keyring.

Options:
${CONFIG_HELP}
      --coffer <name>        The coffer, as configured under \`coffers\`, or created at run time in a coffer
                             class (its registration is read and verified; its current generation is read).
      --key <object key>     The object key (also the KMS encryption context, so it must be exact).
  -o, --output <file>|-      Where the plaintext goes. Default: stdout (refused when stdout is a terminal).
                             A file is written as <file>.partial and renamed when everything verified;
                             on a failure <file> is not created and <file>.partial holds only verified bytes.
      --force                Replace an existing output file.
      --manifest-file <file> Offline: the downloaded manifest object (<prefix>m/<key>).
      --data-file <file>     Offline: the downloaded data object (<prefix>d/<key>/<uploadId>).
      --range <a>-<b>        Only plaintext bytes a..b (inclusive; "a-" = to the end).
  -h, --help                 Show this help.

A progress bar is drawn on stderr when stderr is a terminal. Exit code 0 only when every byte verified.
`;

const OPTIONS = {
  ...CONFIG_OPTION,
  ...HELP_OPTION,
  coffer: { type: 'string' },
  key: { type: 'string' },
  output: { type: 'string', short: 'o' },
  force: { type: 'boolean' },
  'manifest-file': { type: 'string' },
  'data-file': { type: 'string' },
  range: { type: 'string' },
} as const;

function parseRange(text: string): { start: number; end?: number } {
  const match = /^(\d+)-(\d*)$/.exec(text);
  if (match === null) throw new UsageError('--range must be <first byte>-<last byte> or <first byte>-.');
  const start = Number(match[1]);
  const end = match[2] === '' ? undefined : Number(match[2]);
  if (!Number.isSafeInteger(start) || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) throw new UsageError('--range is not a valid byte range.');
  return { start, end };
}

export async function decryptCommand(args: readonly string[], io: CliIo): Promise<number> {
  const values = parseCommandArgs('decrypt', args, OPTIONS);
  if (values.help === true) {
    io.stdout.write(DECRYPT_HELP);
    return EXIT_OK;
  }
  const cofferName = required(values.coffer, 'coffer', 'decrypt');
  const key = required(values.key, 'key', 'decrypt');
  const manifestFile = values['manifest-file'];
  const dataFile = values['data-file'];
  if ((manifestFile === undefined) !== (dataFile === undefined)) throw new UsageError('--manifest-file and --data-file go together (offline decryption needs both).');
  const range = values.range === undefined ? undefined : parseRange(values.range);
  const output = values.output;
  const toStdout = output === undefined || output === '-';
  if (output === undefined && io.stdout.isTTY === true) throw new UsageError('refusing to write binary plaintext to a terminal; use -o <file> (or -o - to insist).');
  if (!toStdout && existsSync(output) && values.force !== true) throw new CliError(`${output} exists; use --force to replace it.`);

  const config = loadCliConfig(values.config, io);
  const offline = manifestFile !== undefined && dataFile !== undefined;
  // Offline, nothing is read upstream: not even a created coffer's registration.
  const opened = offline ? openCofferOffline(config, cofferName, 'coffer-gateway-decrypt') : await openAnyCoffer(config, cofferName, 'coffer-gateway-decrypt');
  try {
    const store = offline ? downloadedObjectStore({ manifestKey: opened.layout.manifest(key), manifestFile, dataPrefix: opened.layout.dataPrefix(key), dataFile }) : opened.store();
    const context = opened.context(store);
    const service = new ObjectService();
    // Manifest fetched, data key unwrapped under the key the envelope names, MAC verified.
    let head;
    try {
      head = await service.head(context, key);
    } catch (error) {
      if (error instanceof GatewayError && error.code === 'NoSuchKey') throw new CliError(`no object ${JSON.stringify(key)} in coffer ${cofferName}: there is no manifest ${opened.layout.manifest(key)}.`);
      throw error;
    }
    const size = head.manifest.plaintextSize;
    try {
      let start = 0;
      let end = size - 1;
      if (range !== undefined) {
        if (range.start >= size) throw new CliError(`--range starts at ${range.start}, but the object has ${size} bytes.`);
        start = range.start;
        end = Math.min(range.end ?? size - 1, size - 1);
      }
      const total = size === 0 ? 0 : end - start + 1;
      const plaintext = size === 0 ? (async function* () {})() : service.read(context, key, head, start, end);
      const progress = createProgress(io.stderr, { label: 'decrypt', total, unit: 'bytes' });
      const written = { bytes: 0 };
      try {
        if (toStdout) {
          for await (const chunk of plaintext) {
            await writeChunk(io.stdout, chunk);
            written.bytes += chunk.length;
            progress.advance(chunk.length);
          }
        } else {
          await writeFileVerified(output, plaintext, (n) => {
            written.bytes += n;
            progress.advance(n);
          });
        }
      } catch (error) {
        progress.done();
        const where = toStdout ? 'stdout received only verified bytes' : written.bytes === 0 ? `${output} was not created` : `${output} was not created; ${output}.partial holds the verified bytes`;
        io.stderr.write(`coffer-gateway decrypt: ${describeError(error)}\n  ${formatBytes(written.bytes)} (${written.bytes} bytes) verified and written before the failure; ${where}.\n`);
        return EXIT_FAILURE;
      }
      progress.done();
      io.stderr.write(`coffer-gateway decrypt: ${key}: ${total} bytes verified${range === undefined ? '' : ` (range ${start}-${end} of ${size})`}, ETag ${objectEtag(head.manifest)}${toStdout ? '' : `, written to ${output}`}.\n`);
      return EXIT_OK;
    } finally {
      head.dataKey.dispose();
    }
  } finally {
    opened.close();
  }
}

/** Writes to `<file>.partial` (0600: it is plaintext) and renames it to `file` only after the last verified byte. */
async function writeFileVerified(file: string, plaintext: AsyncIterable<Buffer>, onWrite: (bytes: number) => void): Promise<void> {
  const partial = `${file}.partial`;
  const handle = await fs.open(partial, 'w', 0o600);
  let closed = false;
  try {
    for await (const chunk of plaintext) {
      let offset = 0;
      while (offset < chunk.length) {
        const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
        offset += bytesWritten;
      }
      onWrite(chunk.length);
    }
    await handle.sync();
    await handle.close();
    closed = true;
    await fs.rename(partial, file);
  } finally {
    if (!closed) {
      const size = (await handle.stat().catch(() => undefined))?.size;
      await handle.close().catch(() => undefined);
      // Nothing verified, nothing to keep: do not leave an empty file behind.
      if (size === 0) await fs.rm(partial, { force: true });
    }
  }
}

/**
 * Backup and sync tools (Debian packages) against the gateway as `npm start` runs it: rclone 1.60
 * (copy, check, cat, sync with deletes), s3cmd 2.3 (multipart put with its per-part ETag = MD5
 * check, get, ls) and restic 0.14 (init, backup, check, restore, forget --prune: locks and pruning
 * need delete, so it uses the scratch coffer). Each is configured as the README's "S3 clients"
 * section says.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_BUCKET, describeWithClient, runClient, S3_ACCESS_KEY, S3_SECRET_KEY, SCRATCH_BUCKET, startS3Gateway, type S3Gateway } from '../support/s3-gateway';

const MiB = 1024 * 1024;
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

let s3: S3Gateway;
beforeAll(async () => {
  s3 = await startS3Gateway();
  // One write to each coffer first: parallel first writes to a coffer that has no coffer key yet can
  // leave one object's listing summary undecodable (listed damaged, size 0) — a race in the coffer
  // key's creation (src/store/coffer-key.ts) reproduced here and reported, not fixed by this change.
  await s3.warm();
});
afterAll(async () => {
  await s3?.stop();
});

/** A directory of a few files (one larger than a multipart chunk), returned with their contents. */
function tree(root: string, files: Record<string, Buffer>): Record<string, Buffer> {
  for (const [name, body] of Object.entries(files)) {
    mkdirSync(join(root, name, '..'), { recursive: true });
    writeFileSync(join(root, name), body);
  }
  return files;
}

describeWithClient('/usr/bin/rclone')('rclone 1.60', () => {
  const env = (): Record<string, string> => ({
    HOME: s3.directory,
    RCLONE_CONFIG_GW_TYPE: 's3',
    RCLONE_CONFIG_GW_PROVIDER: 'Other',
    RCLONE_CONFIG_GW_ENV_AUTH: 'false',
    RCLONE_CONFIG_GW_ACCESS_KEY_ID: S3_ACCESS_KEY,
    RCLONE_CONFIG_GW_SECRET_ACCESS_KEY: S3_SECRET_KEY,
    RCLONE_CONFIG_GW_ENDPOINT: s3.endpoint,
    RCLONE_CONFIG_GW_REGION: 'us-east-1',
  });
  const rclone = (...args: string[]) => runClient('/usr/bin/rclone', ['--retries', '1', ...args], env());

  test('copy, check, cat to the demo coffer; sync with deletes to the scratch coffer', async () => {
    const source = join(s3.directory, 'rclone-src');
    const files = tree(source, { 'a.txt': Buffer.from('alpha'), 'sub/b.bin': randomBytes(6 * MiB + 3), 'sub/c.bin': randomBytes(1000) });
    await rclone('copy', source, `gw:${DEMO_BUCKET}/rclone`);
    await rclone('check', source, `gw:${DEMO_BUCKET}/rclone`);
    expect((await rclone('cat', `gw:${DEMO_BUCKET}/rclone/a.txt`)).stdout).toBe('alpha');

    await rclone('sync', source, `gw:${SCRATCH_BUCKET}/rclone`);
    rmSync(join(source, 'sub/c.bin'));
    writeFileSync(join(source, 'a.txt'), 'alpha, changed');
    await rclone('sync', source, `gw:${SCRATCH_BUCKET}/rclone`);
    await rclone('check', source, `gw:${SCRATCH_BUCKET}/rclone`);
    const listed = (await rclone('lsf', '-R', `gw:${SCRATCH_BUCKET}/rclone`)).stdout.split('\n').filter(Boolean).sort();
    expect(listed).toEqual(['a.txt', 'sub/', 'sub/b.bin']);
    expect(Object.keys(files)).toHaveLength(3);
  });
});

describeWithClient('/usr/bin/s3cmd')('s3cmd 2.3', () => {
  const s3cmd = (...args: string[]) => {
    const host = s3.endpoint.replace('http://', '');
    const config = join(s3.directory, 's3cfg');
    writeFileSync(
      config,
      ['[default]', `access_key = ${S3_ACCESS_KEY}`, `secret_key = ${S3_SECRET_KEY}`, `host_base = ${host}`, `host_bucket = ${host}`, 'use_https = False', 'signature_v2 = False', 'bucket_location = us-east-1', ''].join('\n'),
    );
    return runClient('/usr/bin/s3cmd', ['-c', config, ...args], { HOME: s3.directory });
  };

  test('multipart put (its part ETag = MD5 check), get, ls', async () => {
    const file = join(s3.directory, 's3cmd.bin');
    const body = randomBytes(12 * MiB + 5);
    writeFileSync(file, body);
    await s3cmd('put', '--multipart-chunk-size-mb=5', file, `s3://${DEMO_BUCKET}/s3cmd/big.bin`);
    const back = join(s3.directory, 's3cmd-back.bin');
    await s3cmd('get', `s3://${DEMO_BUCKET}/s3cmd/big.bin`, back);
    expect(md5(readFileSync(back))).toBe(md5(body));
    expect((await s3cmd('ls', `s3://${DEMO_BUCKET}/s3cmd/`)).stdout).toMatch(/12582917\s+s3:\/\/demo-1250000000\/s3cmd\/big\.bin/);
  });
});

describeWithClient('/usr/bin/restic')('restic 0.14', () => {
  test('init, backup, check, restore, forget --prune (on the scratch coffer: locks and prune delete)', async () => {
    const env = { HOME: s3.directory, RESTIC_REPOSITORY: `s3:${s3.endpoint}/${SCRATCH_BUCKET}/restic`, RESTIC_PASSWORD: 'restic-test-password', AWS_ACCESS_KEY_ID: S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY };
    const restic = (...args: string[]) => runClient('/usr/bin/restic', ['--no-cache', ...args], env);
    const source = join(s3.directory, 'restic-src');
    const files = tree(source, { 'one.txt': Buffer.from('first version'), 'data/two.bin': randomBytes(3 * MiB + 17) });
    await restic('init');
    await restic('backup', source);
    writeFileSync(join(source, 'one.txt'), 'second version');
    await restic('backup', source);
    await restic('check');
    const target = join(s3.directory, 'restic-restore');
    await restic('restore', 'latest', '--target', target);
    const restored = join(target, source);
    expect(readFileSync(join(restored, 'one.txt'), 'utf8')).toBe('second version');
    expect(md5(readFileSync(join(restored, 'data/two.bin')))).toBe(md5(files['data/two.bin'] as Buffer));
    await restic('forget', '--keep-last', '1', '--prune');
    await restic('check');
    expect((await restic('snapshots', '--json')).stdout).toMatch(/^\[\{.*\}\]\s*$/);
    expect(readdirSync(restored)).toContain('one.txt');
  });
});

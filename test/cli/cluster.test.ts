/**
 * `serve --workers N`: the CPU count it defaults to (cpuset and cgroup quota), its argument, and a real
 * `node dist/src/cli.js serve --workers 2`: two worker processes answer on the configured ports, a
 * worker that dies is replaced, SIGTERM stops them all, and the demo (per-process state) is refused.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../src/cli/args';
import { parseWorkerCount, usableCpus } from '../../src/cli/cluster';
import { ensureCliBuilt, runProcess, type CommandResult } from './cli-fixture';

let directory: string;
beforeAll(() => (directory = mkdtempSync(join(tmpdir(), 'coffer-cluster-'))));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe('how many workers', () => {
  const cpuMax = (content: string): string => {
    const file = join(directory, `cpu.max-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, content);
    return file;
  };

  test('a cgroup v2 CPU quota caps the cpuset count (rounded up, at least one); no quota or no file leaves it', () => {
    const cpus = availableParallelism();
    expect(usableCpus(cpuMax('max 100000\n'))).toBe(cpus);
    expect(usableCpus(join(directory, 'no-such-file'))).toBe(cpus);
    expect(usableCpus(cpuMax('50000 100000\n'))).toBe(1);
    expect(usableCpus(cpuMax('150000 100000\n'))).toBe(Math.min(cpus, 2));
    expect(usableCpus(cpuMax(`${100000 * (cpus + 8)} 100000\n`))).toBe(cpus);
  });

  test('--workers: absent is one process, "auto" the usable CPUs, else a positive integer', () => {
    expect(parseWorkerCount(undefined)).toBe(1);
    expect(parseWorkerCount('auto', () => 6)).toBe(6);
    expect(parseWorkerCount('3')).toBe(3);
    for (const bad of ['0', '-1', '1.5', 'two', '', '99999']) expect(() => parseWorkerCount(bad)).toThrow(UsageError);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode as number, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The process ids whose parent is `pid` (the cluster's workers). */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (let attempt = 0; attempt < 300; attempt += 1) {
    const value = await Promise.resolve(probe()).catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('serve --workers 2: two processes answer on the ports, a dead worker is replaced, SIGTERM stops them all', async () => {
  ensureCliBuilt();
  const [port, adminPort] = [await freePort(), await freePort()];
  const config = join(directory, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      server: { host: '127.0.0.1', port, adminPort },
      auth: { accessKeys: [{ secretId: 'AKIDcluster', secretKey: 'cluster-secret-key-0123456789', grants: [{ coffer: 'cluster-1250000000', actions: ['*'] }] }] },
      keyring: { directory: join(directory, 'keyring') },
      coffers: {
        'cluster-1250000000': {
          upstream: { endpoint: 'http://127.0.0.1:9', bucket: 'cluster', credentials: { accessKeyId: 'cluster', secretAccessKey: 'cluster-secret' } },
          role: { type: 'static' },
          kms: { type: 'local', keyId: 'cluster' },
        },
      },
    }),
  );
  let primary = 0;
  const exited: Promise<CommandResult> = runProcess(['serve', '--workers', '2', '-c', config], { onSpawn: (pid) => (primary = pid) });
  try {
    const first = await until('two workers listening', async () => {
      const workers = childrenOf(primary);
      return workers.length === 2 && (await get(adminPort, '/healthz')).status === 200 ? workers : undefined;
    });
    // The data plane answers (an unsigned request gets its XML error from a worker).
    const answer = await get(port, '/cluster-1250000000/key');
    expect(answer.status).toBe(401);
    expect(answer.body).toContain('<Code>AuthFailed</Code>');

    process.kill(first[0] as number, 'SIGKILL');
    const replaced = await until('the dead worker replaced', () => {
      const workers = childrenOf(primary);
      return workers.length === 2 && !workers.includes(first[0] as number) ? workers : undefined;
    });
    expect(replaced).toContain(first[1]);
    await until('the replacement listening', async () => ((await get(adminPort, '/healthz')).status === 200 ? true : undefined));

    process.kill(primary, 'SIGTERM');
    const result = await exited;
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('stopping 2 workers');
    expect(
      replaced.filter((pid) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      }),
    ).toEqual([]);
  } finally {
    if (primary !== 0)
      for (const pid of [...childrenOf(primary), primary])
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
  }
});

test('serve --workers 2 refuses the demo (its embedded upstream and generated keys are per process)', async () => {
  ensureCliBuilt();
  const result = await runProcess(['serve', '--workers', '2'], { env: { PORT: '0', COFFER__KEYRING__DIRECTORY: join(directory, 'demo-keyring'), COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'demo-upstream') } });
  expect(result.code).toBe(2);
  expect(result.stderr).toContain('--workers needs configured coffers');
});

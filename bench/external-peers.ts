/**
 * The two contenders that are not Node programs: nginx as a second passthrough baseline (the fastest
 * proxy this machine runs) and rclone's crypt remote, what a user who does not run a gateway uses to
 * encrypt client-side. Both come from Debian (`nginx-light`, `rclone`); when one is missing the bench
 * installs it with apt-get (as root; otherwise it says what to run and that contender is skipped).
 */
import { execFileSync, spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { childPids, procCpuMs } from './bench-support';

function onPath(binary: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** True when `binary` is available, installing Debian's `debianPackage` first when it is not. */
export function ensureInstalled(binary: string, debianPackage: string): boolean {
  if (onPath(binary)) return true;
  if (process.getuid?.() !== 0) {
    process.stdout.write(`(${binary} not found and not root: run \`apt-get install -y ${debianPackage}\`; skipped)\n`);
    return false;
  }
  process.stdout.write(`(installing ${debianPackage} with apt-get …)\n`);
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', debianPackage], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'ignore' });
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', debianPackage], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  return onPath(binary);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('nginx did not start listening');
}

export interface NginxPassthrough {
  readonly child: ChildProcess;
  readonly port: number;
  /** CPU ms of the master and its workers (each worker is single-threaded: all of it is "main thread"). */
  cpuMs(): number;
}

/**
 * nginx in front of the sink with request buffering off (the body streams through, as in the
 * gateway), HTTP/1.1 kept-alive upstream connections, one worker process (like the one Node process
 * of the other contenders), no access log.
 */
export async function startNginx(directory: string, sinkPort: number): Promise<NginxPassthrough> {
  mkdirSync(directory, { recursive: true });
  const port = await freePort();
  const temp = (name: string): string => `${name}_temp_path ${join(directory, name)};`;
  writeFileSync(
    join(directory, 'nginx.conf'),
    `worker_processes 1;
pid ${join(directory, 'nginx.pid')};
error_log ${join(directory, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  ${temp('client_body')} ${temp('proxy')} ${temp('fastcgi')} ${temp('uwsgi')} ${temp('scgi')}
  upstream sink { server 127.0.0.1:${sinkPort}; keepalive 16; }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location / {
      proxy_pass http://sink;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_buffering off;
    }
  }
}
`,
  );
  const child = spawnProcess('nginx', ['-p', directory, '-c', join(directory, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, child);
  const master = child.pid as number;
  return {
    child,
    port,
    cpuMs: () => [master, ...childPids(master)].reduce((sum, pid) => sum + procCpuMs(`/proc/${pid}/stat`), 0),
  };
}

/** The rclone configuration, in environment variables: an S3 remote on the sink and a crypt remote over it. */
export function rcloneEnvironment(sinkPort: number): NodeJS.ProcessEnv {
  const password = execFileSync('rclone', ['obscure', 'coffer-bench-password'], { encoding: 'utf8' }).trim();
  // A custom CA bundle in the environment (AWS_CA_BUNDLE) makes rclone's S3 remote refuse to start; the sink is plain HTTP.
  const { AWS_CA_BUNDLE: _unused, ...environment } = process.env;
  return {
    ...environment,
    RCLONE_CONFIG_BENCHS3_TYPE: 's3',
    RCLONE_CONFIG_BENCHS3_PROVIDER: 'Other',
    RCLONE_CONFIG_BENCHS3_ENDPOINT: `http://127.0.0.1:${sinkPort}`,
    RCLONE_CONFIG_BENCHS3_ACCESS_KEY_ID: 'bench',
    RCLONE_CONFIG_BENCHS3_SECRET_ACCESS_KEY: 'bench-secret',
    RCLONE_CONFIG_BENCHS3_FORCE_PATH_STYLE: 'true',
    RCLONE_CONFIG_BENCHCRYPT_TYPE: 'crypt',
    RCLONE_CONFIG_BENCHCRYPT_REMOTE: 'benchs3:bench/rclone',
    RCLONE_CONFIG_BENCHCRYPT_PASSWORD: password,
  };
}

/**
 * `rclone rcat` of `body` to the crypt remote (defaults: NaCl secretbox in 64 KiB chunks, S3
 * multipart in 5 MiB parts, 4 at a time). Resolves with rclone's CPU ms: it runs under `sh`, which
 * reads its own /proc stat after waiting for rclone, so cutime/cstime are exactly rclone's.
 */
export function rcloneUpload(environment: NodeJS.ProcessEnv, name: string, body: Readable): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawnProcess('sh', ['-c', 'rclone rcat -q --s3-no-check-bucket "benchcrypt:$0" && cat /proc/$$/stat', name], { env: environment, stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('latin1')));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`rclone rcat exited with ${code}`));
      const fields = output
        .slice(output.lastIndexOf(')') + 2)
        .trim()
        .split(' ')
        .map(Number);
      resolve(((fields[13] as number) + (fields[14] as number)) * (1000 / clockTicks()));
    });
    body.pipe(child.stdin);
  });
}

let ticks: number | undefined;
function clockTicks(): number {
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return ticks;
}

/**
 * The container image, tested without Docker (it cannot run here): static checks of the Dockerfile and
 * .dockerignore, a check that the production dependency set (`npm ci --omit=dev`) covers every runtime
 * import, and the image's exact start command run outside the image.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { stringify } from 'yaml';
import { GATEWAY_NODE_FLAGS } from '../../bench/bench-support';
import { ROOT } from '../helm/helm-support';

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}
interface Stage {
  readonly from: string;
  readonly name?: string;
  readonly instructions: Instruction[];
}

/** A small Dockerfile reader: comments dropped, `\` continuations joined, split into stages. */
function readDockerfile(text: string): { args: Instruction[]; stages: Stage[] } {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    if (raw.trimEnd().endsWith('\\')) {
      current += `${raw.trimEnd().slice(0, -1)} `;
      continue;
    }
    current += raw;
    if (current.trim() !== '') logical.push(current.trim());
    current = '';
  }
  const args: Instruction[] = [];
  const stages: Stage[] = [];
  for (const line of logical) {
    const match = /^(\w+)\s+([\s\S]*)$/.exec(line);
    if (match === null) continue;
    const instruction = { keyword: (match[1] as string).toUpperCase(), args: (match[2] as string).trim() };
    if (instruction.keyword === 'FROM') {
      const from = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      stages.push({ from: from?.[1] ?? '', ...(from?.[2] === undefined ? {} : { name: from[2] }), instructions: [] });
    } else if (stages.length === 0) {
      args.push(instruction);
    } else {
      (stages[stages.length - 1] as Stage).instructions.push(instruction);
    }
  }
  return { args, stages };
}

const DOCKERFILE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const { args: globalArgs, stages } = readDockerfile(DOCKERFILE);
const runtime = stages[stages.length - 1] as Stage;
const find = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);
const argDefault = (name: string) => globalArgs.find((a) => a.keyword === 'ARG' && a.args.startsWith(`${name}=`))?.args.slice(name.length + 1);
const execForm = (value: string): string[] => {
  const parsed: unknown = JSON.parse(value);
  if (!Array.isArray(parsed) || !parsed.every((p) => typeof p === 'string')) throw new Error('not an exec-form array');
  return parsed as string[];
};

describe('Dockerfile', () => {
  test('is multi-stage: production dependencies, a build on them with only the compiler added, clean runtime', () => {
    expect(stages.map((s) => s.name)).toEqual(['prod', 'build', 'runtime']);
    const prod = stages[0] as Stage;
    expect(
      find(prod, 'RUN')
        .map((i) => i.args)
        .join('\n'),
    ).toMatch(/npm ci --omit=dev --ignore-scripts/);
    const build = stages[1] as Stage;
    expect(build.from).toBe('prod');
    const runs = find(build, 'RUN')
      .map((i) => i.args)
      .join('\n');
    // No dev dependency of the project: the toolchain's own lockfile, then tsc over src/ only.
    expect(runs).toMatch(/cd \/toolchain && npm ci --ignore-scripts/);
    expect(runs).toMatch(/\/toolchain\/node_modules\/\.bin\/tsc -p tsconfig\.image\.json/);
    expect(runs).not.toMatch(/npm ci(?! --omit=dev)(?! --ignore-scripts)/);
    expect(JSON.parse(readFileSync(join(ROOT, 'tsconfig.image.json'), 'utf8')).include).toEqual(['src']);
  });

  test("the image toolchain is TypeScript and Node's types at exactly the project's locked versions", () => {
    const project = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')).packages;
    const toolchain = JSON.parse(readFileSync(join(ROOT, 'docker', 'toolchain', 'package-lock.json'), 'utf8')).packages;
    const direct = Object.keys(JSON.parse(readFileSync(join(ROOT, 'docker', 'toolchain', 'package.json'), 'utf8')).devDependencies).sort();
    expect(direct).toEqual(['@types/node', 'typescript']);
    for (const name of Object.keys(toolchain).filter((path) => path.startsWith('node_modules/'))) {
      expect({ name, version: toolchain[name].version }).toEqual({ name, version: project[name]?.version });
    }
  });

  test('the runtime stage is Node 24 distroless (no shell), runs no commands and copies only dist/src and production node_modules', () => {
    expect(runtime.from).toBe('${RUNTIME_IMAGE}');
    expect(argDefault('RUNTIME_IMAGE')).toBe('gcr.io/distroless/nodejs24-debian12:nonroot');
    expect(argDefault('NODE_BUILD_IMAGE')).toBe('node:24-bookworm-slim');
    expect(find(runtime, 'RUN')).toEqual([]);
    const copies = find(runtime, 'COPY').map((i) => i.args);
    expect(copies).toEqual([
      expect.stringMatching(/--from=prod .*\/src\/package\.json \.\/package\.json$/),
      expect.stringMatching(/--from=prod .*\/src\/node_modules \.\/node_modules$/),
      expect.stringMatching(/--from=build .*\/src\/dist\/src \.\/dist\/src$/),
    ]);
  });

  test('runs as a numeric non-root user', () => {
    const users = find(runtime, 'USER');
    expect(users).toHaveLength(1);
    const [uid, gid] = (users[0] as Instruction).args.split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
    // The chart's default securityContext uses the same ids.
    expect(readFileSync(join(ROOT, 'helm', 'coffer-gateway', 'values.yaml'), 'utf8')).toContain(`runAsUser: ${uid}`);
  });

  test('exec-form ENTRYPOINT/CMD: node itself (PID 1, gets SIGTERM), no npm or shell, the start script of package.json', () => {
    const entrypoint = execForm((find(runtime, 'ENTRYPOINT')[0] as Instruction).args);
    const cmd = execForm((find(runtime, 'CMD')[0] as Instruction).args);
    const command = [...entrypoint, ...cmd];
    expect(command[0]).toBe('/nodejs/bin/node');
    expect(command.join(' ')).not.toMatch(/\bnpm\b|\bnpx\b|\bsh\b|\bbash\b/);
    expect(command.slice(-2)).toEqual(['dist/src/cli.js', 'serve']);
    // The image, `npm start` and the benchmark run the gateway with the same Node flags (a small young
    // generation keeps streamed Buffers from piling up: README "Memory").
    const imageFlags = command.slice(1, -2).filter((flag) => flag !== '--enable-source-maps');
    expect(imageFlags).toEqual([...GATEWAY_NODE_FLAGS]);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts.start).toBe(`node ${GATEWAY_NODE_FLAGS.join(' ')} dist/src/cli.js serve`);
  });

  test('read-only root filesystem: HOME and TMPDIR on /tmp, config path from COFFER_CONFIG, no HEALTHCHECK', () => {
    const env = find(runtime, 'ENV')
      .map((i) => i.args)
      .join(' ');
    expect(env).toMatch(/HOME=\/tmp/);
    expect(env).toMatch(/TMPDIR=\/tmp/);
    expect(env).toMatch(/NODE_ENV=production/);
    expect(env).toMatch(/COFFER_CONFIG=\/etc\/coffer-gateway\/config\.yaml/);
    expect(find(runtime, 'HEALTHCHECK')).toEqual([]);
    expect(find(runtime, 'EXPOSE').map((i) => i.args)).toEqual(['8080 9090']);
  });

  test('OCI labels', () => {
    const labels = find(runtime, 'LABEL')
      .map((i) => i.args)
      .join(' ');
    for (const key of ['title', 'description', 'version', 'revision', 'created', 'licenses', 'source']) {
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
    }
  });

  test('.dockerignore keeps local state and build output out, but not what the build needs', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['.git', 'node_modules', 'dist', 'data', 'test', '.env']));
    const copied = stages
      .flatMap((s) => find(s, 'COPY'))
      .filter((i) => !i.args.includes('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const path of copied) {
      expect(ignored).not.toContain(path.replace(/^\.\//, ''));
      expect(existsSync(join(ROOT, path))).toBe(true);
    }
  });
});

describe('production dependencies', () => {
  function sourceFiles(dir: string): string[] {
    return readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
    });
  }

  test('every package src/ imports at runtime is a production dependency (npm ci --omit=dev installs it)', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const production = new Set(Object.keys(pkg.dependencies ?? {}));
    const missing: string[] = [];
    for (const file of sourceFiles(join(ROOT, 'src'))) {
      const text = readFileSync(file, 'utf8');
      const specifiers = [
        ...[...text.matchAll(/^\s*import\s+(?!type\b)[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1] as string),
        ...[...text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)].map((m) => m[1] as string),
        ...[...text.matchAll(/\brequire\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] as string),
        ...[...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] as string),
      ];
      for (const specifier of specifiers) {
        if (specifier.startsWith('.') || isBuiltin(specifier)) continue;
        const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] as string);
        if (!production.has(name)) missing.push(`${relative(ROOT, file)}: ${specifier}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test('no production dependency has an install script (so --ignore-scripts is safe)', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
    const withScripts = Object.entries(lock.packages as Record<string, { dev?: boolean; hasInstallScript?: boolean }>)
      .filter(([path, meta]) => path !== '' && meta.hasInstallScript === true && meta.dev !== true)
      .map(([path]) => path);
    expect(withScripts).toEqual([]);
  });
});

describe('the image start command, outside the image', () => {
  const cli = join(ROOT, 'dist', 'src', 'cli.js');

  function getText(port: number, path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path, timeout: 5000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      }).on('error', reject);
    });
  }

  test('`node dist/src/cli.js serve` with the image environment: listens, serves /healthz /readyz (503 naming the unusable coffer) /metrics, writes nothing, exits 0 on SIGTERM', async () => {
    expect({ built: existsSync(cli), hint: 'run `npm run build` (npm ci does it)' }).toEqual({ built: true, hint: expect.any(String) });
    const dir = mkdtempSync(join(tmpdir(), 'cg-image-'));
    const work = join(dir, 'app'); // stands in for the read-only /app: must stay empty
    const tmp = join(dir, 'tmp');
    mkdirSync(work);
    mkdirSync(tmp);
    mkdirSync(join(dir, 'keyring'), { mode: 0o700 });
    const configFile = join(dir, 'config.yaml');
    writeFileSync(
      configFile,
      stringify({
        server: { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0, shutdownGraceMs: 2000 },
        auth: { accessKeys: [{ secretId: 'AKIDimagetest01', secretKeyFile: join(dir, 'secret-key'), grants: [{ coffer: 'image-1250000000', actions: ['*'] }] }] },
        coffers: { 'image-1250000000': { upstream: { endpoint: 'http://127.0.0.1:9', bucket: 'image-bucket' }, kms: { type: 'local', keyId: 'image' } } },
        keyring: { directory: join(dir, 'keyring'), create: false },
      }),
    );
    writeFileSync(join(dir, 'secret-key'), 'image-test-secret-key-0123456789\n');

    const child = spawn(process.execPath, [...GATEWAY_NODE_FLAGS, cli, 'serve'], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', HOME: tmp, TMPDIR: tmp, COFFER_CONFIG: configFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const listening = await new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "listening" log line within 15 s; stderr: ${stderr}`)), 15_000);
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          for (const line of stdout.split('\n')) {
            try {
              const entry = JSON.parse(line) as { port?: number; adminPort?: number };
              if (typeof entry.port === 'number' && typeof entry.adminPort === 'number') {
                clearTimeout(timer);
                resolve({ port: entry.port, adminPort: entry.adminPort });
              }
            } catch {
              // not a complete JSON line yet
            }
          }
        });
        child.on('exit', (code) => reject(new Error(`exited early with ${code}; stderr: ${stderr}`)));
      });
      expect(await getText(listening.adminPort, '/healthz')).toMatchObject({ status: 200 });
      // No upstream credentials and nothing listening at the upstream (port 9): the replica must not look Ready, and says why.
      let readyz = await getText(listening.adminPort, '/readyz');
      for (let i = 0; i < 200 && !/(role|upstream):/.test(readyz.body); i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        readyz = await getText(listening.adminPort, '/readyz');
      }
      expect(readyz).toMatchObject({ status: 503, body: expect.stringMatching(/^not ready: coffer image-1250000000: (role|upstream): /) });
      const metrics = await getText(listening.adminPort, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.body).toMatch(/^# (HELP|TYPE) /m);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(readdirSync(work)).toEqual([]);
      expect(stdout + stderr).not.toContain('image-test-secret-key-0123456789');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

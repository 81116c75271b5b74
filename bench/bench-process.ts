/**
 * One benchmark server per child process, so each one's peak RSS is its own:
 *   sink <port> [dataDir]    the S3 sink (with dataDir: large single PUTs kept on disk, served with ranges)
 *   passthrough <sinkPort>   express 5 + http-proxy-middleware 4 in front of the sink
 *   gateway <configJson>     coffer-gateway with one coffer on the sink (BENCH_CRYPTO_WORKERS: crypto pool size)
 * Each prints `{"port":N}` when listening and answers the IPC messages 'rss' (peak RSS), 'idle-rss'
 * (RSS now) and 'cpu' (CPU time used so far: all threads, the main thread alone, and per kind of thread).
 */
import { loadConfig } from '../src/config';
import { setCryptoWorkerCount } from '../src/crypto/offloaded-part-encryptor';
import { createLogger } from '../src/observability/logger';
import { startGateway } from '../src/app/serve';
import { procCpuMs, threadCpuMs } from './bench-support';
import { startSink } from './s3-sink';

async function main(): Promise<void> {
  const [kind, argument, extra] = process.argv.slice(2);
  let port: number;
  if (kind === 'sink') {
    port = (await startSink(Number(argument), extra)).port;
  } else if (kind === 'passthrough') {
    const express = (await import('express')).default;
    const { createProxyMiddleware } = await import('http-proxy-middleware');
    const app = express();
    app.use(createProxyMiddleware({ target: `http://127.0.0.1:${argument}` }));
    port = await new Promise((resolve) => {
      const server = app.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
  } else if (kind === 'gateway') {
    // BENCH_CRYPTO_WORKERS: the crypto worker pool's size (default: one per available CPU), to compare 1 and 2.
    if (process.env['BENCH_CRYPTO_WORKERS'] !== undefined) setCryptoWorkerCount(Number(process.env['BENCH_CRYPTO_WORKERS']));
    // As `coffer-gateway serve` starts it (src/cli/serve-command.ts), logging aside.
    const gateway = await startGateway(loadConfig({ file: argument, env: {} }), { log: createLogger('silent'), releaseStartUpGarbage: true });
    port = gateway.port;
    process.on('message', async (message) => {
      if (message === 'metrics') process.send?.({ metrics: await gateway.metrics.registry.metrics() });
    });
  } else {
    throw new Error(`unknown kind ${kind}`);
  }
  process.on('message', (message) => {
    if (message === 'rss') process.send?.({ rssMb: process.resourceUsage().maxRSS / 1024 });
    if (message === 'idle-rss') process.send?.({ idleRssMb: process.memoryUsage.rss() / (1024 * 1024) });
    if (message === 'cpu') {
      // All threads of the process (the crypto workers included), user + system; and the main thread
      // alone (the event loop: sockets, HTTP parsing, whatever crypto runs inline), from /proc.
      const usage = process.cpuUsage();
      process.send?.({ cpuMs: (usage.user + usage.system) / 1000, mainMs: procCpuMs(`/proc/self/task/${process.pid}/stat`), threads: threadCpuMs('self') });
    }
  });
  // Exit normally on kill(), so `--cpu-prof` runs (NODE_OPTIONS) write their profiles.
  process.on('SIGTERM', () => process.exit(0));
  process.send?.({ port });
}

void main();

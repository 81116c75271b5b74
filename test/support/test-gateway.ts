/**
 * The gateway as a user runs it, for tests: `createCofferGateway(config)` (the configuration object a
 * YAML file holds), mounted in an Express app on a plain http server with `attach`, listening on
 * 127.0.0.1 at a free port. `close` stops the server and releases the gateway.
 */
import express from 'express';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCofferGateway, type CofferGateway } from '../../src';
import { createLogger } from '../../src/observability/logger';

export interface TestGateway {
  readonly gateway: CofferGateway;
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

export async function startTestGateway(config: Record<string, unknown>, options: { routes?: (app: express.Express) => void } = {}): Promise<TestGateway> {
  const gateway = await createCofferGateway(config, { log: createLogger('silent') });
  try {
    const app = express();
    // The app's own routes and middleware come first; the gateway answers whatever reaches it.
    options.routes?.(app);
    app.use(gateway.handler);
    const server = createServer(app);
    gateway.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      gateway,
      server,
      port: (server.address() as AddressInfo).port,
      // The gateway's close drains and closes the attached server too.
      close: () => gateway.close(),
    };
  } catch (error) {
    await gateway.close();
    throw error;
  }
}

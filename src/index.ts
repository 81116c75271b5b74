/**
 * The package's public API (package.json "main"): the gateway as a library that mounts in Express.
 *
 *   const gateway = await createCofferGateway(config); // the object a configuration file holds
 *   const app = express();
 *   app.get('/healthz', …);                            // your routes first
 *   app.use(gateway.handler);                          // the gateway answers everything else
 *   const server = http.createServer(app);
 *   gateway.attach(server);                            // before listen: 100-continue, timeouts, caps, CONNECT
 *   server.listen(8080);
 *   …
 *   await gateway.close();                             // drains, closes the server, releases everything
 */
export { createCofferGateway, type CofferGateway, type CofferGatewayOptions } from './app/coffer-gateway';
export { ConfigError, isConfigError, loadConfig, parseConfig, type GatewayConfig, type LoadConfigOptions } from './config';
export { startGateway, type RunningGateway } from './app/serve';

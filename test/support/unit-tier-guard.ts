/**
 * setupFilesAfterEnv of the unit tier (jest.config.js): a 20 s test timeout (pure code needs far
 * less, even on a loaded machine), and a unit test opens no socket. Listening or
 * connecting throws while the file runs, so a test that needs a server fails here and names the
 * tier it belongs to, instead of slowing the tier down. Restored after the file: jest workers are
 * shared between tiers.
 */
import { Server, Socket } from 'node:net';

jest.setTimeout(20_000);

const originalListen = Server.prototype.listen;
const originalConnect = Socket.prototype.connect;

function refuse(what: string): () => never {
  return () => {
    throw new Error(`${what} in a unit test: this file opens sockets, so it belongs to the component tier (jest.config.js)`);
  };
}

beforeAll(() => {
  Server.prototype.listen = refuse('Server.listen') as typeof Server.prototype.listen;
  Socket.prototype.connect = refuse('Socket.connect') as typeof Socket.prototype.connect;
});

afterAll(() => {
  Server.prototype.listen = originalListen;
  Socket.prototype.connect = originalConnect;
});

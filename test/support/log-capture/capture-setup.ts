/**
 * setupFilesAfterEnv: in a capturing run (see log-capture.ts) every logger also writes `trace` to the
 * run's log directory, and the places where tests make or use secrets record them. Module mocks wrap
 * the real modules; behaviour is unchanged apart from the recording.
 */
import { captureDirectory } from './log-capture';

if (captureDirectory() !== undefined) {
  jest.mock('../../../src/observability/logger', () => {
    const actual = jest.requireActual('../../../src/observability/logger');
    const pino = jest.requireActual('pino');
    const capture = jest.requireActual('./log-capture');
    const captured = pino.destination({ dest: capture.logFileOf(capture.captureDirectory()), sync: true, append: true });
    return {
      ...actual,
      createLogger: (level: string, destination?: unknown) => {
        // The requested output at the requested level, plus everything at trace into the capture file.
        const streams = [{ level: 'trace', stream: captured }];
        if (level !== 'silent') streams.push({ level, stream: destination ?? pino.destination(1) });
        const logger = actual.createLogger('trace', pino.multistream(streams));
        return logger;
      },
    };
  });

  jest.mock('../../../src/auth/cos-signature', () => {
    const actual = jest.requireActual('../../../src/auth/cos-signature');
    const { recordSecret } = jest.requireActual('./log-capture');
    return {
      ...actual,
      signCosRequest: (input: { secretKey: string }) => {
        const signed = actual.signCosRequest(input);
        recordSecret('COS SecretKey', input.secretKey);
        recordSecret('COS signature', signed.signature);
        recordSecret('COS Authorization', signed.authorization);
        return signed;
      },
    };
  });

  jest.mock('../../../src/config/load-config', () => {
    const actual = jest.requireActual('../../../src/config/load-config');
    const { recordSecret } = jest.requireActual('./log-capture');
    const SECRET_FIELD = /secret|token|password|keyPem/i;
    const walk = (value: unknown, name: string): void => {
      if (typeof value === 'string') {
        if (SECRET_FIELD.test(name) && !/File$|Id$/.test(name)) recordSecret(`configured ${name}`, value);
      } else if (Array.isArray(value)) value.forEach((item) => walk(item, name));
      else if (typeof value === 'object' && value !== null) for (const [key, item] of Object.entries(value)) walk(item, key);
    };
    return {
      ...actual,
      loadConfig: (options: unknown) => {
        const config = actual.loadConfig(options);
        walk(config, '');
        return config;
      },
    };
  });

  jest.mock('../../../src/observability/counting-key-provider', () => {
    const actual = jest.requireActual('../../../src/observability/counting-key-provider');
    const { recordSecret } = jest.requireActual('./log-capture');
    return {
      ...actual,
      countingKeyProvider: (...args: unknown[]) => {
        const keys = actual.countingKeyProvider(...args);
        return {
          ...keys,
          generateDataKey: async (...a: unknown[]) => {
            const dataKey = await keys.generateDataKey(...a);
            recordSecret('plaintext data key', dataKey.plaintext);
            return dataKey;
          },
          decryptDataKey: async (...a: unknown[]) => {
            const plaintext = await keys.decryptDataKey(...a);
            recordSecret('plaintext data key', plaintext);
            return plaintext;
          },
        };
      },
    };
  });

  jest.mock('../../auth/jwt-test-tokens', () => {
    const actual = jest.requireActual('../../auth/jwt-test-tokens');
    const { recordSecret } = jest.requireActual('./log-capture');
    return {
      ...actual,
      mint: async (...a: unknown[]) => {
        const token = await actual.mint(...a);
        recordSecret('JWT', token);
        return token;
      },
    };
  });

  // The STS and KMS test servers' identities: long-term secret keys, issued secret keys and session tokens.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { TestCredentialStore } = require('../sts-test-server') as typeof import('../sts-test-server');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { recordSecret } = require('./log-capture') as typeof import('./log-capture');
  const addUser = TestCredentialStore.prototype.addUser;
  TestCredentialStore.prototype.addUser = function recordingAddUser(this: InstanceType<typeof TestCredentialStore>, accessKeyId: string, secretAccessKey: string, userName?: string) {
    recordSecret('AWS secret access key', secretAccessKey);
    return addUser.call(this, accessKeyId, secretAccessKey, userName);
  };
  const add = TestCredentialStore.prototype.add;
  TestCredentialStore.prototype.add = function recordingAdd(this: InstanceType<typeof TestCredentialStore>, identity) {
    recordSecret('AWS secret access key', identity.secretAccessKey);
    recordSecret('STS session token', identity.sessionToken);
    return add.call(this, identity);
  };
}

/** Counts calls that reach the key provider (KMS or keyring), i.e. data-key cache misses and generations. */
import type { Counter } from 'prom-client';
import type { KeyProvider } from '../keys/key-provider';

export function countingKeyProvider(inner: KeyProvider, calls: Counter<'provider' | 'operation' | 'result'>): KeyProvider {
  const count = async <T>(operation: string, run: () => Promise<T>): Promise<T> => {
    try {
      const result = await run();
      calls.inc({ provider: inner.name, operation, result: 'ok' });
      return result;
    } catch (error) {
      calls.inc({ provider: inner.name, operation, result: 'error' });
      throw error;
    }
  };
  return {
    name: inner.name,
    generateDataKey: (context) => count('GenerateDataKey', () => inner.generateDataKey(context)),
    decryptDataKey: (wrapped, context, keyId) => count('Decrypt', () => inner.decryptDataKey(wrapped, context, keyId)),
  };
}

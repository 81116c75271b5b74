/**
 * Counts and times calls that reach the key provider (KMS or keyring), i.e. data-key cache misses and
 * generations: coffer_gateway_key_provider_calls_total and coffer_gateway_key_provider_duration_seconds.
 */
import type { Counter, Histogram } from 'prom-client';
import type { KeyProvider } from '../keys/key-provider';

export interface KeyProviderMeters {
  readonly calls: Counter<'provider' | 'operation' | 'result'>;
  readonly seconds: Histogram<'provider' | 'operation' | 'result'>;
}

export function countingKeyProvider(inner: KeyProvider, meters: KeyProviderMeters): KeyProvider {
  const count = async <T>(operation: string, run: () => Promise<T>): Promise<T> => {
    const stop = meters.seconds.startTimer({ provider: inner.name, operation });
    try {
      const result = await run();
      meters.calls.inc({ provider: inner.name, operation, result: 'ok' });
      stop({ result: 'ok' });
      return result;
    } catch (error) {
      meters.calls.inc({ provider: inner.name, operation, result: 'error' });
      stop({ result: 'error' });
      throw error;
    }
  };
  return {
    name: inner.name,
    generateDataKey: (...args) => count('GenerateDataKey', () => inner.generateDataKey(...args)),
    decryptDataKey: (...args) => count('Decrypt', () => inner.decryptDataKey(...args)),
  };
}

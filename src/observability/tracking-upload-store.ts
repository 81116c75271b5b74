/**
 * The upstream store as the metrics see it: every call timed by operation and result
 * (coffer_gateway_upstream_request_duration_seconds; a GET until its body starts, a streamed PUT until
 * the upstream answered), and upstream GET bodies counted while they are open — incremented when the
 * store hands one out, decremented once the body stream closed (fully read, or destroyed because its
 * reader went away). A gauge that stays up without traffic is a leaked upstream stream.
 *
 * Each method forwards its arguments as they came (`...args`): a decorator that re-listed them would
 * silently drop the ones added later — as `putObject`'s `createOnly` once was, which turned the
 * write-once manifest create into a plain overwrite behind this wrapper.
 */
import type { Gauge, Histogram } from 'prom-client';
import type { UploadStore } from '../store/ports';

export interface UpstreamMeters {
  readonly readStreams: Gauge;
  readonly requestSeconds: Histogram<'operation' | 'result'>;
}

type StoreMethod = keyof UploadStore;
type MethodOf<K extends StoreMethod> = NonNullable<UploadStore[K]>;

export function trackingUploadStore(inner: UploadStore, meters: UpstreamMeters): UploadStore {
  const timed =
    <K extends StoreMethod>(operation: K) =>
    async (...args: Parameters<MethodOf<K>>): Promise<Awaited<ReturnType<MethodOf<K>>>> => {
      const stop = meters.requestSeconds.startTimer({ operation });
      try {
        const result = await (inner[operation] as (...a: Parameters<MethodOf<K>>) => ReturnType<MethodOf<K>>).apply(inner, args);
        stop({ result: 'ok' });
        return result;
      } catch (error) {
        stop({ result: 'error' });
        throw error;
      }
    };
  const getObject = timed('getObject');
  return {
    createMultipartUpload: timed('createMultipartUpload'),
    uploadPart: timed('uploadPart'),
    listParts: timed('listParts'),
    completeMultipartUpload: timed('completeMultipartUpload'),
    abortMultipartUpload: timed('abortMultipartUpload'),
    putObject: timed('putObject'),
    async getObject(...args) {
      const object = await getObject(...args);
      meters.readStreams.inc();
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        meters.readStreams.dec();
      };
      if (object.body.closed || object.body.destroyed) release();
      else object.body.once('close', release);
      return object;
    },
    headObject: timed('headObject'),
    listObjects: timed('listObjects'),
    deleteObjects: timed('deleteObjects'),
    // Optional: only stores that can manage bucket lifecycle rules have them (coffer lifecycle).
    ...(inner.getLifecycleRules === undefined ? {} : { getLifecycleRules: timed('getLifecycleRules') }),
    ...(inner.putLifecycleRules === undefined ? {} : { putLifecycleRules: timed('putLifecycleRules') }),
  };
}

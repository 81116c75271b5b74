/**
 * Counts upstream GET bodies while they are open: incremented when the store hands one out, decremented
 * once the body stream closed (fully read, or destroyed because its reader went away). A gauge that stays
 * up without traffic is a leaked upstream stream — e.g. a reader that never consumed nor released it.
 */
import type { Gauge } from 'prom-client';
import type { UploadStore } from '../store/ports';

export function trackingUploadStore(inner: UploadStore, open: Gauge): UploadStore {
  return {
    createMultipartUpload: (key) => inner.createMultipartUpload(key),
    uploadPart: (key, uploadId, partNumber, upload) => inner.uploadPart(key, uploadId, partNumber, upload),
    listParts: (key, uploadId) => inner.listParts(key, uploadId),
    completeMultipartUpload: (key, uploadId, parts) => inner.completeMultipartUpload(key, uploadId, parts),
    abortMultipartUpload: (key, uploadId) => inner.abortMultipartUpload(key, uploadId),
    // The options carry createOnly (If-None-Match: *), which is what makes manifests write-once under races.
    putObject: (key, upload, options) => inner.putObject(key, upload, options),
    async getObject(key, range) {
      const object = await inner.getObject(key, range);
      open.inc();
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        open.dec();
      };
      if (object.body.closed || object.body.destroyed) release();
      else object.body.once('close', release);
      return object;
    },
    headObject: (key) => inner.headObject(key),
    listObjects: (prefix, options) => inner.listObjects(prefix, options),
    deleteObjects: (keys) => inner.deleteObjects(keys),
    ...(inner.getLifecycleRules === undefined ? {} : { getLifecycleRules: () => (inner.getLifecycleRules as NonNullable<UploadStore['getLifecycleRules']>).call(inner) }),
    ...(inner.putLifecycleRules === undefined ? {} : { putLifecycleRules: (rules) => (inner.putLifecycleRules as NonNullable<UploadStore['putLifecycleRules']>).call(inner, rules) }),
  };
}

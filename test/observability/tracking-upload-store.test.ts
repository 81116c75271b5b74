import { Gauge, Registry } from 'prom-client';
import { trackingUploadStore } from '../../src/observability/tracking-upload-store';
import { isPreconditionFailed } from '../../src/store/ports';
import { MemoryUploadStore } from '../support/memory-upload-store';

function tracked(): { store: ReturnType<typeof trackingUploadStore>; inner: MemoryUploadStore } {
  const inner = new MemoryUploadStore();
  const gauge = new Gauge({ name: 'test_open_reads', help: 'open reads', registers: [new Registry()] });
  return { store: trackingUploadStore(inner, gauge), inner };
}

describe('trackingUploadStore', () => {
  it('passes createOnly through, so a second create of the same key is refused (write-once under races)', async () => {
    const { store, inner } = tracked();
    await store.putObject('m/key', { body: Buffer.from('first') }, { createOnly: true });
    const second = await store.putObject('m/key', { body: Buffer.from('second') }, { createOnly: true }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isPreconditionFailed(second)).toBe(true);
    expect(inner.objects.get('m/key')?.data.toString()).toBe('first');
  });
});

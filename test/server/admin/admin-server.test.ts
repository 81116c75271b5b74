import { createAdminServer } from '../../../src/server/admin/admin-server';
import { createMetrics } from '../../../src/observability/metrics';

test('health, readiness that flips, and metrics on the admin port', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  let reason: string | undefined = 'starting';
  const admin = createAdminServer({ registry: metrics.registry, readiness: { notReadyReason: () => reason } });
  const port = await admin.listen('127.0.0.1', 0);
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: response.status, body: await response.text() };
  };
  try {
    expect((await get('/healthz')).status).toBe(200);
    expect(await get('/readyz')).toEqual({ status: 503, body: 'not ready: starting\n' });
    reason = undefined;
    expect((await get('/readyz')).status).toBe(200);
    reason = 'draining';
    expect((await get('/readyz')).status).toBe(503);
    metrics.requests.inc({ operation: 'UploadPart', code: 'OK' });
    const scraped = await get('/metrics');
    expect(scraped.body).toContain('coffer_gateway_requests_total{operation="UploadPart",code="OK"} 1');
    expect((await get('/nope')).status).toBe(404);
  } finally {
    await admin.close();
  }
});

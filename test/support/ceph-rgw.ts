/** Connection info of the Ceph RADOS Gateways started by the jest global setup, if any. */
export interface CephRgw {
  readonly endpoint: string;
  readonly endpoint1MiB: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
}

export function cephRgw(): CephRgw | undefined {
  const info = process.env['COFFER_TEST_CEPH'];
  return info === undefined ? undefined : (JSON.parse(info) as CephRgw);
}

/** `describe` when Ceph is up, `describe.skip` otherwise (local runs without the packages). */
export const describeWithCeph: jest.Describe = (cephRgw() === undefined ? describe.skip : describe) as jest.Describe;

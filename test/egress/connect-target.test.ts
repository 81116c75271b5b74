/** What a CONNECT may reach: only `<served coffer>.<coffer endpoint domain>:443`; everything else refused with its reason. */
import { classifyConnectTarget } from '../../src/egress/connect-target';

const rules = { virtualHostSuffixes: ['coffers.example.internal'], isServedCoffer: (coffer: string) => coffer === 'demo-1250000000' };

describe('classifyConnectTarget', () => {
  test.each([
    ['demo-1250000000.cos.ap-guangzhou.myqcloud.com:443'],
    ['demo-1250000000.cos.ap-guangzhou.tencentcos.cn:443'],
    ['demo-1250000000.cdcs.ap-guangzhou.myqcloud.com:443'],
    ['demo-1250000000.coffers.example.internal:443'],
    ['DEMO-1250000000.COS.AP-GUANGZHOU.MYQCLOUD.COM:443'],
  ])('%s is intercepted, lower-cased', (target) => {
    expect(classifyConnectTarget(target, rules)).toEqual({ accepted: true, host: target.slice(0, -4).toLowerCase(), coffer: 'demo-1250000000' });
  });

  test.each([
    ['www.example.com:443', 'refused_host'],
    ['cos.ap-guangzhou.myqcloud.com:443', 'refused_host'],
    ['sts.tencentcloudapi.com:443', 'refused_host'],
    ['demo-1250000000.cos.ap-guangzhou.myqcloud.com.evil.example:443', 'refused_host'],
    ['demo-1250000000.cos.ap-guangzhou.myqcloud.com.:443', 'refused_host'],
    ['x.demo-1250000000.cos.ap-guangzhou.myqcloud.com:443', 'refused_host'],
    ['Not_A_Coffer.cos.ap-guangzhou.myqcloud.com:443', 'refused_host'],
    ['demo.cos.ap-guangzhou.myqcloud.com:443', 'refused_host'],
    ['other-1250000000.cos.ap-guangzhou.myqcloud.com:443', 'refused_unknown_coffer'],
    ['demo-1250000000.cos.ap-guangzhou.myqcloud.com:80', 'refused_port'],
    ['demo-1250000000.cos.ap-guangzhou.myqcloud.com:8443', 'refused_port'],
    ['demo-1250000000.cos.ap-guangzhou.myqcloud.com:0443', 'refused_port'],
    ['127.0.0.1:443', 'refused_ip_literal'],
    ['169.254.169.254:443', 'refused_ip_literal'],
    ['[::1]:443', 'refused_ip_literal'],
    ['2130706433:443', 'refused_ip_literal'],
    ['demo-1250000000.cos.ap-guangzhou.myqcloud.com', 'refused_malformed'],
    ['demo-1250000000.cos.ap-guangzhou.myqcloud.com:', 'refused_malformed'],
    ['/demo-1250000000/key', 'refused_malformed'],
    ['user@demo-1250000000.cos.ap-guangzhou.myqcloud.com:443', 'refused_host'],
    ['', 'refused_malformed'],
  ])('%s → %s', (target, result) => {
    const classified = classifyConnectTarget(target, rules);
    expect(classified).toMatchObject({ accepted: false, result });
    expect(classified.accepted ? '' : classified.reason).not.toContain(target === '' ? '\u0000' : target);
  });
});

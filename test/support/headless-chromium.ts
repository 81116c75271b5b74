/**
 * Debian's Chromium (`apt-get install chromium`, done by .ci/run) driven through playwright-core: the
 * browser tests run a real browser engine, with its real CORS enforcement, against real servers.
 * playwright-core downloads no browser of its own; it is pointed at /usr/bin/chromium (or
 * COFFER_TEST_CHROMIUM).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_ENV = 'COFFER_TEST_CHROMIUM';

export function chromiumPath(): string {
  return process.env[CHROMIUM_ENV] ?? '/usr/bin/chromium';
}

/** Why the browser tests cannot run here, or undefined when they can. */
export function chromiumSkipReason(): string | undefined {
  return existsSync(chromiumPath()) ? undefined : `Chromium is not installed at ${chromiumPath()} (apt-get install chromium, as .ci/run does; or set ${CHROMIUM_ENV})`;
}

/**
 * `describe` when Chromium is installed. Otherwise: in CI a describe whose one test fails with the
 * reason; locally `describe.skip`, with the reason in the title (as describeWithCeph).
 */
export function describeWithChromium(name: string, fn: () => void): void {
  const reason = chromiumSkipReason();
  if (reason === undefined) {
    describe(name, fn);
  } else if (process.env['CI'] !== undefined) {
    describe(name, () => {
      test('needs Chromium', () => {
        throw new Error(`Chromium unavailable in CI: ${reason}`);
      });
    });
  } else {
    describe.skip(`${name} [skipped: ${reason}]`, fn);
  }
}

/**
 * A headless Chromium. `hostMap`: host names resolved to 127.0.0.1 inside the browser only, so a page
 * can be served from an origin that is not loopback by name (no DNS, no traffic leaves the machine).
 */
export function launchChromium(options: { hostMap?: readonly string[] } = {}): Promise<Browser> {
  const rules = (options.hostMap ?? []).map((host) => `MAP ${host} 127.0.0.1`).join(',');
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // --no-sandbox: the tests run as root (CI, containers), where Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-dev-shm-usage', ...(rules === '' ? [] : [`--host-resolver-rules=${rules}`])],
  });
}

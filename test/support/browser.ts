/**
 * A headless Chromium for browser tests: Debian's package (or LOCKSTEP_CHROMIUM), driven by
 * playwright-core, which downloads no browser of its own. Missing Chromium fails the test with
 * how to get it: the test is not skipped.
 */
import { chromium, type Browser } from 'playwright-core';
import { requireBinary } from '../../src/stack/binaries';

export async function launchChromium(): Promise<Browser> {
  const executablePath = requireBinary('chromium');
  // Chromium refuses to sandbox itself as root (containers, CI runners).
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return chromium.launch({ executablePath, headless: true, args: asRoot ? ['--no-sandbox'] : [] });
}

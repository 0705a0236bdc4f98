/**
 * Debian's Chromium for the browser tests (playwright-core never downloads a browser): where it
 * is, the flags verified on these machines (README.md, "Getting a WebGPU adapter"; playwright adds
 * --headless and a fresh profile dir), and the rule for a missing one — a failure under CI, a
 * loud skip locally.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const chromiumArgs = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * Launches headless Chromium, or — when it is not installed — throws under CI and skips the test
 * (`ctx.skip()`, after a warning naming `what`) otherwise.
 */
export async function launchChromium(ctx: { skip: (note?: string) => void }, what: string): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    const msg = `Chromium not found at ${chromiumPath} (install it: sudo bash .ci/install-system-deps.sh, or set CHROMIUM_PATH)`;
    if (process.env.CI) throw new Error(`${what} is required in CI: ${msg}`);
    console.warn(`[dubito tests] SKIPPED ${what}: ${msg}`);
    ctx.skip();
    throw new Error('unreachable');
  }
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs, timeout: 60_000 });
}

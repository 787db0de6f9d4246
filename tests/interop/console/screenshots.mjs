// Console screenshots for the docs: headless Chromium (playwright-core, Debian's chromium)
// against a running `maestro serve --demo` on a loopback address, signed in with the demo
// login. Writes docs/console/{login,status,executions,execution,search,audit,catalog}.png.
//
//   node screenshots.mjs http://127.0.0.1:7070 ../../../docs/console [identity]
//
// This file owns only the browsing and the file names; it changes nothing on the server
// (every page it opens is a GET).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, out, identity = 'admin'] = process.argv.slice(2);
if (!base || !out) {
  console.error('usage: node screenshots.mjs BASE_URL OUT_DIR [demo identity]');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: CHROMIUM_ARGS,
});
try {
  const page = await browser.newPage({ viewport: { width: 1366, height: 860 } });
  const shot = async (name, full = true) => {
    await page.screenshot({ path: join(out, `${name}.png`), fullPage: full });
    console.log(join(out, `${name}.png`));
  };
  await page.goto(`${base}/login`);
  await shot('login', false);
  await page.goto(`${base}/login/demo?as=${encodeURIComponent(identity)}`);
  await page.goto(`${base}/`);
  await shot('status');
  await page.goto(`${base}/executions`);
  await shot('executions');
  const href = await page.locator('main table a.mono').first().getAttribute('href');
  await page.goto(`${base}${href}`);
  await shot('execution');
  await page.goto(`${base}/search?q=${encodeURIComponent('reason:action_disabled')}`);
  await shot('search');
  await page.goto(`${base}/audit`);
  await shot('audit', false);
  await page.goto(`${base}/catalog`);
  await shot('catalog', false);
} finally {
  await browser.close();
}

// The console end to end in real headless Chromium (playwright-core with Debian's chromium),
// JavaScript switched off, against a real `maestro serve` and a real OpenID provider
// (tests/interop/oidc). Driven by tests/it/browser.rs, which starts both and seeds data.
//
// Input: the environment variable E2E, a JSON object
//   {"base": URL, "shots": DIR,
//    "acme": {"exec": ID, "artifact": DIGEST, "receipt": DIGEST, "denied": ID, "reason": CODE},
//    "globex": {"exec": ID, "receipt": DIGEST}}
// Output: one line per step on stdout; exit 1 with the failed step on stderr.
//
// This file owns the browsing and its assertions; it posts nothing (the console has no write).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const cfg = JSON.parse(process.env.E2E ?? '{}');
const { base, shots, acme, globex } = cfg;
if (!base || !acme || !globex) {
  console.error('E2E must name base, acme and globex');
  process.exit(2);
}
if (shots) mkdirSync(shots, { recursive: true });

function check(cond, what) {
  if (!cond) throw new Error(what);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let step = 'start';
try {
  // No JavaScript at all: the console must work as plain HTML.
  const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1366, height: 860 } });
  const page = await context.newPage();
  const violations = [];
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text()); });
  const shot = async (name) => {
    if (shots) await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };
  const text = async () => page.locator('body').innerText();
  const html = async () => page.content();
  const noGlobex = async (where) => {
    const h = await html();
    check(!h.includes(globex.exec), `${where}: globex's execution id is on the page`);
    check(!h.includes(globex.receipt), `${where}: globex's receipt digest is on the page`);
    check(!/\bglobex\b/.test(await text()), `${where}: the word globex is on the page`);
  };

  step = 'a page without a session leads to the login page';
  let r = await page.goto(`${base}/executions`);
  check(page.url().startsWith(`${base}/login`), `landed on ${page.url()}`);
  await shot('login');
  console.log(`ok ${step}`);

  step = 'log in with the OpenID provider (code + PKCE)';
  await Promise.all([page.waitForURL(`${base}/executions`), page.click('text=Sign in with single sign-on')]);
  check((await text()).includes('oidc:alice@acme'), 'the header names alice');
  console.log(`ok ${step}`);

  step = 'list executions';
  const list = await html();
  check(list.includes(acme.exec) && list.includes(acme.denied), 'acme executions are listed');
  await noGlobex('executions');
  await shot('executions');
  console.log(`ok ${step}`);

  step = 'filter the list by status';
  await page.selectOption('select[name=status]', 'denied');
  await Promise.all([page.waitForURL(/status=denied/), page.click('button[type=submit]')]);
  check((await html()).includes(acme.denied) && !(await html()).includes(acme.exec), 'only the denied run');
  console.log(`ok ${step}`);

  step = 'open an execution: verified receipt, proof, explained decisions';
  await page.goto(`${base}/executions`);
  await Promise.all([page.waitForURL(new RegExp(acme.exec)), page.click(`a:has-text("${acme.exec}")`)]);
  const detail = await text();
  check(detail.includes('verified'), 'the receipt is verified');
  check(detail.includes(acme.receipt), 'the receipt digest is shown');
  check((await html()).includes('mc.admission') && detail.includes('same outcome'), 'decisions replay');
  await page.click('text=Inclusion proof');
  await shot('execution');
  console.log(`ok ${step}`);

  step = 'search by digest';
  await page.goto(`${base}/search`);
  await page.fill('input[name=q]', acme.artifact);
  await Promise.all([page.waitForURL(/\/search\?q=/), page.click('button[type=submit]')]);
  check((await html()).includes(acme.exec), 'the artifact digest finds its execution');
  await page.fill('input[name=q]', acme.artifact.slice(0, 'sha256:'.length + 10));
  await Promise.all([page.waitForURL(/\/search\?q=/), page.click('button[type=submit]')]);
  check((await html()).includes(acme.exec), 'a digest prefix finds it too');
  console.log(`ok ${step}`);

  step = 'search by deny reason';
  await page.fill('input[name=q]', `reason:${acme.reason}`);
  await Promise.all([page.waitForURL(/\/search\?q=/), page.click('button[type=submit]')]);
  check((await html()).includes(acme.denied), 'the deny reason finds the denied run');
  await shot('search');
  console.log(`ok ${step}`);

  step = "another tenant's data is nowhere";
  for (const path of ['/', '/executions', '/audit', '/catalog', '/goldens', '/search?q=name%3Ahello']) {
    r = await page.goto(`${base}${path}`);
    await noGlobex(path);
  }
  // Searching for globex's own identifiers: the query stays in the box, nothing is found.
  for (const q of [globex.receipt, globex.exec, globex.receipt.slice(0, 'sha256:'.length + 8)]) {
    r = await page.goto(`${base}/search?q=${encodeURIComponent(q)}`);
    const shown = await text();
    check(shown.includes('0 matches'), `search ${q}: ${shown}`);
    check(!shown.includes(q) && !/\bglobex\b/.test(shown), `search ${q} shows globex's data`);
  }
  // Naming globex's objects answers exactly like naming objects that do not exist.
  const fake = 'ex_01aaaaaaaaaaaaaaaaaaaaaaaa';
  for (const path of [`/executions/${globex.exec}`, `/executions/${globex.exec}?tenant=globex`,
    '/executions?tenant=globex', `/search?tenant=globex&q=${encodeURIComponent(globex.receipt)}`]) {
    r = await page.goto(`${base}${path}`);
    check(r.status() === 404, `${path} answers ${r.status()}`);
    const real = (await text()).replaceAll(globex.exec, 'ID');
    const missing = path.replaceAll(globex.exec, fake).replace('tenant=globex', 'tenant=nosuchtenant');
    r = await page.goto(`${base}${missing}`);
    check(r.status() === 404, `${missing} answers ${r.status()}`);
    const other = (await text()).replaceAll(fake, 'ID').replaceAll('nosuchtenant', 'globex');
    check(real === other, `${path} differs from a missing object's page:\n${real}\n---\n${other}`);
  }
  await page.goto(`${base}/`);
  await shot('status');
  console.log(`ok ${step}`);

  step = 'log out';
  await Promise.all([page.waitForURL(/\/login/), page.click('text=Log out')]);
  await page.goto(`${base}/executions`);
  check(page.url().startsWith(`${base}/login`), 'the session is gone');
  console.log(`ok ${step}`);

  step = "a globex user sees globex's data and nothing of acme's";
  await page.goto(`${base}/login/oidc?login_hint=${encodeURIComponent('bob@globex')}&next=%2Fexecutions`);
  await page.waitForURL(`${base}/executions`);
  const bob = await html();
  check(bob.includes(globex.exec), "globex's execution is listed");
  check(!bob.includes(acme.exec) && !bob.includes(acme.denied), 'nothing of acme');
  r = await page.goto(`${base}/executions/${acme.exec}`);
  check(r.status() === 404, `acme's execution answers ${r.status()}`);
  console.log(`ok ${step}`);

  step = 'no CSP violation on any page';
  check(violations.length === 0, violations.join('\n'));
  console.log(`ok ${step}`);
  await context.close();
} catch (e) {
  console.error(`FAILED ${step}: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}

/**
 * The web console in a real headless browser (Debian's chromium driven by playwright-core, no
 * browser download) against the local edge: refused without its token, then the sample TAs, an
 * invoke from the page, the latency chart and the telemetry list updating live, an attestation
 * verdict under two policies, and a twin patch validated before it is sent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { cliBin, cliOk, eventually, repoRoot } from '../acceptance/user.js';
import { startLocalEdge, type LocalEdge } from '../support/local-edge.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The flags a closed-network machine needs (no background connections, no sandbox as root).
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let edge: LocalEdge;
let consoleProc: ChildProcess;
let url: string;
let origin: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

describe('enclave-edge console', () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium (apt-get install chromium)`);
    edge = await startLocalEdge();
    // Metrics every second, so the chart has points within the test.
    await cliOk(['twin', 'patch', 'ta-runtime', '{"metricsIntervalSec":1}', ...edge.at()]);
    consoleProc = spawn(process.execPath, [cliBin, '--json', 'console', ...edge.at()], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    consoleProc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    url = await eventually(() => {
      const m = /"url": "([^"]+)"/.exec(out);
      if (!m) throw new Error(`console printed no URL yet: ${out}`);
      return m[1]!;
    }, 30_000, 100);
    origin = new URL(url).origin;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  }, 150_000);

  afterAll(async () => {
    await browser?.close();
    consoleProc?.kill('SIGTERM');
    await edge?.stop();
  }, 30_000);

  it('console --url prints the running console\'s URL', async () => {
    expect((await cliOk(['console', '--url', ...edge.at()])).stdout.trim()).toBe(url);
  });

  it('is refused without its token, with a wrong token, and from another Host', async () => {
    expect((await fetch(`${origin}/`)).status).toBe(403);
    expect((await fetch(`${origin}/api/overview`)).status).toBe(403);
    expect((await fetch(`${origin}/?token=wrong`)).status).toBe(403);
    const token = new URL(url).searchParams.get('token')!;
    const ok = await fetch(url, { redirect: 'manual' });
    expect(ok.status).toBe(303);
    const cookie = ok.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const withCookie = { cookie: cookie.split(';')[0]! };
    expect((await fetch(`${origin}/api/overview`, { headers: withCookie })).status).toBe(200);
    // A cross-site page cannot post (Origin), and a rebinding DNS name is not this listener (Host).
    const post = await fetch(`${origin}/api/invoke`, { method: 'POST', headers: { ...withCookie, origin: 'http://evil.example', 'content-type': 'application/json' }, body: '{"module":"host-module","method":"health"}' });
    expect(post.status).toBe(403);
    const rebound = await new Promise<number>((resolve, reject) => {
      const r = request(`${origin}/api/overview`, { headers: { ...withCookie, host: `attacker.example:${new URL(origin).port}` } }, (res) => (res.resume(), resolve(res.statusCode!)));
      r.on('error', reject);
      r.end();
    });
    expect(rebound).toBe(403);
    expect(token.length).toBeGreaterThanOrEqual(40);
  });

  it('shows the modules and the sample TAs with their status, measurement and signer', async () => {
    await page.goto(url);
    expect(page.url()).toBe(`${origin}/`); // the token left the address bar
    for (const ta of ['hello', 'sensor-signer', 'key-vault', 'wasm-stats']) {
      await page.waitForSelector(`#tas tr[data-ta="${ta}"][data-status="loaded"]`, { timeout: 30_000 });
    }
    expect(await page.textContent('#modules')).toMatch(/ta-runtime[\s\S]*connected/);
    expect(await page.getAttribute('#tas tr[data-ta="hello"] td:nth-child(4)', 'title')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('invokes hello ping from the page', async () => {
    await page.fill('#invoke textarea[name=payload]', '{"ta":"hello","command":"ping"}');
    await page.click('#invoke button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#invoke-result')?.getAttribute('data-status') === '200', null, { timeout: 30_000 });
    expect(await page.textContent('#invoke-result')).toMatch(/"result": "pong"/);
  });

  it('plots latency from the metrics events and lists telemetry live, with a filter', async () => {
    const before = Number(await page.getAttribute('#telemetry', 'data-count'));
    // More calls, so the next metrics intervals count them.
    for (let i = 0; i < 3; i++) await page.click('#invoke button[type=submit]');
    await page.waitForFunction(() => Number(document.querySelector('#latency')?.getAttribute('data-points')) >= 2, null, { timeout: 30_000 });
    expect(await page.$('#latency canvas')).not.toBeNull();
    await page.waitForFunction((n) => Number(document.querySelector('#telemetry')?.getAttribute('data-count')) > n, before, { timeout: 30_000 });
    await page.fill('#telemetry-filter', 'metrics.invocations');
    const items = await page.$$eval('#telemetry li', (lis) => lis.map((l) => l.textContent ?? ''));
    expect(items.length).toBeGreaterThan(0);
    for (const t of items) expect(t).toMatch(/metrics\.invocations/);
  });

  it('fetches evidence and shows the verifier\'s verdict under the chosen policy', async () => {
    await page.selectOption('#attest select[name=ta]', 'hello');
    await page.uncheck('#attest input[name=allowEmulated]');
    await page.click('#attest button[type=submit]');
    await page.waitForFunction(() => /REJECTED|ACCEPTED/.test(document.querySelector('#attest-verdict')?.textContent ?? ''), null, { timeout: 30_000 });
    expect(await page.textContent('#attest-verdict')).toMatch(/^REJECTED \(emulated\)/);

    await page.check('#attest input[name=allowEmulated]');
    await page.click('#attest button[type=submit]');
    await page.waitForFunction(() => /^ACCEPTED/.test(document.querySelector('#attest-verdict')?.textContent ?? ''), null, { timeout: 30_000 });
    const claims = (await page.textContent('#attest-claims'))!;
    expect(JSON.parse(claims)).toMatchObject({ tee: 'emulated' });
    expect(claims).toMatch(/"name": "hello"/);
  });

  it('validates a twin patch before sending it, and applies a valid one', async () => {
    await page.fill('#twin textarea[name=patch]', '{"metricsIntervalSec":"often"}');
    await page.click('#twin button[type=submit]');
    await page.waitForFunction(() => /CONFIG_INVALID/.test(document.querySelector('#twin-message')?.textContent ?? ''), null, { timeout: 15_000 });
    expect(await page.textContent('#twin-message')).toMatch(/metricsIntervalSec/);

    await page.fill('#twin textarea[name=patch]', '{"logLevel":"debug"}');
    await page.click('#twin button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#twin-message')?.textContent === 'applied', null, { timeout: 15_000 });
    const desired = JSON.parse((await cliOk(['--json', 'twin', 'show', 'ta-runtime', ...edge.at()])).stdout).properties.desired;
    expect(desired).toMatchObject({ logLevel: 'debug', metricsIntervalSec: 1 });
    expect(pageErrors).toEqual([]);
  });
});

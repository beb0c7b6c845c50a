/**
 * A new user's own TA on the local edge (issue 16): `ta new` outside the repository, built and
 * tested with the registry unreachable, `npm run deploy` into a running simulator, replaced in
 * place without touching the other TAs; an untrusted signer refused with the fix named; the
 * scriptable exit codes of `invoke`; `sim status` as an aligned table. Real CLI, real npm, real
 * simulator with the repository's manifest, in child processes. A debug build deployed with
 * `--inspect wait` stops at a breakpoint in its TypeScript while invokeTA waits for it.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SourceMap } from 'node:module';
import { cli, cliOk, repoRoot } from '../acceptance/user.js';
import { startLocalEdge, type LocalEdge } from '../support/local-edge.js';
import { Cdp } from '../support/cdp.js';

let edge: LocalEdge | undefined;
let stateDir: string;
let work: string;
const at = (): string[] => ['--state-dir', stateDir];

/** npm as a user runs it, with every registry unreachable (a closed local port). */
function npm(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  const env = { ...process.env, npm_config_registry: 'http://127.0.0.1:9/', npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
  return new Promise((resolve) => {
    execFile('npm', args, { cwd, env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, out: stdout + stderr });
    });
  });
}

async function invoke(payload: unknown, method = 'invokeTA'): Promise<{ status: number; payload: any }> {
  return JSON.parse((await cliOk(['--json', 'invoke', 'host-module', method, JSON.stringify(payload), ...at()])).stdout);
}

async function reportedTAs(): Promise<Record<string, { status: string; since?: string; measurement?: string }>> {
  return JSON.parse((await cliOk(['--json', 'twin', 'show', 'ta-runtime', ...at()])).stdout).properties.reported.tas;
}

describe('ta deploy: your own TA on the local edge', () => {
  const project = () => join(work, 'my-ta');

  beforeAll(async () => {
    edge = await startLocalEdge();
    stateDir = edge.stateDir;
    work = edge.work;
  }, 120_000);

  afterAll(async () => {
    await edge?.stop();
  }, 30_000);

  it('ta new outside the repository builds, tests and deploys with no registry, and its hints never need one', async () => {
    const created = await cliOk(['ta', 'new', 'my-ta', '--dir', project()]);
    expect(created.stdout).toMatch(/npm install --offline/);
    expect(created.stdout).not.toMatch(/npx/);
    const pkg = JSON.parse(readFileSync(join(project(), 'package.json'), 'utf8'));
    expect(pkg.devDependencies['@enclave-edge/cli']).toBe(`file:${join(repoRoot, 'packages/cli')}`);
    expect(Object.keys(pkg.scripts)).toEqual(expect.arrayContaining(['build', 'test', 'keygen', 'deploy']));

    for (const step of [['install'], ['run', 'keygen'], ['run', 'build'], ['test']]) {
      const r = await npm(step, project());
      expect(r.code, `npm ${step.join(' ')}:\n${r.out}`).toBe(0);
    }
    const deployed = await npm(['run', 'deploy', '--', ...at()], project());
    expect(deployed.code, deployed.out).toBe(0);
    expect(deployed.out).toMatch(/Trusted signer [0-9a-f]{64} as "my-ta-[0-9a-f]{8}" in ta-runtime policy\.trustedSigners/);
    expect(deployed.out).toMatch(/Deployed my-ta 0\.1\.0 → loaded/);
    expect(deployed.out).toMatch(/Try it: .*invoke host-module invokeTA '\{"ta":"my-ta","command":"ping"\}' --state-dir /);
    expect(await invoke({ ta: 'my-ta', command: 'ping' })).toEqual({ status: 200, payload: { result: 'pong' } });
    expect((await reportedTAs())['my-ta']).toMatchObject({ status: 'loaded' });
  });

  it('deploying again replaces the TA in place and restarts no other TA', async () => {
    const before = await reportedTAs();
    const src = join(project(), 'src/index.ts');
    writeFileSync(src, readFileSync(src, 'utf8').replace("ping: () => 'pong'", "ping: () => 'pong v2'"));
    const r = await cli(['--json', 'ta', 'deploy', project(), '--key', join(project(), 'key.pem'), ...at()]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ ta: 'my-ta', status: 'loaded' });
    expect(out.trustedSignerAdded).toBeUndefined(); // already trusted: the policy is not touched
    expect(out.measurement).not.toBe(before['my-ta']!.measurement);
    expect(await invoke({ ta: 'my-ta', command: 'ping' })).toEqual({ status: 200, payload: { result: 'pong v2' } });
    const after = await reportedTAs();
    for (const name of ['hello', 'sensor-signer', 'key-vault', 'wasm-stats']) expect(after[name]?.since, name).toBe(before[name]?.since);
  });

  it('an untrusted signer is refused before anything changes, and the refusal names the fix', async () => {
    const otherKey = join(work, 'other.pem');
    await cliOk(['ta', 'keygen', '--out', otherKey]);
    const before = await reportedTAs();
    const r = await cli(['ta', 'deploy', project(), '--key', otherKey, ...at()]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^enclave-edge: POLICY_VIOLATION: ta-runtime does not trust signer [0-9a-f]{64} of my-ta\. Fix: .*ta deploy .* --key .*other\.pem --trust-signer/);
    expect((await reportedTAs())['my-ta']!.measurement).toBe(before['my-ta']!.measurement);
    expect(await invoke({ ta: 'my-ta', command: 'ping' })).toEqual({ status: 200, payload: { result: 'pong v2' } });
  });

  it('a bundle that is not signed is refused with how to sign it', async () => {
    const built = await cliOk(['--json', 'ta', 'build', project(), '--out', join(work, 'unsigned.tab')]);
    expect(JSON.parse(built.stdout).signed).toBe(false);
    const r = await cli(['ta', 'deploy', join(work, 'unsigned.tab'), ...at()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^enclave-edge: SIGNATURE_INVALID: .*unsigned\.tab is not signed: name a key with --key/);
  });

  it('invoke: exit 0 for 2xx, 3 for any other method status (answer still on stdout); a method our modules lack is answered at once; a silent one times out with what to check', async () => {
    const ok = await cli(['invoke', 'host-module', 'invokeTA', '{"ta":"hello","command":"ping"}', ...at()]);
    expect(ok.code).toBe(0);

    const notFound = await cli(['--json', 'invoke', 'host-module', 'invokeTA', '{"ta":"no-such-ta","command":"ping"}', ...at()]);
    expect(notFound.code).toBe(3);
    expect(JSON.parse(notFound.stdout).status).toBe(404);
    expect(notFound.stderr).toMatch(/^enclave-edge: [A-Z_]+: host-module invokeTA answered 404: .*no-such-ta/);

    const bad = await cli(['invoke', 'host-module', 'invokeTA', '{"command":"ping"}', ...at()]);
    expect(bad.code).toBe(3);

    // Our modules answer a method they do not have at once, with their method list.
    const typo = await cli(['invoke', 'host-module', 'invokeTa', '{}', '--timeout', '60', ...at()]);
    expect(typo.code).toBe(3);
    expect(typo.stderr).toMatch(/^enclave-edge: ITEM_NOT_FOUND: host-module invokeTa answered 404: host-module has no method "invokeTa"; its methods: invokeTA, listTAs/);
    const runtimeTypo = await cli(['--json', 'invoke', 'ta-runtime', 'loadTa', '{}', '--timeout', '60', ...at()]);
    expect(runtimeTypo.code).toBe(3);
    expect(JSON.parse(runtimeTypo.stdout).payload.error.message).toMatch(/ta-runtime has no method "loadTa"; its methods: .*loadTA/);
    // Another module that does not answer: the timeout says what to check.
    const silent = await cli(['invoke', 'SimulatedTemperatureSensor', 'noSuchMethod', '{}', '--timeout', '1', ...at()]);
    expect(silent.code).toBe(1);
    expect(silent.stderr).toMatch(/TIMEOUT: no answer from SimulatedTemperatureSensor noSuchMethod within 1 s: check that module "SimulatedTemperatureSensor" exists and implements method "noSuchMethod"/);
  });

  it('ta deploy --debug --inspect wait: a debugger at the reported URL stops the TA at a line of its TypeScript while invokeTA waits; a release build is refused --inspect', async () => {
    const key = join(project(), 'key.pem');
    const release = await cli(['ta', 'deploy', project(), '--key', key, '--inspect', ...at()]);
    expect(release.code).toBe(1);
    expect(release.stderr).toMatch(/^enclave-edge: POLICY_VIOLATION: --inspect: TA "my-ta" is a release build: only debug builds .* can be inspected, because an inspector has full control of the TA; deploy a debug build \(--debug\)/);

    await cliOk(['twin', 'patch', 'ta-runtime', '{"policy":{"allowDebug":true}}', ...at()]); // debug TAs run only where the policy allows them
    const r = await cli(['--json', 'ta', 'deploy', project(), '--debug', '--inspect', 'wait', '--key', key, ...at()]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { status: string; inspectorUrl: string };
    expect(out.status).toBe('loaded');
    expect(out.inspectorUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]{36}$/);
    expect(r.stderr).toContain(`debugger listening for TA my-ta at ${out.inspectorUrl}`);
    expect((await reportedTAs())['my-ta']).toMatchObject({ status: 'loaded', debug: true, inspectorUrl: out.inspectorUrl });

    const cdp = await Cdp.connect(out.inspectorUrl);
    try {
      await cdp.send('Debugger.enable');
      await cdp.send('Runtime.runIfWaitingForDebugger');
      await cdp.next('Debugger.paused'); // before the TA's first line
      const script = cdp.seen('Debugger.scriptParsed').find((e) => e.params.url === 'ta:///my-ta.js')!;
      const map = new SourceMap(JSON.parse(Buffer.from(String(script.params.sourceMapURL).replace(/^data:application\/json;base64,/, ''), 'base64').toString('utf8')));
      const tsLine = readFileSync(join(project(), 'src/index.ts'), 'utf8').split('\n').findIndex((l) => l.includes("ping: () => 'pong v2'")) + 1;
      const { scriptSource } = (await cdp.send('Debugger.getScriptSource', { scriptId: script.params.scriptId })) as { scriptSource: string };
      type Entry = { generatedLine: number; generatedColumn: number; originalSource?: string; originalLine?: number };
      let at0: { lineNumber: number; columnNumber: number } | undefined;
      scriptSource.split('\n').some((text, g) => [...text].some((_, c) => {
        const e = map.findEntry(g, c) as Entry;
        if (e.generatedLine === g && e.generatedColumn === c && e.originalSource?.endsWith('src/index.ts') && e.originalLine === tsLine - 1) at0 = { lineNumber: g, columnNumber: c };
        return at0 !== undefined;
      }));
      const bp = (await cdp.send('Debugger.setBreakpointByUrl', { url: 'ta:///my-ta.js', ...at0! })) as { breakpointId: string };
      await cdp.send('Debugger.resume');

      const answer = invoke({ ta: 'my-ta', command: 'ping' });
      const hit = await cdp.next('Debugger.paused');
      expect(hit.params.hitBreakpoints).toEqual([bp.breakpointId]);
      const top = (hit.params.callFrames as { location: { lineNumber: number; columnNumber: number } }[])[0]!;
      const where = map.findEntry(top.location.lineNumber, top.location.columnNumber) as Entry;
      expect(where.originalSource).toMatch(/src\/index\.ts$/);
      expect(where.originalLine! + 1).toBe(tsLine);
      await cdp.send('Debugger.resume');
      expect(await answer).toEqual({ status: 200, payload: { result: 'pong v2' } });
    } finally {
      cdp.close();
    }
  });

  it('sim status prints the modules as an aligned table', async () => {
    const r = await cliOk(['sim', 'status', ...at()]);
    const lines = r.stdout.split('\n');
    const header = lines.findIndex((l) => /^\s+MODULE\s+RUN\s+STATE\s+CONNECTION\s+PID\s+RESTARTS$/.test(l));
    expect(header, r.stdout).toBeGreaterThan(-1);
    const rows = lines.slice(header, header + 4);
    expect(rows.slice(1).map((l) => l.trim().split(/\s+/)[0])).toEqual(expect.arrayContaining(['ta-runtime', 'host-module']));
    // Every column starts at the same offset in every row.
    const starts = (l: string) => [...l.matchAll(/(?<=^\s*|\s{2,})\S/g)].map((m) => m.index);
    for (const row of rows.slice(1)) expect(starts(row).slice(0, 4), row).toEqual(starts(rows[0]!).slice(0, 4));
  });
});

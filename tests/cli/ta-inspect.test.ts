/**
 * `ta run --inspect-brk` as a developer uses it: the CLI prints the inspector URL of the debug
 * TA's enclave and waits; a DevTools-protocol client attaches, sets a breakpoint at a line of
 * the TA's TypeScript (mapped through the source map the script declares to the debugger),
 * lets it run, and the TA pauses exactly there; resumed, the command's result arrives.
 * A release TA is refused --inspect before anything runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTA } from '@enclave-edge/ta-toolchain';
import { generateSigningKey, pemSigner } from '@enclave-edge/bundle';
import { Cdp } from '../support/cdp.js';

const CLI = join(import.meta.dirname, '..', '..', 'packages', 'cli', 'bin', 'enclave-edge.js');
const HELLO = join(import.meta.dirname, '..', '..', 'examples', 'tas', 'hello');
const TS_FILE = 'src/index.ts';
/** 1-based line of the `echo` command in the hello TA's TypeScript. */
const ECHO_LINE = readFileSync(join(HELLO, TS_FILE), 'utf8').split('\n').findIndex((l) => l.includes('echo: (_ctx, params) => params')) + 1;

let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ee-inspect-'));
  const key = generateSigningKey();
  writeFileSync(join(dir, 'key.pub.pem'), key.publicKeyPem);
  const signer = pemSigner(key.privateKeyPem);
  writeFileSync(join(dir, 'debug.tab'), (await buildTA(HELLO, { write: false, signer, debug: true })).bundle);
  writeFileSync(join(dir, 'release.tab'), (await buildTA(HELLO, { write: false, signer, debug: false })).bundle);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The script's own source map, as the debugger reads it (a data: URL in scriptParsed). */
function mapOf(sourceMapURL: string): SourceMap {
  const m = /^data:application\/json;base64,(.*)$/.exec(sourceMapURL);
  if (!m) throw new Error(`not an inline source map: ${sourceMapURL.slice(0, 60)}`);
  return new SourceMap(JSON.parse(Buffer.from(m[1]!, 'base64').toString('utf8')));
}

type Entry = { generatedLine: number; generatedColumn: number; originalSource?: string; originalLine?: number; originalColumn?: number };

/** The first generated position (0-based) that maps to this 1-based line of the TS file. */
function generatedFor(map: SourceMap, script: string, tsLine: number): { lineNumber: number; columnNumber: number } {
  const lines = script.split('\n');
  for (let g = 0; g < lines.length; g++) {
    for (let c = 0; c < lines[g]!.length; c++) {
      const e = map.findEntry(g, c) as Entry;
      if (e.generatedLine === g && e.generatedColumn === c && e.originalSource?.endsWith(TS_FILE) && e.originalLine === tsLine - 1) return { lineNumber: g, columnNumber: c };
    }
  }
  throw new Error(`no generated position maps to ${TS_FILE}:${tsLine}`);
}

describe('ta run --inspect', () => {
  it('--inspect-brk: a debugger attaches, stops at a breakpoint set in the TA\'s TypeScript, and the result arrives after resume', async () => {
    expect(ECHO_LINE).toBeGreaterThan(0);
    const child = spawn(process.execPath, [CLI, '--json', 'ta', 'run', 'debug.tab', 'echo', '{"n":42}', '--signer', 'key.pub.pem', '--allow-debug', '--inspect-brk', '--state-dir', 'st'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ENCLAVE_EDGE_DEBUG: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /debugger listening for TA hello at (ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+)/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      void exited.then((code) => reject(new Error(`ta run exited ${code} before printing the inspector URL:\n${stderr}`)));
    });
    try {
      expect(stderr).toMatch(/waiting for the debugger/);
      const cdp = await Cdp.connect(url);
      await cdp.send('Debugger.enable');
      await cdp.send('Runtime.runIfWaitingForDebugger');
      // --inspect-brk: the first stop is before the TA's first line, in the TA's own script.
      const first = await cdp.next('Debugger.paused');
      const frames = first.params.callFrames as { url: string; location: { scriptId: string; lineNumber: number; columnNumber: number }; functionName: string }[];
      const parsed = cdp.seen('Debugger.scriptParsed').find((e) => e.params.url === 'ta:///hello.js')!;
      expect(frames[0]!.location.scriptId).toBe(parsed.params.scriptId);
      expect(frames[0]!.location.lineNumber).toBe(0); // the wrapper line, before the bundle's first
      expect(parsed.params.sourceMapURL).toMatch(/^data:application\/json;base64,/);
      const map = mapOf(parsed.params.sourceMapURL as string);
      const { scriptSource } = (await cdp.send('Debugger.getScriptSource', { scriptId: parsed.params.scriptId })) as { scriptSource: string };
      const at = generatedFor(map, scriptSource, ECHO_LINE);
      const bp = (await cdp.send('Debugger.setBreakpointByUrl', { url: 'ta:///hello.js', ...at })) as { breakpointId: string; locations: unknown[] };
      expect(bp.locations.length).toBe(1);
      await cdp.send('Debugger.resume');

      const hit = await cdp.next('Debugger.paused');
      expect(hit.params.hitBreakpoints).toEqual([bp.breakpointId]);
      const top = (hit.params.callFrames as typeof frames)[0]!;
      const where = map.findEntry(top.location.lineNumber, top.location.columnNumber) as Entry;
      expect(where.originalSource).toMatch(/src\/index\.ts$/);
      expect(where.originalLine! + 1).toBe(ECHO_LINE);
      // Paused inside the call: the command's params are there to look at.
      const { result } = (await cdp.send('Debugger.evaluateOnCallFrame', { callFrameId: (top as unknown as { callFrameId: string }).callFrameId, expression: 'JSON.stringify(params)' })) as { result: { value: string } };
      expect(result.value).toBe('{"n":42}');
      expect(stdout).toBe(''); // no result while the TA is paused
      await cdp.send('Debugger.resume');

      expect(await exited, stderr).toBe(0);
      const out = JSON.parse(stdout) as { result: unknown; ta: { debug: boolean } };
      expect(out.result).toEqual({ n: 42 });
      expect(out.ta.debug).toBe(true);
      cdp.close();
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('refuses --inspect for a release TA, naming why, before the TA runs', async () => {
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, [CLI, 'ta', 'run', 'release.tab', 'ping', '--signer', 'key.pub.pem', '--inspect', '--state-dir', 'st'], { cwd: dir, env: { ...process.env, ENCLAVE_EDGE_DEBUG: '' } }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/POLICY_VIOLATION: --inspect: TA "hello" is a release build: only debug builds .* can be inspected, because an inspector has full control of the TA/);
    expect(r.stderr).not.toMatch(/debugger listening|running hello/);
    expect(r.stdout).toBe('');
  });
});

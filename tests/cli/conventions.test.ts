/**
 * The conventions every `enclave-edge` command keeps (issue 2): `--help` everywhere, `--json` for
 * scripts, and on failure a non-zero exit with exactly one line `enclave-edge: CODE: reason` on
 * stderr (no stack trace) plus `{"error":{"code","message"}}` on stdout with `--json`.
 * The command tree comes from the real commander program; every case runs the real binary.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Help, type Command } from 'commander';
import { ERROR_CODES } from '@enclave-edge/errors';
import { createDevelopmentCa } from '@enclave-edge/attestation';
import { buildProgram } from '@enclave-edge/cli/program';
import { commandGroups } from '@enclave-edge/cli/commands/index';

const bin = fileURLToPath(new URL('../../packages/cli/bin/enclave-edge.js', import.meta.url));
let dir: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: dir, timeout: 30_000, env: { ...process.env, ENCLAVE_EDGE_DEBUG: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number | null }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** Run many command lines with a few processes at a time (2 shared cores). */
async function cliAll(lines: readonly (readonly string[])[], width = 4): Promise<Run[]> {
  const out: Run[] = new Array(lines.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < lines.length) {
        const i = next++;
        out[i] = await cli(lines[i]!);
      }
    }),
  );
  return out;
}

function walk(cmd: Command, path: string[] = []): Array<{ path: string[]; cmd: Command }> {
  const own = cmd.commands.filter((c) => c.name() !== 'help');
  return [{ path, cmd }, ...own.flatMap((c) => walk(c, [...path, c.name()]))];
}

let program: Command;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ee-cli-conv-'));
  writeFileSync(join(dir, 'bad.json'), '{"modulesContent": ');
  writeFileSync(join(dir, 'junk.tab'), 'junk');
  writeFileSync(join(dir, 'key.pem'), 'not a key');
  writeFileSync(join(dir, 'ca.pem'), (await createDevelopmentCa()).certPem);
  program = await buildProgram({ load: 'all' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('enclave-edge command tree', () => {
  it('packages/cli/README.md names every command', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../packages/cli/README.md', import.meta.url)), 'utf8');
    const leaves = walk(program).filter((n) => n.path.length > 0 && n.cmd.commands.length === 0).map((n) => n.path.join(' '));
    expect(leaves.filter((p) => !readme.includes('`' + p + ' ') && !readme.includes('`' + p + '`'))).toEqual([]);
  });

  it('lists every top-level command in the lazy-load table with the term and description of its real registration', async () => {
    const help = new Help();
    const real = Object.fromEntries(program.commands.map((c) => [c.name(), { term: help.subcommandTerm(c), description: c.description() }]));
    const table = Object.assign({}, ...commandGroups.map((g) => g.commands)) as Record<string, { term: string; description: string }>;
    expect(table).toEqual(real);
    // …so the help a bare start-up prints (no group imported) is the full program's help.
    const lazy = await cli(['--help']);
    expect(lazy.code).toBe(0);
    expect(lazy.stdout).toBe(program.helpInformation());
  });

  it('every command and subcommand answers --help with exit 0, a usage line and the --json option', async () => {
    const nodes = walk(program).filter((n) => n.path.length > 0);
    expect(nodes.length).toBeGreaterThanOrEqual(25);
    const runs = await cliAll(nodes.map((n) => [...n.path, '--help']));
    const bad = nodes.flatMap((n, i) => {
      const r = runs[i]!;
      const problems = [
        r.code !== 0 && `exit ${r.code}`,
        !r.stdout.startsWith(`Usage: enclave-edge ${n.path.join(' ')} `) && 'no usage line',
        !r.stdout.includes('--json') && 'no --json in help',
        r.stderr !== '' && `stderr: ${r.stderr}`,
        !n.cmd.description() && 'no description',
      ].filter(Boolean);
      return problems.length ? [`${n.path.join(' ')}: ${problems.join(', ')}`] : [];
    });
    expect(bad).toEqual([]);
  });
});

/** [args, expected error code or undefined for "any code", expected exit status, result printed too]. */
type Case = [args: string[], code: string | undefined, exit: number, report?: 'report'];
const USAGE = 2;
const FAILED = 1;

const cases: Record<string, Case[]> = {
  'enclave-edge': [
    [[], 'BAD_PARAMETERS', USAGE],
    [['bogus'], 'BAD_PARAMETERS', USAGE],
    [['help', 'bogus'], 'BAD_PARAMETERS', USAGE],
    [['--no-json', 'ta', 'inspect', 'x.tab'], 'BAD_PARAMETERS', USAGE],
    [['ta', 'inspect', 'x.tab', '--json=1'], 'BAD_PARAMETERS', USAGE],
  ],
  sim: [
    [['sim'], 'BAD_PARAMETERS', USAGE],
    [['sim', 'status', '--state-dir', 'no-sim'], 'UNAVAILABLE', FAILED],
    [['sim', 'credentials', '--state-dir', 'no-sim'], 'UNAVAILABLE', FAILED],
    [['sim', 'module-credentials', 'not a module'], 'BAD_PARAMETERS', FAILED],
    [['sim', 'up', '--mqtt-port', 'abc'], 'BAD_PARAMETERS', USAGE],
    [['sim', 'up', '--manifest', 'missing.json', '--state-dir', 'st'], 'ITEM_NOT_FOUND', FAILED],
  ],
  hub: [
    [['invoke'], 'BAD_PARAMETERS', USAGE],
    [['invoke', 'm', 'ping', '--state-dir', 'no-sim'], 'UNAVAILABLE', FAILED],
    [['invoke', 'm', 'ping', '--timeout', '999'], 'BAD_PARAMETERS', USAGE],
    [['invoke', 'm', 'ping', '--hub', 'h', '--connection-string', 'HostName=h'], 'BAD_PARAMETERS', FAILED],
    [['invoke', 'm', 'ping', '--connection-string', 'HostName=h'], 'BAD_PARAMETERS', FAILED],
    [['twin', 'patch', 'm', '{bad'], 'BAD_PARAMETERS', FAILED],
    [['invoke', 'm', 'ping', '{bad', '--state-dir', 'no-sim'], 'BAD_PARAMETERS', FAILED],
    [['invoke', 'm', 'ping', '{bad', '--state-dir', 'no-sim'], 'BAD_PARAMETERS', FAILED],
    [['twin', 'show', 'm', '--state-dir', 'no-sim'], 'UNAVAILABLE', FAILED],
    [['monitor', '--count', '0'], 'BAD_PARAMETERS', USAGE],
    [['monitor', '--timeout', 'abc'], 'BAD_PARAMETERS', USAGE],
    [['monitor', '--eventhub', '--from', 'yesterday'], 'BAD_PARAMETERS', USAGE],
    [['monitor', '--eventhub', '--consumer-group', 'a/b'], 'BAD_PARAMETERS', USAGE],
    [['monitor', '--from', 'earliest', '--state-dir', 'no-sim'], 'BAD_PARAMETERS', FAILED],
    [['monitor', '--eventhub', '--state-dir', 'no-sim'], 'UNAVAILABLE', FAILED],
  ],
  ta: [
    [['ta'], 'BAD_PARAMETERS', USAGE],
    [['ta', 'inspect'], 'BAD_PARAMETERS', USAGE],
    [['ta', 'inspect', 'missing.tab'], 'ITEM_NOT_FOUND', FAILED],
    [['ta', 'verify', 'junk.tab', '--signer', '0'.repeat(64)], 'BAD_FORMAT', FAILED],
    [['ta', 'verify', 'junk.tab'], 'BAD_PARAMETERS', FAILED], // the caller names the signer it trusts: no any-signer default
    [['ta', 'sign', 'junk.tab'], 'BAD_PARAMETERS', USAGE],
    [['ta', 'keygen', '--out', 'key.pem'], 'CONFLICT', FAILED],
    [['ta', 'digest', 'junk.tab', '--public-key', 'missing.pem'], 'ITEM_NOT_FOUND', FAILED],
    [['ta', 'digest', 'junk.tab', '--cert', 'missing.pem'], 'ITEM_NOT_FOUND', FAILED],
    [['ta', 'attach-signature', 'junk.tab', '--signature', 'junk.tab', '--public-key', 'missing.pem'], 'ITEM_NOT_FOUND', FAILED],
    [['ta', 'sign', 'junk.tab', '--key', 'key.pem', '--cert', 'missing.pem'], 'ITEM_NOT_FOUND', FAILED],
    [['ta', 'build', '--key', 'key.pem', '--cert', 'missing.pem'], 'ITEM_NOT_FOUND', FAILED],
    [['ta', 'build', '--cert', 'key.pem'], 'BAD_PARAMETERS', FAILED],
    [['ta', 'keygen', '--out', 'no-such-folder/k.pem'], 'ITEM_NOT_FOUND', FAILED],
  ],
  device: [
    [['device', 'show', '--rot', 'bogus', '--state-dir', 'dev'], 'CONFIG_INVALID', FAILED],
    [['device', 'import-cert', 'missing.pem', '--state-dir', 'dev'], 'ITEM_NOT_FOUND', FAILED],
    [['device', 'init', '--rot', 'pkcs11', '--state-dir', 'dev'], 'CONFIG_INVALID', FAILED],
  ],
  verify: [
    [['verify', 'a.b.c'], 'BAD_PARAMETERS', USAGE],
    [['verify', 'a.b.c', '--trust', 'missing.pem'], 'ITEM_NOT_FOUND', FAILED],
    [['verify', 'a.b.c', '--trust', 'missing.pem', '--policy', 'bad.json'], 'CONFIG_INVALID', FAILED],
    // A rejected verdict is a failure too; the verdict itself is still printed (stdout).
    [['verify', 'a.b.c', '--trust', 'ca.pem'], 'ATTESTATION_INVALID', FAILED, 'report'],
  ],
  deploy: [
    [['deploy'], 'BAD_PARAMETERS', USAGE],
    [['deploy', 'generate', '--platform', 'bogus'], 'BAD_PARAMETERS', FAILED],
    [['deploy', 'apply', 'bad.json'], 'BAD_FORMAT', FAILED],
    [['deploy', 'apply', 'missing.json'], 'ITEM_NOT_FOUND', FAILED],
    [['deploy', 'at-scale', 'missing.json', '--id', 'x', '--target-condition', 'y'], 'ITEM_NOT_FOUND', FAILED],
    [['deploy', 'at-scale', 'bad.json'], 'BAD_PARAMETERS', USAGE],
  ],
};

describe('failures: non-zero exit, one line `enclave-edge: CODE: reason`, JSON error body with --json', () => {
  for (const [group, list] of Object.entries(cases)) {
    it(`${group}: ${list.length} failure cases, human and --json`, async () => {
      const lines = list.flatMap(([args]) => [args, [...args, '--json']]);
      const runs = await cliAll(lines);
      const problems: string[] = [];
      list.forEach(([args, code, exit, report], i) => {
        for (const [r, json] of [[runs[2 * i]!, false], [runs[2 * i + 1]!, true]] as const) {
          const label = `${args.join(' ')}${json ? ' --json' : ''}`;
          const errLines = r.stderr.split('\n').filter((l) => l !== '');
          const m = /^enclave-edge: ([A-Z_]+): (.+)$/.exec(errLines[0] ?? '');
          if (r.code !== exit) problems.push(`${label}: exit ${r.code}, expected ${exit}`);
          if (errLines.length !== 1 || !m) problems.push(`${label}: stderr is not one "enclave-edge: CODE: reason" line: ${JSON.stringify(r.stderr)}`);
          if (/^\s+at /m.test(r.stderr + r.stdout)) problems.push(`${label}: stack trace`);
          if (m && !ERROR_CODES.includes(m[1] as never)) problems.push(`${label}: unknown code ${m[1]}`);
          if (m && code && m[1] !== code) problems.push(`${label}: code ${m[1]}, expected ${code}`);
          if (!json && !report && r.stdout !== '') problems.push(`${label}: stdout not empty on failure: ${JSON.stringify(r.stdout)}`);
          if (json) {
            let body: { error?: { code?: unknown; message?: unknown } } | undefined;
            try {
              body = JSON.parse(r.stdout);
            } catch {
              problems.push(`${label}: stdout is not JSON: ${JSON.stringify(r.stdout)}`);
            }
            if (body && (body.error?.code !== m?.[1] || body.error?.message !== m?.[2])) {
              problems.push(`${label}: JSON error ${JSON.stringify(body)} does not match stderr ${JSON.stringify(r.stderr)}`);
            }
          }
        }
      });
      expect(problems).toEqual([]);
    });
  }
});

describe('success output', () => {
  it('--version prints the package version', async () => {
    const r = await cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(fileURLToPath(new URL('../../packages/cli/package.json', import.meta.url)), 'utf8')).version);
  });

  it('human text by default, one JSON document with --json (global option before or after the command)', async () => {
    const [human, after, before] = await cliAll([
      ['ta', 'keygen', '--out', 'k1.pem'],
      ['ta', 'keygen', '--out', 'k2.pem', '--json'],
      ['--json', 'ta', 'keygen', '--out', 'k3.pem'],
    ]);
    expect(human!.code).toBe(0);
    expect(human!.stdout).toMatch(/^signer_id\s+[0-9a-f]{64}$/m);
    expect(() => JSON.parse(human!.stdout)).toThrow();
    for (const r of [after!, before!]) {
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'pem', signerId: expect.stringMatching(/^[0-9a-f]{64}$/) });
    }
  });
});

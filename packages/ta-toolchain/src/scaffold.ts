/** `newTA(name, dir)`: a TA project that builds and passes its test as generated. */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { TA_NAME_PATTERN } from '@enclave-edge/bundle';

export interface NewTAResult {
  dir: string;
  files: string[];
  uuid: string;
  /** Outside this installation's workspace: the project links the installation through file: dependencies. */
  standalone: boolean;
}

/** The enclave-edge checkout this toolchain belongs to (packages/ta-toolchain/dist → the root). */
const INSTALL_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const inside = (dir: string, root: string) => dir === root || dir.startsWith(root + sep);

/** This installation's vitest as a file: link (the test runner the project's test is written for). */
function vitestSpec(): string {
  try {
    return `file:${dirname(createRequire(import.meta.url).resolve('vitest/package.json'))}`;
  } catch {
    return '^4.1.0'; // an installation without dev dependencies: the registry's
  }
}

/**
 * package.json of a new project. Inside the workspace the packages resolve by name; outside it
 * they are file: links to this installation, so `npm install --offline` needs no registry, and
 * `npm run …` finds `enclave-edge` in node_modules/.bin (never a registry package of that name).
 */
function packageJson(name: string, target: string, standalone: boolean): string {
  const simState = standalone ? join(INSTALL_ROOT, '.edge-sim') : relative(target, join(INSTALL_ROOT, '.edge-sim'));
  const link = (p: string) => `file:${p}`;
  const vitest = vitestSpec();
  const deps = standalone
    ? { dependencies: { '@enclave-edge/ta-sdk': link(join(INSTALL_ROOT, 'packages/ta-sdk')) },
        devDependencies: { '@enclave-edge/ta-toolchain': link(join(INSTALL_ROOT, 'packages/ta-toolchain')), '@enclave-edge/cli': link(join(INSTALL_ROOT, 'packages/cli')), vitest } }
    : { dependencies: { '@enclave-edge/ta-sdk': '0.1.0' }, devDependencies: { '@enclave-edge/ta-toolchain': '0.1.0', '@enclave-edge/cli': '0.1.0', vitest: '^4.1.0' } };
  return JSON.stringify({
    name, version: '0.1.0', private: true, type: 'module',
    scripts: {
      build: 'enclave-edge ta build',
      test: 'vitest run',
      keygen: 'enclave-edge ta keygen --out key.pem',
      // The local edge `npm start` runs in the installation; --trust-signer adds this project's key once.
      deploy: `enclave-edge ta deploy . --key key.pem --trust-signer --state-dir ${/^[\w@%+=:,./-]+$/.test(simState) ? simState : `'${simState.replace(/'/g, `'\\''`)}'`}`,
    },
    ...deps,
  }, null, 2) + '\n';
}

const indexTs = (name: string) => `import { defineTA, TAError, utf8Decode, utf8Encode } from '@enclave-edge/ta-sdk';

// Every capability comes from \`ctx\`: there is no fs, network, process or Date.now in an enclave.
export default defineTA({
  onCreate(ctx) {
    ctx.log.info('${name} created', { version: ctx.ta.version });
  },
  commands: {
    ping: () => 'pong',
    echo: (_ctx, params) => params,
    async count(ctx) {
      const prev = await ctx.storage.get('counter');
      const next = (prev ? Number(utf8Decode(prev)) : 0) + 1;
      await ctx.storage.put('counter', utf8Encode(String(next)));
      return { count: next };
    },
    greet(_ctx, params) {
      const name = (params as { name?: unknown } | null)?.name;
      if (typeof name !== 'string' || !name) throw new TAError('BAD_PARAMETERS', 'params.name must be a non-empty string');
      return { greeting: \`Hello, \${name}!\` };
    },
  },
});
`;

const testTs = `import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTA } from '@enclave-edge/ta-toolchain';
import { loadTAForTests, type TAForTests } from '@enclave-edge/ta-toolchain/test-harness';

const projectDir = fileURLToPath(new URL('..', import.meta.url));

// The TA runs in the real emulated enclave (the backend ta-runtime uses, with real sealed storage
// in a throw-away dir), admitted under a test policy: the unsigned build is signed with a key made
// for this run and trusted for it alone, debug builds allowed. One enclave for the file: each
// costs a process start.
describe('my TA (in the emulated enclave)', () => {
  let ta: TAForTests;
  beforeAll(async () => {
    const { bundle } = await buildTA(projectDir, { write: false });
    ta = await loadTAForTests(bundle);
  });
  afterAll(() => ta?.destroy());

  it('answers ping and echo', async () => {
    expect(await ta.invoke('ping')).toBe('pong');
    expect(await ta.invoke('echo', { hello: [1, 2, 3] })).toEqual({ hello: [1, 2, 3] });
  });

  it('keeps a counter in sealed storage', async () => {
    expect(await ta.invoke('count')).toEqual({ count: 1 });
    expect(await ta.invoke('count')).toEqual({ count: 2 });
  });

  it('refuses bad parameters with BAD_PARAMETERS', async () => {
    await expect(ta.invoke('greet', {})).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    expect(await ta.invoke('greet', { name: 'edge' })).toEqual({ greeting: 'Hello, edge!' });
  });
});
`;

export function newTA(name: string, dir?: string): NewTAResult {
  if (!TA_NAME_PATTERN.test(name)) throw new EnclaveEdgeError('BAD_PARAMETERS', `TA name "${name}" must be 1..63 chars of a-z, 0-9 and "-", starting with a letter`);
  const target = resolve(dir ?? name);
  if (existsSync(target) && readdirSync(target).length) throw new EnclaveEdgeError('CONFLICT', `${target} exists and is not empty`);
  const uuid = randomUUID();
  const standalone = !inside(target, INSTALL_ROOT);
  const files: Record<string, string> = {
    'ta.json': JSON.stringify({ name, uuid, version: '0.1.0', productId: 1, securityVersion: 1, runtime: 'js', description: `The ${name} trusted application`, limits: { heapMb: 64, stackKb: 1024, maxConcurrency: 4, callTimeoutMs: 5000 }, session: { singleInstance: true, multiSession: true, keepAlive: false }, hostCalls: [] }, null, 2) + '\n',
    'package.json': packageJson(name, target, standalone),
    'tsconfig.json': JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, include: ['src', 'test'] }, null, 2) + '\n',
    'src/index.ts': indexTs(name),
    'test/ta.test.ts': testTs,
    'vitest.config.ts': "import { defineConfig } from 'vitest/config';\n\nexport default defineConfig({ test: { include: ['test/**/*.test.ts'] } });\n",
    '.gitignore': 'dist/\nnode_modules/\n*.pem\n# enclave-edge ta run state: development keys and sealed data\n.enclave-edge/\n',
  };
  for (const [rel, text] of Object.entries(files)) {
    const file = join(target, rel);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, text);
  }
  return { dir: target, files: Object.keys(files), uuid, standalone };
}

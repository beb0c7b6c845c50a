import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  diffDeployments,
  loadDeployment,
  parseDeployment,
  parseDotenv,
  SIMULATED_TEMPERATURE_SENSOR_ENTRY,
  type DeploymentSpec,
} from '@enclave-edge/edge-sim/deployment';
import { RouteSyntaxError } from '@enclave-edge/edge-sim/routes';

let root: string;

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value, null, 2));
}

function addModule(name: string, repository: string, main?: string): void {
  const dir = join(root, 'modules', name);
  mkdirSync(dir, { recursive: true });
  writeJson(join(dir, 'module.json'), { '$schema-version': '0.0.1', description: '', image: { repository, tag: { version: '0.1.0', platforms: { amd64: './Dockerfile.amd64' } } } } as never);
  writeJson(join(dir, 'package.json'), main ? { name, main } : { name });
}

function manifest(modules: Record<string, unknown>, extra: { routes?: unknown; twins?: Record<string, unknown>; ttl?: number } = {}) {
  const mc: Record<string, unknown> = {
    $edgeAgent: {
      'properties.desired': {
        schemaVersion: '1.1',
        runtime: { type: 'docker', settings: {} },
        systemModules: {},
        modules,
      },
    },
    $edgeHub: {
      'properties.desired': {
        schemaVersion: '1.2',
        routes: extra.routes ?? { up: 'FROM /messages/* INTO $upstream' },
        storeAndForwardConfiguration: { timeToLiveSecs: extra.ttl ?? 7200 },
      },
    },
  };
  for (const [k, v] of Object.entries(extra.twins ?? {})) mc[k] = { 'properties.desired': v };
  return { '$schema-template': '4.0.0', modulesContent: mc } as never;
}

const mod = (image: string, over: Record<string, unknown> = {}) => ({
  version: '1.0',
  type: 'docker',
  status: 'running',
  restartPolicy: 'always',
  settings: { image, createOptions: '{}' },
  ...over,
});

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'edge-sim-deploy-'));
  addModule('ta-runtime', '${CONTAINER_REGISTRY}/ta-runtime', './dist/index.js');
  addModule('host-module', 'localhost:5000/host-module', 'dist/main.js');
  addModule('plain', 'example/plain');
  writeFileSync(join(root, '.env'), '# registry for module.json\nCONTAINER_REGISTRY=myreg.azurecr.io\nQUOTED="a b" \nSENSOR_COUNT=25 # inline comment\n');
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('loadDeployment', () => {
  it('maps placeholders, repositories, the simulated sensor and unknown images', () => {
    const file = join(root, 'deployment.template.json');
    writeJson(
      file,
      manifest(
        {
          taRuntime: mod('${MODULES.ta-runtime}', { startupOrder: 1, env: { LOG: { value: 'debug' }, N: { value: 3 }, B: { value: true } } }),
          hostModule: mod('${MODULES.host-module.arm64v8}', { startupOrder: 2, restartPolicy: 'on-failure' }),
          byRepo: mod('myreg.azurecr.io/ta-runtime:0.1.0-amd64'),
          SimulatedTemperatureSensor: mod('mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5', {
            startupOrder: 0,
            env: { MessageCount: { value: '${SENSOR_COUNT}' } },
          }),
          other: mod('docker.io/library/nginx:latest', { status: 'stopped', restartPolicy: 'never' }),
        },
        { twins: { taRuntime: { bundles: { a: 1 } }, ghost: { x: 1 } } },
      ),
    );
    const spec = loadDeployment(file, { env: {} });
    expect(spec.schemaVersion).toBe('1.1');
    expect(spec.edgeHubSchemaVersion).toBe('1.2');
    expect(spec.modules.map((m) => m.name)).toEqual(['SimulatedTemperatureSensor', 'taRuntime', 'hostModule', 'byRepo', 'other']);
    const byName = Object.fromEntries(spec.modules.map((m) => [m.name, m]));
    expect(byName.taRuntime!.run).toEqual({ kind: 'local', dir: join(root, 'modules', 'ta-runtime'), entry: join(root, 'modules', 'ta-runtime', 'dist', 'index.js') });
    expect(byName.taRuntime!.env).toEqual({ LOG: 'debug', N: '3', B: 'true' });
    expect(byName.taRuntime!.desired).toEqual({ bundles: { a: 1 } });
    expect(byName.hostModule!.run).toMatchObject({ kind: 'local', entry: join(root, 'modules', 'host-module', 'dist', 'main.js') });
    expect(byName.hostModule!.restartPolicy).toBe('on-failure');
    expect(byName.byRepo!.run).toMatchObject({ kind: 'local', dir: join(root, 'modules', 'ta-runtime') });
    expect(byName.byRepo!.startupOrder).toBe(4294967295);
    expect(byName.SimulatedTemperatureSensor!.run).toEqual({ kind: 'builtin', builtin: 'simulated-temperature-sensor', entry: SIMULATED_TEMPERATURE_SENSOR_ENTRY });
    expect(byName.SimulatedTemperatureSensor!.env).toEqual({ MessageCount: '25' });
    expect(existsSync(SIMULATED_TEMPERATURE_SENSOR_ENTRY)).toBe(true);
    expect(byName.other!.run.kind).toBe('skipped');
    expect(byName.other!.status).toBe('stopped');
    expect(spec.warnings).toContain('module other: image docker.io/library/nginx:latest is not a local module (no modules/*/module.json with that repository) nor a built-in; skipped');
    expect(spec.warnings.some((w) => w.includes('modulesContent.ghost'))).toBe(true);
    expect(spec.routes).toEqual({ up: 'FROM /messages/* INTO $upstream' });
    expect(spec.storeAndForward).toEqual({ timeToLiveSecs: 7200 });
  });

  it('prefers the environment over .env and warns about unset variables', () => {
    const spec = parseDeployment(manifest({ s: mod('mcr.microsoft.com/azureiotedge-simulated-temperature-sensor', { env: { A: { value: '${SENSOR_COUNT}' }, B: { value: '${NOPE_NOT_SET}' } } }) }), {
      repoRoot: root,
      env: { SENSOR_COUNT: '99' },
    });
    expect(spec.modules[0]!.env).toEqual({ A: '99', B: '${NOPE_NOT_SET}' });
    expect(spec.warnings).toContain('${NOPE_NOT_SET} is not set (environment or .env); left as written');
  });

  it('accepts the applyConfigurationContent body shape and object/chunked createOptions', () => {
    const m = manifest({
      a: mod('example/plain:1', { settings: { image: 'example/plain:1', createOptions: { HostConfig: { Privileged: false } } } }),
      b: mod('example/plain', { settings: { image: 'example/plain', createOptions: '{"Env":["X=', createOptions01: '1"]}' } }),
    });
    const spec = parseDeployment({ content: m }, { repoRoot: root, env: {} });
    expect(spec.modules.find((x) => x.name === 'a')!.createOptions).toEqual({ HostConfig: { Privileged: false } });
    expect(spec.modules.find((x) => x.name === 'b')!.createOptions).toEqual({ Env: ['X=1'] });
    expect(spec.modules.find((x) => x.name === 'b')!.run).toMatchObject({ kind: 'local', entry: join(root, 'modules', 'plain', 'index.js') });
  });

  it('reads route objects with priority and TTL', () => {
    const spec = parseDeployment(manifest({}, { routes: { p: { route: 'FROM /* INTO $upstream', priority: 1, timeToLiveSecs: 5 } }, ttl: 30 }), { repoRoot: root, env: {} });
    expect(spec.routes).toEqual({ p: { route: 'FROM /* INTO $upstream', priority: 1, timeToLiveSecs: 5 } });
    expect(spec.storeAndForward.timeToLiveSecs).toBe(30);
    expect(spec.modules).toEqual([]);
  });
});

describe('manifest errors name the field', () => {
  const load = (m: unknown) => () => parseDeployment(m, { repoRoot: root, env: {} });
  const agent = 'modulesContent.$edgeAgent.properties.desired';

  it('bad restartPolicy', () => {
    expect(load(manifest({ foo: mod('example/plain', { restartPolicy: 'sometimes' }) }))).toThrow(
      new RegExp(`^invalid deployment manifest: ${agent.replace(/\$/g, '\\$')}\\.modules\\.foo\\.restartPolicy: .*expected one of.*"always"`),
    );
  });
  it('bad status, missing image, bad startupOrder, bad env', () => {
    expect(load(manifest({ foo: mod('x', { status: 'paused' }) }))).toThrow(/modules\.foo\.status: .*expected one of/);
    expect(load(manifest({ foo: mod('x', { settings: {} }) }))).toThrow(/modules\.foo\.settings\.image: /);
    expect(load(manifest({ foo: mod('x', { startupOrder: -1 }) }))).toThrow(/modules\.foo\.startupOrder: /);
    expect(load(manifest({ foo: mod('x', { env: { A: 'plain' } }) }))).toThrow(/modules\.foo\.env\.A: expected \{"value": …\}/);
  });
  it('bad module name, missing $edgeHub, missing modulesContent', () => {
    expect(load(manifest({ 'bad name': mod('x') }))).toThrow(/modules\.bad name: module names may only use letters/);
    expect(load({ modulesContent: { $edgeAgent: { 'properties.desired': { schemaVersion: '1.1' } } } })).toThrow(/modulesContent\.\$edgeHub: /);
    expect(load({})).toThrow(/modulesContent: /);
  });
  it('bad route priority is a manifest error; a bad route is a RouteSyntaxError naming it', () => {
    expect(load(manifest({}, { routes: { r: { route: 'FROM /* INTO $upstream', priority: 12 } } }))).toThrow(/\$edgeHub\.properties\.desired\.routes\.r/);
    let err: unknown;
    try {
      load(manifest({}, { routes: { broken: 'FROM /* INTO somewhere' } }))();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RouteSyntaxError);
    expect((err as Error).message).toMatch(/^route "broken" is invalid at column 14/);
  });
  it('a ${MODULES.x} placeholder without a module folder', () => {
    expect(load(manifest({ foo: mod('${MODULES.missing}') }))).toThrow(/modules\.foo\.settings\.image: \$\{MODULES\.missing\} names .*modules\/missing\/module\.json, which does not exist/);
  });
  it('createOptions that is not a JSON object', () => {
    expect(load(manifest({ foo: mod('example/plain', { settings: { image: 'example/plain', createOptions: '{nope' } }) }))).toThrow(/modules\.foo\.settings\.createOptions: expected a JSON object/);
  });
  it('unreadable and non-JSON files', () => {
    expect(() => loadDeployment(join(root, 'nope.json'))).toThrow(/cannot read deployment manifest .*nope\.json/);
    const bad = join(root, 'bad.json');
    writeFileSync(bad, '{ "modulesContent": ');
    expect(() => loadDeployment(bad)).toThrow(/deployment manifest .*bad\.json is not valid JSON/);
  });
});

describe('parseDotenv', () => {
  it('handles comments, quotes and export', () => {
    expect(parseDotenv('A=1\n# c\nexport B="x y"\nC=\'q\'\nD=v # note\nnot a line\n')).toEqual({ A: '1', B: 'x y', C: 'q', D: 'v' });
  });
});

describe('diffDeployments', () => {
  const spec = (modules: Record<string, unknown>, extra: Parameters<typeof manifest>[1] = {}): DeploymentSpec =>
    parseDeployment(manifest(modules, extra), { repoRoot: root, env: {} });

  it('starts, stops, restarts and pushes desired changes', () => {
    const before = spec(
      {
        keep: mod('example/plain'),
        change: mod('example/plain', { env: { A: { value: '1' } } }),
        gone: mod('example/plain'),
        wake: mod('example/plain', { status: 'stopped' }),
        sleep: mod('example/plain'),
        twin: mod('example/plain'),
      },
      { twins: { twin: { a: 1 } } },
    );
    const after = spec(
      {
        keep: mod('example/plain'),
        change: mod('example/plain', { env: { A: { value: '2' } } }),
        wake: mod('example/plain'),
        sleep: mod('example/plain', { status: 'stopped' }),
        twin: mod('example/plain'),
        fresh: mod('example/plain', { startupOrder: 0 }),
      },
      { twins: { twin: { a: 2 } } },
    );
    expect(diffDeployments(before, after)).toEqual({
      start: ['fresh', 'wake'],
      stop: ['gone', 'sleep'],
      restart: ['change'],
      desiredChanged: ['twin'],
      routesChanged: false,
    });
  });

  it('notices route and TTL changes, and nothing else when identical', () => {
    const a = spec({ m: mod('example/plain') });
    expect(diffDeployments(a, spec({ m: mod('example/plain') }))).toEqual({ start: [], stop: [], restart: [], desiredChanged: [], routesChanged: false });
    expect(diffDeployments(a, spec({ m: mod('example/plain') }, { routes: { other: 'FROM /* INTO $upstream' } })).routesChanged).toBe(true);
    expect(diffDeployments(a, spec({ m: mod('example/plain') }, { ttl: 10 })).routesChanged).toBe(true);
    expect(diffDeployments(a, spec({ m: mod('example/plain', { restartPolicy: 'never' }) })).restart).toEqual(['m']);
  });
});

describe("the repository's own manifests", () => {
  const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
  it.each(['deployment.template.json', 'deployment.hsm.template.json'])('%s loads, and every module runs locally or built-in', (file) => {
    const path = join(repoRoot, file);
    if (!existsSync(path)) return; // not every checkout has the HSM variant
    const spec = loadDeployment(path, { env: {} });
    expect(spec.modules.length).toBeGreaterThan(0);
    for (const m of spec.modules) {
      expect(m.run.kind, `${m.name}: ${JSON.stringify(m.run)}`).not.toBe('skipped');
      if (m.run.kind === 'local') expect(m.run.dir.startsWith(join(repoRoot, 'modules'))).toBe(true);
    }
  });
});

describe('manifests run as IoT Edge would, where it matters to a Node module', () => {
  it('createOptions.Env reaches the module, the manifest env over it; WorkingDir/Cmd are named as not applied', () => {
    const spec = parseDeployment(
      manifest({
        p: mod('example/plain:1', { env: { B: { value: 'from-env' } }, settings: { image: 'example/plain:1', createOptions: JSON.stringify({ Env: ['A=from-create', 'B=from-create', 'C=x=y'], WorkingDir: '/app', Cmd: ['node', 'x.js'] }) } }),
      }),
      { repoRoot: root },
    );
    expect(spec.modules[0]!.env).toEqual({ A: 'from-create', B: 'from-env', C: 'x=y' });
    expect(spec.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/module p: createOptions\.WorkingDir names a path in the container; not applied/), expect.stringMatching(/module p: createOptions\.Cmd/)]));
    expect(() => parseDeployment(manifest({ p: mod('example/plain:1', { settings: { image: 'example/plain:1', createOptions: { Env: ['NOEQUALS'] } } }) }), { repoRoot: root })).toThrow(
      /modules\.p\.settings\.createOptions\.Env\[0\]: expected "NAME=value", got "NOEQUALS"/,
    );
  });

  it('a Python or C# module folder is skipped with a warning naming it; the rest of the solution still runs', () => {
    for (const [folder, files] of [['pysensor', ['main.py', 'requirements.txt']], ['csfilter', ['csfilter.csproj', 'Program.cs']]] as const) {
      const dir = join(root, 'modules', folder);
      mkdirSync(dir, { recursive: true });
      writeJson(join(dir, 'module.json'), { image: { repository: `example/${folder}` } } as never);
      for (const f of files) writeFileSync(join(dir, f), '');
    }
    const spec = parseDeployment(manifest({ py: mod('${MODULES.pysensor}'), cs: mod('example/csfilter:1.0'), p: mod('example/plain:1') }), { repoRoot: root });
    const run = Object.fromEntries(spec.modules.map((m) => [m.name, m.run]));
    expect(run.py).toEqual({ kind: 'skipped', reason: expect.stringMatching(/^modules\/pysensor is a Python module \(no package\.json\); the simulator runs Node\.js modules only/) });
    expect(run.cs).toMatchObject({ kind: 'skipped', reason: expect.stringMatching(/^modules\/csfilter is a C# module/) });
    expect(run.p!.kind).toBe('local');
    expect(spec.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^module py: modules\/pysensor is a Python module/)]));
  });
});

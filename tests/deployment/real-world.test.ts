/**
 * Real-world manifests through `deploy generate` (the real binary) and through what `sim up` loads
 * (loadDeployment): the portal quickstart's shape, the VS Code Node.js solution with its debug
 * template and .env, and a config/ file iotedgedev wrote with pre-split createOptions.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDeployment, expandVariables } from '@enclave-edge/edge-sim/deployment';
import { joinCreateOptions } from '@enclave-edge/cli/commands/deploy-manifest';
import { loadValidators, repoRoot } from './schemas.js';
import { startTestSim } from '../sim/helpers.js';
import type { UpstreamMessage } from '@enclave-edge/edge-sim';

const run = promisify(execFile);
const bin = join(repoRoot, 'packages/cli/bin/enclave-edge.js');
const fixtures = join(repoRoot, 'tests/deployment/fixtures');
const work = mkdtempSync(join(tmpdir(), 'ee-deploy-real-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const { deployment: validateDeployment, ajv } = loadValidators();

let copies = 0;
function copyFixture(name: string): string {
  const dir = join(work, `${name}-${copies++}`);
  cpSync(join(fixtures, name), dir, { recursive: true });
  return dir;
}

/** The environment without anything a fixture's .env sets, so the .env is what is read. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('CONTAINER_REGISTRY')) delete env[k];
  return { ...env, ...extra };
}

async function generate(cwd: string, args: string[], env = cleanEnv()) {
  try {
    const r = await run(process.execPath, [bin, 'deploy', 'generate', '--json', ...args], { cwd, env });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const agentOf = (m: any) => m.modulesContent.$edgeAgent['properties.desired'];

describe('VS Code Node.js solution (.env, $VAR and ${VAR}, ${MODULES.x.debug}, module.json with ${VAR})', () => {
  it('deploy generate of the debug template: the .debug image, credentials from .env, createOptions, schema-valid, 0600', async () => {
    const dir = copyFixture('vscode-nodejs');
    const r = await generate(dir, ['--template', 'deployment.debug.template.json']);
    expect(r.code, r.stderr).toBe(0);
    const path = JSON.parse(r.stdout).path as string;
    expect(path).toBe(join(dir, 'config', 'deployment.debug.amd64.json'));
    const m = JSON.parse(readFileSync(path, 'utf8'));
    expect(validateDeployment(m), ajv.errorsText(validateDeployment.errors)).toBe(true);
    const agent = agentOf(m);
    // module.json's repository is "${CONTAINER_REGISTRY_SERVER}/samplemodule"; .debug picks the amd64.debug Dockerfile's tag.
    expect(agent.modules.SampleModule.settings.image).toBe('myacr.azurecr.io/samplemodule:0.0.1-amd64.debug');
    const mj = JSON.parse(readFileSync(join(dir, 'modules/SampleModule/module.json'), 'utf8'));
    expect(existsSync(resolve(dir, 'modules/SampleModule', mj.image.tag.platforms['amd64.debug']))).toBe(true);
    expect(agent.runtime.settings.registryCredentials.myacr).toEqual({ username: 'myacr', password: 'fake-password-for-tests', address: 'myacr.azurecr.io' });
    expect(joinCreateOptions(agent.modules.SampleModule.settings)).toEqual({ ExposedPorts: { '9229/tcp': {} }, HostConfig: { PortBindings: { '9229/tcp': [{ HostPort: '9229' }] } } });
    expect(typeof agent.systemModules.edgeHub.settings.createOptions).toBe('string');
    // IoT Edge's own $ words are not variables.
    expect(m.modulesContent.$edgeHub['properties.desired'].routes.SampleModuleToIoTHub).toBe('FROM /messages/modules/SampleModule/outputs/* INTO $upstream');
    expect('$schema-template' in m).toBe(false);
    expect(statSync(path).mode & 0o077).toBe(0);
  });

  it('the release template for arm64v8, and the environment wins over .env', async () => {
    const dir = copyFixture('vscode-nodejs');
    const r = await generate(dir, ['--platform', 'arm64v8'], cleanEnv({ CONTAINER_REGISTRY_SERVER: 'other.azurecr.io' }));
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(readFileSync(join(dir, 'config', 'deployment.arm64v8.json'), 'utf8'));
    expect(agentOf(m).modules.SampleModule.settings.image).toBe('other.azurecr.io/samplemodule:0.0.1-arm64v8');
    expect(agentOf(m).runtime.settings.registryCredentials.myacr.address).toBe('other.azurecr.io');
  });

  it('an unset $VAR or a missing .debug Dockerfile: non-zero exit naming it and where, nothing written', async () => {
    const dir = copyFixture('vscode-nodejs');
    writeFileSync(join(dir, '.env'), 'CONTAINER_REGISTRY_SERVER=myacr.azurecr.io\nCONTAINER_REGISTRY_USERNAME_myacr=myacr\n');
    const r = await generate(dir, ['--template', 'deployment.debug.template.json']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('$CONTAINER_REGISTRY_PASSWORD_myacr (at modulesContent.$edgeAgent.properties.desired.runtime.settings.registryCredentials.myacr.password)');
    expect(existsSync(join(dir, 'config', 'deployment.debug.amd64.json'))).toBe(false);

    const dir2 = copyFixture('vscode-nodejs');
    const mjPath = join(dir2, 'modules/SampleModule/module.json');
    const mj = JSON.parse(readFileSync(mjPath, 'utf8'));
    delete mj.image.tag.platforms['arm32v7.debug'];
    writeFileSync(mjPath, JSON.stringify(mj));
    const r2 = await generate(dir2, ['--template', 'deployment.debug.template.json', '--platform', 'arm32v7']);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/module "SampleModule" has no Dockerfile for platform arm32v7\.debug/);
  });

  it('sim up loads the same debug template: the local Node module, its createOptions, the sensor, no unset variable', () => {
    const dir = copyFixture('vscode-nodejs');
    const spec = loadDeployment(join(dir, 'deployment.debug.template.json'), { env: cleanEnv() });
    expect(spec.warnings).toEqual([]);
    const byName = Object.fromEntries(spec.modules.map((m) => [m.name, m]));
    expect(byName.SampleModule!.run).toEqual({ kind: 'local', dir: join(dir, 'modules/SampleModule'), entry: join(dir, 'modules/SampleModule/app.js') });
    expect(byName.SampleModule!.createOptions).toEqual({ ExposedPorts: { '9229/tcp': {} }, HostConfig: { PortBindings: { '9229/tcp': [{ HostPort: '9229' }] } } });
    expect(byName.SimulatedTemperatureSensor!.run.kind).toBe('builtin');
    expect((spec.systemDesired.$edgeAgent as any).runtime.settings.registryCredentials.myacr.password).toBe('fake-password-for-tests');
  });
});

describe('the portal quickstart shape (a generated manifest with createOptions strings)', () => {
  it('deploy generate keeps it as it is (empty createOptions become "{}"), schema-valid', async () => {
    const dir = copyFixture('portal-quickstart');
    const r = await generate(dir, ['--template', 'deployment.json']);
    expect(r.code, r.stderr).toBe(0);
    const input = JSON.parse(readFileSync(join(dir, 'deployment.json'), 'utf8'));
    const out = JSON.parse(readFileSync(join(dir, 'config', 'deployment.amd64.json'), 'utf8'));
    expect(validateDeployment(out), ajv.errorsText(validateDeployment.errors)).toBe(true);
    agentOf(input).modules.SimulatedTemperatureSensor.settings.createOptions = '{}';
    agentOf(input).systemModules.edgeAgent.settings.createOptions = '{}';
    expect(out).toEqual(input);
  });

  it('sim up runs the built-in sensor with its env and desired properties', () => {
    const spec = loadDeployment(join(fixtures, 'portal-quickstart/deployment.json'));
    expect(spec.warnings).toEqual([]);
    expect(spec.modules.map((m) => [m.name, m.run.kind])).toEqual([['SimulatedTemperatureSensor', 'builtin']]);
    expect(spec.modules[0]!.env).toEqual({ MessageCount: '500' });
    expect(spec.modules[0]!.desired).toEqual({ SendData: true, SendInterval: 5 });
  });
});

describe('a config/ file iotedgedev generated (createOptions split into 01, 02 chunks)', () => {
  const whole = JSON.parse(readFileSync(join(fixtures, 'iotedgedev-generated/filtermodule.createOptions.json'), 'utf8'));

  it('deploy generate keeps the chunks: same strings, each at most 512, joining to the original object', async () => {
    const dir = copyFixture('iotedgedev-generated');
    const r = await generate(dir, ['--template', 'deployment.amd64.json', '--out-dir', 'out']);
    expect(r.code, r.stderr).toBe(0);
    const input = JSON.parse(readFileSync(join(dir, 'deployment.amd64.json'), 'utf8'));
    const out = JSON.parse(readFileSync(join(dir, 'out', 'deployment.amd64.json'), 'utf8'));
    const settings = agentOf(out).modules.filtermodule.settings;
    expect(Object.keys(settings)).toEqual(['image', 'createOptions', 'createOptions01', 'createOptions02']);
    expect(settings).toEqual(agentOf(input).modules.filtermodule.settings);
    for (const k of ['createOptions', 'createOptions01', 'createOptions02']) expect(settings[k].length).toBeLessThanOrEqual(512);
    expect(joinCreateOptions(settings)).toEqual(whole);
    expect(validateDeployment(out), ajv.errorsText(validateDeployment.errors)).toBe(true);
  });

  it('sim up joins the chunks: Env from the last chunk reaches the module', () => {
    const spec = loadDeployment(join(fixtures, 'iotedgedev-generated/deployment.amd64.json'));
    const m = spec.modules.find((x) => x.name === 'filtermodule')!;
    expect(m.createOptions).toEqual(whole);
    expect(m.env.SETTING_29).toBe('value-29');
  });

  it('a dropped or missing chunk is refused naming the field, by generate (non-zero, nothing written) and by sim up', async () => {
    const dir = copyFixture('iotedgedev-generated');
    const file = join(dir, 'deployment.amd64.json');
    const m = JSON.parse(readFileSync(file, 'utf8'));
    delete agentOf(m).modules.filtermodule.settings.createOptions02;
    writeFileSync(join(dir, 'truncated.json'), JSON.stringify(m));
    const r = await generate(dir, ['--template', 'truncated.json', '--out-dir', 'out']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/modulesContent\.\$edgeAgent\.properties\.desired\.modules\.filtermodule\.settings\.createOptions: expected a JSON object, got text that is not valid JSON \(createOptions and its 1 chunk\(s\) joined\)/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
    expect(() => loadDeployment(join(dir, 'truncated.json'))).toThrow(/modules\.filtermodule\.settings\.createOptions: expected a JSON object/);

    const gap = JSON.parse(readFileSync(file, 'utf8'));
    delete agentOf(gap).modules.filtermodule.settings.createOptions01;
    writeFileSync(join(dir, 'gap.json'), JSON.stringify(gap));
    const r2 = await generate(dir, ['--template', 'gap.json', '--out-dir', 'out']);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/settings\.createOptions01: missing, but a later chunk is there/);
  });
});

describe('the self-check against the official schema', () => {
  it('a field IoT Edge does not know, or createOptions over 4 KB: non-zero exit naming the field, nothing written', async () => {
    const dir = copyFixture('portal-quickstart');
    const m = JSON.parse(readFileSync(join(dir, 'deployment.json'), 'utf8'));
    agentOf(m).modules.SimulatedTemperatureSensor.restartpolicy = 'always';
    writeFileSync(join(dir, 'typo.json'), JSON.stringify(m));
    const r = await generate(dir, ['--template', 'typo.json']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/does not validate against the IoT Edge deployment schema 2\.0: modulesContent\.\$edgeAgent\.properties\.desired\.modules\.SimulatedTemperatureSensor\.restartpolicy: must NOT have additional properties/);
    expect(existsSync(join(dir, 'config'))).toBe(false);

    const big = JSON.parse(readFileSync(join(dir, 'deployment.json'), 'utf8'));
    agentOf(big).modules.SimulatedTemperatureSensor.settings.createOptions = { Env: Array.from({ length: 400 }, (_, i) => `V${i}=${'x'.repeat(8)}`) };
    writeFileSync(join(dir, 'big.json'), JSON.stringify(big));
    const r2 = await generate(dir, ['--template', 'big.json']);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/modules\.SimulatedTemperatureSensor\.settings\.createOptions: \d+ characters as JSON; IoT Edge takes at most 4096/);
  });
});

describe('sim up and the official schema (the checker deploy generate uses)', () => {
  const AGENT = 'modulesContent.$edgeAgent.properties.desired';
  /** The portal quickstart with a typo'd field, an unknown $edgeHub field whose name has control characters, and a createOptions object (as a template writes it). */
  function withUnknownFields(): string {
    const dir = copyFixture('portal-quickstart');
    const m = JSON.parse(readFileSync(join(dir, 'deployment.json'), 'utf8'));
    agentOf(m).modules.SimulatedTemperatureSensor.restartpolicy = 'never';
    agentOf(m).modules.SimulatedTemperatureSensor.settings.createOptions = { HostConfig: {} };
    m.modulesContent.$edgeHub['properties.desired']['odd\u001b[31m\nkey'] = true;
    const file = join(dir, 'unknown-fields.json');
    writeFileSync(file, JSON.stringify(m));
    return file;
  }

  it('the loader warns naming each unknown field (control characters escaped) and loads the rest as IoT Edge would', () => {
    const spec = loadDeployment(withUnknownFields());
    expect(spec.warnings).toEqual([
      `${AGENT}.modules.SimulatedTemperatureSensor.restartpolicy: not a field of the IoT Edge deployment schema 2.0; IoT Edge ignores it (a typo?) and deploy generate refuses it`,
      'modulesContent.$edgeHub.properties.desired.odd\\u001b[31m\\nkey: not a field of the IoT Edge deployment schema 2.0; IoT Edge ignores it (a typo?) and deploy generate refuses it',
    ]);
    const sensor = spec.modules.find((m) => m.name === 'SimulatedTemperatureSensor')!;
    expect([sensor.run.kind, sensor.restartPolicy, sensor.createOptions]).toEqual(['builtin', 'always', { HostConfig: {} }]);
  });

  it('a valid manifest gives no warning; unreadable createOptions of a runtime module (not run here) is a warning naming it', () => {
    expect(loadDeployment(join(fixtures, 'portal-quickstart/deployment.json')).warnings).toEqual([]);
    const dir = copyFixture('portal-quickstart');
    const m = JSON.parse(readFileSync(join(dir, 'deployment.json'), 'utf8'));
    agentOf(m).systemModules.edgeHub.settings.createOptions = '{"HostConfig":';
    writeFileSync(join(dir, 'hub-options.json'), JSON.stringify(m));
    const spec = loadDeployment(join(dir, 'hub-options.json'));
    expect(spec.warnings).toEqual([expect.stringMatching(/^modulesContent\.\$edgeAgent\.properties\.desired\.systemModules\.edgeHub\.settings\.createOptions: expected a JSON object, got text that is not valid JSON.*\(deploy generate refuses it\)$/)]);
    expect(spec.modules.map((x) => x.name)).toEqual(['SimulatedTemperatureSensor']);
  });

  it('what the sim refuses stays refused: the official schema only adds warnings', () => {
    const dir = copyFixture('portal-quickstart');
    const m = JSON.parse(readFileSync(join(dir, 'deployment.json'), 'utf8'));
    agentOf(m).modules.SimulatedTemperatureSensor.restartPolicy = 'sometimes';
    writeFileSync(join(dir, 'bad.json'), JSON.stringify(m));
    expect(() => loadDeployment(join(dir, 'bad.json'))).toThrow(/modules\.SimulatedTemperatureSensor\.restartPolicy/);
  });

  it('sim up prints the warning and the solution runs: the sensor\'s telemetry reaches $upstream', async () => {
    const t = await startTestSim({ manifest: withUnknownFields() });
    try {
      expect(t.logs).toContain(`warning: ${AGENT}.modules.SimulatedTemperatureSensor.restartpolicy: not a field of the IoT Edge deployment schema 2.0; IoT Edge ignores it (a typo?) and deploy generate refuses it`);
      expect(t.logs.filter((l) => l.includes('odd'))).toEqual([expect.stringContaining('odd\\u001b[31m\\nkey: not a field')]);
      const first = await new Promise<UpstreamMessage>((res) => {
        const off = t.sim.onUpstream((msg) => {
          off();
          res(msg);
        });
      });
      expect(first.moduleId).toBe('SimulatedTemperatureSensor');
    } finally {
      await t.close();
    }
  });
});

describe('the one variable expander (sim up and deploy generate)', () => {
  it('expands ${VAR} and $VAR in strings and keys, never IoT Edge\'s own $ words, and records what is unset with its path', () => {
    const missing = new Map<string, string>();
    const vars = Object.assign(Object.create(null), { REG: 'r.io', upstream: 'NO', body: 'NO', edgeHub: 'NO', K: 'key' });
    const out = expandVariables({ a: '${REG}/x:$REG', route: 'FROM /messages/* WHERE $body.t > 1 INTO $upstream', $edgeHub: 1, $K: ['$NOPE', '${NOPE2}', '${MODULES.m}'] }, vars, missing);
    expect(out).toEqual({ a: 'r.io/x:r.io', route: 'FROM /messages/* WHERE $body.t > 1 INTO $upstream', $edgeHub: 1, key: ['$NOPE', '${NOPE2}', '${MODULES.m}'] });
    expect([...missing]).toEqual([['$NOPE', '$K[0]'], ['${NOPE2}', '$K[1]']]);
  });
});

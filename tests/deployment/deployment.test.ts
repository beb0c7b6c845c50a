import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  PLATFORMS, generateDeployment, generateDeploymentFile, joinCreateOptions, readModuleJsons,
} from '@enclave-edge/cli/commands/deploy-manifest';
import { splitCreateOptions } from '@enclave-edge/edge-sim/deployment';
import { loadValidators, repoRoot } from './schemas.js';

const { template: validateTemplate, deployment: validateDeployment, ajv } = loadValidators();
const templateText = readFileSync(join(repoRoot, 'deployment.template.json'), 'utf8');
const templates = ['deployment.template.json', 'deployment.hsm.template.json'];
const outDir = mkdtempSync(join(tmpdir(), 'ee-deploy-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('deployment templates', () => {
  it.each(templates)('%s validates against the official template schema 4.0', (file) => {
    const ok = validateTemplate(JSON.parse(readFileSync(join(repoRoot, file), 'utf8')));
    expect(ok, ajv.errorsText(validateTemplate.errors)).toBe(true);
  });

  it('has the module pair, the simulated sensor, the routes and the sample TAs', () => {
    const t = JSON.parse(templateText);
    const mods = t.modulesContent.$edgeAgent['properties.desired'].modules;
    expect(mods['host-module'].settings.image).toBe('${MODULES.host-module}');
    expect(mods['ta-runtime'].settings.image).toBe('${MODULES.ta-runtime}');
    expect(mods.SimulatedTemperatureSensor.settings.image).toBe('mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.5');
    expect(mods['ta-runtime'].settings.createOptions.HostConfig.Binds).toContain('enclave-edge-sealed:/var/lib/enclave-edge');
    const routes = Object.values(t.modulesContent.$edgeHub['properties.desired'].routes) as string[];
    expect(routes).toContain('FROM /messages/modules/host-module/outputs/taRequest INTO BrokeredEndpoint("/modules/ta-runtime/inputs/taRequest")');
    expect(routes).toContain('FROM /messages/modules/ta-runtime/outputs/taResponse INTO BrokeredEndpoint("/modules/host-module/inputs/taResponse")');
    expect(routes.some((r) => r.includes('outputs/signed INTO $upstream'))).toBe(true);
    expect(Object.keys(t.modulesContent['ta-runtime']['properties.desired'].tas).sort()).toEqual(['hello', 'key-vault', 'sensor-signer', 'wasm-stats']);
  });
});

describe('deploy generate', () => {
  it.each(templates.flatMap((t) => PLATFORMS.map((p) => [t, p] as const)))('%s for %s validates against deployment schema 2.0', (template, platform) => {
    const { path, manifest } = generateDeploymentFile({ repoRoot, template, platform, outDir, env: { TPM_GROUP_ID: '113' } });
    expect(path).toMatch(new RegExp(`${platform}\\.json$`));
    const written = JSON.parse(readFileSync(path, 'utf8'));
    expect(written).toEqual(manifest);
    expect(validateDeployment(written), ajv.errorsText(validateDeployment.errors)).toBe(true);
    expect(JSON.stringify(written)).not.toMatch(/\$\{/);
    const mods = (written as any).modulesContent.$edgeAgent['properties.desired'].modules;
    expect(mods['ta-runtime'].settings.image).toBe(`localhost:5000/enclave-edge-ta-runtime:0.1.0-${platform}`);
    expect('$schema-template' in written).toBe(false);
  });

  it('stringifies createOptions and splits it at 512 characters, losslessly', () => {
    const big = { HostConfig: { Binds: Array.from({ length: 80 }, (_, i) => `vol${i}:/data/${i}`) } };
    const split = splitCreateOptions({ image: 'x', createOptions: big }, 's');
    const keys = Object.keys(split).filter((k) => k.startsWith('createOptions'));
    expect(keys.slice(0, 3)).toEqual(['createOptions', 'createOptions01', 'createOptions02']);
    for (const k of keys) expect((split[k] as string).length).toBeLessThanOrEqual(512);
    expect((split.createOptions as string).length).toBe(512);
    expect(joinCreateOptions(split)).toEqual(big);
    expect(splitCreateOptions({ image: 'x', createOptions: {} }, 's')).toEqual({ image: 'x', createOptions: '{}' });
  });

  it('fails clearly on an unknown module placeholder, an unset variable, and a missing platform', () => {
    const modules = readModuleJsons(repoRoot);
    const t = (image: string) => JSON.stringify({ modulesContent: { $edgeAgent: { 'properties.desired': { modules: { m: { settings: { image } } } } } } });
    expect(() => generateDeployment({ template: t('${MODULES.nope}'), modules, platform: 'amd64' })).toThrow(/no module "nope"/);
    expect(() => generateDeployment({ template: t('${REGISTRY}/x'), modules, platform: 'amd64' })).toThrow(/REGISTRY/);
    expect(generateDeployment({ template: t('${REGISTRY}/x'), modules, platform: 'amd64', env: { REGISTRY: 'myacr.azurecr.io' } }))
      .toMatchObject({ modulesContent: { $edgeAgent: { 'properties.desired': { modules: { m: { settings: { image: 'myacr.azurecr.io/x' } } } } } } });
    const noArm = new Map([['m', { image: { repository: 'r', tag: { version: '1', platforms: { amd64: 'Dockerfile' } } } }]]);
    expect(() => generateDeployment({ template: t('${MODULES.m}'), modules: noArm, platform: 'arm32v7' })).toThrow(/no Dockerfile for platform arm32v7/);
  });
});

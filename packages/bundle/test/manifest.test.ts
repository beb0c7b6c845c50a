import { describe, expect, it } from 'vitest';
import { validateManifest, canonicalJson, canonicalManifestBytes } from '@enclave-edge/bundle';
import { sampleManifest } from './fixtures.js';

function reason(value: unknown): string {
  try {
    validateManifest(value);
  } catch (e) {
    expect((e as { code: string }).code).toBe('BAD_FORMAT');
    return (e as Error).message;
  }
  throw new Error('manifest was accepted');
}

describe('manifest schema', () => {
  it('accepts a complete manifest and keeps an optional description', () => {
    const m = validateManifest({ ...sampleManifest(), description: 'says hello' });
    expect(m.description).toBe('says hello');
    expect(m.limits.heapMb).toBe(64);
  });

  it('refuses unknown fields, naming them', () => {
    expect(reason({ ...sampleManifest(), entry: 'x.ts' })).toMatch(/entry: unknown field/);
    expect(reason({ ...sampleManifest(), limits: { ...sampleManifest().limits, cpus: 2 } })).toMatch(/limits\.cpus: unknown field/);
  });

  it('refuses a bad uuid, a bad version and a bad name', () => {
    expect(reason({ ...sampleManifest(), uuid: 'not-a-uuid' })).toMatch(/uuid: must be a lowercase UUID/);
    expect(reason({ ...sampleManifest(), version: '1.0' })).toMatch(/version: must be a semantic version/);
    expect(reason({ ...sampleManifest(), name: 'Hello World' })).toMatch(/name: must be 1\.\.63 chars/);
  });

  it('refuses limits out of range with the bound', () => {
    expect(reason({ ...sampleManifest(), limits: { ...sampleManifest().limits, heapMb: 1 } })).toMatch(/limits\.heapMb: must be ≥ 4/);
    expect(reason({ ...sampleManifest(), limits: { ...sampleManifest().limits, maxConcurrency: 1000 } })).toMatch(/limits\.maxConcurrency: must be ≤ 256/);
    expect(reason({ ...sampleManifest(), limits: { ...sampleManifest().limits, callTimeoutMs: 1.5 } })).toMatch(/limits\.callTimeoutMs: must be an integer/);
    expect(reason({ ...sampleManifest(), securityVersion: 70000 })).toMatch(/securityVersion: must be ≤ 65535/);
  });

  it('refuses missing fields, a wrong runtime and repeated host calls', () => {
    const { session: _s, ...noSession } = sampleManifest();
    expect(reason(noSession)).toMatch(/session: is required/);
    expect(reason({ ...sampleManifest(), runtime: 'python' })).toMatch(/runtime: must be "js" or "wasm"/);
    expect(reason({ ...sampleManifest(), hostCalls: ['a', 'a'] })).toMatch(/hostCalls: must not repeat/);
  });

  it('canonical JSON sorts keys at every level and has no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, 'x'], c: true } })).toBe('{"a":{"c":true,"d":[1,"x"]},"b":1}');
    const text = new TextDecoder().decode(canonicalManifestBytes(sampleManifest()));
    expect(text.startsWith('{"debug":false,"hostCalls":[],"limits":{"callTimeoutMs":5000')).toBe(true);
    expect(text).not.toMatch(/\s/);
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(/finite/);
  });
});

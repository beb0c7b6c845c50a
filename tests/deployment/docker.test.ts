// No Docker engine runs here, so check statically what `docker build` would need.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PLATFORMS, readModuleJsons } from '@enclave-edge/cli/commands/deploy-manifest';
import { repoRoot } from './schemas.js';

const modules = readModuleJsons(repoRoot);

/** Parse COPY lines (with continuation lines joined) that copy from the build context. */
function contextCopies(dockerfile: string): string[] {
  const text = readFileSync(dockerfile, 'utf8').replace(/\\\n/g, ' ');
  const sources: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(COPY|ADD)\s+(.*)$/i.exec(line);
    if (!m) continue;
    const args = m[2]!.trim().split(/\s+/).filter((a) => !a.startsWith('--chown') && !a.startsWith('--chmod') && !a.startsWith('--link'));
    if (m[2]!.includes('--from=')) continue;
    sources.push(...args.slice(0, -1));
  }
  return sources;
}

describe('module.json and Dockerfiles', () => {
  it('finds both modules', () => {
    expect([...modules.keys()].sort()).toEqual(['host-module', 'ta-runtime']);
  });

  for (const [name, mod] of modules) {
    const moduleDir = join(repoRoot, 'modules', name);
    const context = resolve(moduleDir, mod.image.contextPath ?? '.');
    // Every platform, and amd64's debug variant (what ${MODULES.x.debug} picks).
    const platforms = [...PLATFORMS, 'amd64.debug'];
    it(`${name}: every platform has its Dockerfile`, () => {
      expect(Object.keys(mod.image.tag.platforms).sort()).toEqual([...platforms].sort());
      for (const p of platforms) expect(existsSync(resolve(moduleDir, mod.image.tag.platforms[p]!)), `${name} ${p}`).toBe(true);
    });
    for (const p of platforms) {
      it(`${name} ${p}: every path COPYed from the context exists, it is multi-stage, prod-only and non-root`, () => {
        const file = resolve(moduleDir, mod.image.tag.platforms[p]!);
        const sources = contextCopies(file);
        expect(sources.length).toBeGreaterThan(0);
        for (const src of sources) expect(existsSync(resolve(context, src)), `${src} in ${file}`).toBe(true);
        const text = readFileSync(file, 'utf8');
        expect(text.match(/^FROM /gm)!.length).toBeGreaterThanOrEqual(2);
        expect(text).toMatch(/--omit=dev/);
        const users = [...text.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]);
        expect(users.at(-1)).toBeDefined();
        expect(users.at(-1)).not.toMatch(/^(root|0)$/);
        expect(text).toContain(`modules/${name}/dist/main.js`);
        const pkgMain = JSON.parse(readFileSync(join(moduleDir, 'package.json'), 'utf8')).main;
        expect(pkgMain).toBe('./dist/main.js');
        const base = p.split('.')[0]!;
        if (base !== 'amd64') expect(text).toMatch(new RegExp(`^FROM ${base}/`, 'm'));
        // Healthy only once the module says it is ready, through /health on its metrics port.
        expect(text).toMatch(/^HEALTHCHECK .*\\\n\s+CMD \["node", "-e", ".*\/health/m);
        // The inspector only in the debug image.
        if (p.endsWith('.debug')) expect(text).toMatch(/^CMD \["node", "--inspect=0\.0\.0\.0:9229", /m);
        else expect(text).not.toContain('--inspect');
      });
    }
  }

  it('has no stray Dockerfiles without a module.json platform', () => {
    const listed = new Set([...modules].flatMap(([n, m]) => Object.values(m.image.tag.platforms).map((p) => resolve(repoRoot, 'modules', n, p))));
    for (const dir of readdirSync(join(repoRoot, 'docker'))) {
      for (const f of readdirSync(join(repoRoot, 'docker', dir)).filter((f) => /^Dockerfile\.[a-z0-9]+(\.debug)?$/.test(f))) {
        expect(listed.has(join(repoRoot, 'docker', dir, f)), f).toBe(true);
      }
    }
  });
});

/**
 * esbuild plugin: a TA may not import Node built-ins (directly or through a package). The
 * enclave has no fs, net or process; failing the build early names the import chain instead
 * of failing at load time inside the enclave.
 */
import { isBuiltin } from 'node:module';
import { relative } from 'node:path';
import type { Plugin } from 'esbuild';

const INNER = Symbol.for('enclave-edge.forbid-node-builtins');

export function forbidNodeBuiltins(projectDir: string): Plugin {
  return {
    name: 'enclave-edge-forbid-node-builtins',
    setup(build) {
      const importedBy = new Map<string, string>();
      const show = (p: string) => (p.startsWith('/') ? relative(projectDir, p) || p : p);
      const chainTo = (importer: string): string[] => {
        const chain: string[] = [];
        const seen = new Set<string>();
        for (let at: string | undefined = importer; at && !seen.has(at); at = importedBy.get(at)) {
          seen.add(at);
          chain.unshift(show(at));
        }
        return chain;
      };
      build.onResolve({ filter: /.*/ }, async (args) => {
        if ((args.pluginData as Record<symbol, unknown> | undefined)?.[INNER]) return undefined;
        if (isBuiltin(args.path) || args.path.startsWith('node:')) {
          const chain = [...chainTo(args.importer), args.path].join(' → ');
          return {
            errors: [{ text: `imports the Node built-in "${args.path}" (import chain: ${chain}); Node built-ins are not available inside an enclave — use the TA context (ctx.storage, ctx.crypto, ctx.random, ctx.host) instead` }],
          };
        }
        if (args.kind === 'entry-point') return undefined;
        const r = await build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, namespace: args.namespace, pluginData: { [INNER]: true } });
        if (r.errors.length) return { errors: r.errors };
        if (r.path && args.importer) importedBy.set(r.path, args.importer);
        return { path: r.path, namespace: r.namespace, external: r.external, sideEffects: r.sideEffects, suffix: r.suffix, pluginData: r.pluginData };
      });
    },
  };
}

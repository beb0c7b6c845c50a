/**
 * esbuild plugin: bundle the toolchain's own copy of @enclave-edge/ta-sdk into every TA, under
 * a fixed virtual namespace, so the TA builds wherever its project lives and the output (and
 * so the measurement) does not depend on the absolute path of node_modules.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, posix } from 'node:path';
import type { Plugin } from 'esbuild';

const NAMESPACE = 'enclave-edge-sdk';

export function sdkEntryPath(): string {
  return createRequire(import.meta.url).resolve('@enclave-edge/ta-sdk');
}

export function bundledSdk(): Plugin {
  return {
    name: 'enclave-edge-ta-sdk',
    setup(build) {
      const distDir = dirname(sdkEntryPath());
      build.onResolve({ filter: /^@enclave-edge\/ta-sdk$/ }, () => ({ path: 'index.js', namespace: NAMESPACE }));
      build.onResolve({ filter: /^\.\.?\//, namespace: NAMESPACE }, (args) => {
        const path = posix.normalize(posix.join(posix.dirname(args.importer), args.path));
        if (path.startsWith('..')) return { errors: [{ text: `ta-sdk import escapes the package: ${args.path}` }] };
        return { path, namespace: NAMESPACE };
      });
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, (args) => {
        const contents = readFileSync(join(distDir, args.path), 'utf8').replace(/\/\/# sourceMappingURL=.*$/m, '');
        return { contents, loader: 'js' };
      });
    },
  };
}

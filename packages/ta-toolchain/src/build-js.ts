/** TypeScript/JavaScript TA → one CommonJS-format script (see docs/bundle-format.md for why CJS). */
import { join } from 'node:path';
import { build, type BuildFailure, type Message } from 'esbuild';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { forbidNodeBuiltins } from './forbid-node-builtins.js';
import { bundledSdk } from './sdk-plugin.js';

export interface CompiledCode {
  code: Uint8Array;
  sourceMap?: Uint8Array;
}

function formatMessage(m: Message): string {
  const at = m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1}: ` : '';
  return at + m.text;
}

export async function buildJs(projectDir: string, entry: string, debug: boolean): Promise<CompiledCode> {
  try {
    const result = await build({
      absWorkingDir: projectDir,
      entryPoints: [entry],
      outfile: join(projectDir, 'dist', 'ta.js'),
      bundle: true,
      write: false,
      format: 'cjs',
      platform: 'neutral',
      target: 'es2022',
      mainFields: ['module', 'main'],
      conditions: ['import', 'default'],
      sourcemap: debug ? 'external' : false,
      sourcesContent: true,
      legalComments: 'none',
      charset: 'utf8',
      logLevel: 'silent',
      plugins: [bundledSdk(), forbidNodeBuiltins(projectDir)],
    });
    const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
    const map = result.outputFiles.find((f) => f.path.endsWith('.js.map'));
    if (!js) throw new EnclaveEdgeError('INTERNAL', 'esbuild produced no JavaScript output');
    const out: CompiledCode = { code: js.contents };
    if (debug && map) out.sourceMap = map.contents;
    return out;
  } catch (e) {
    const failure = e as Partial<BuildFailure>;
    if (Array.isArray(failure.errors) && failure.errors.length) {
      const text = failure.errors.map(formatMessage).join('\n');
      const forbidden = failure.errors.some((m) => m.text.includes('Node built-in'));
      throw new EnclaveEdgeError(forbidden ? 'POLICY_VIOLATION' : 'BAD_PARAMETERS', `TA build failed: ${text}`);
    }
    throw e;
  }
}

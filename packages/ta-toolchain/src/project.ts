/** The TA project file `ta.json`: the manifest with defaults filled in, plus build-only fields. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { describeIssues, manifestSchema, validateManifest, type TAManifest } from '@enclave-edge/bundle';

export const PROJECT_FILE = 'ta.json';

export const DEFAULT_LIMITS = { heapMb: 64, stackKb: 1024, maxConcurrency: 4, callTimeoutMs: 5000 } as const;
export const DEFAULT_SESSION = { singleInstance: true, multiSession: true, keepAlive: false } as const;

const m = manifestSchema.shape;

/** ta.json: same field names and rules as the bundle manifest; `limits`, `session`, `hostCalls`, `debug`, `runtime` may be omitted. */
export const projectSchema = z.strictObject({
  name: m.name,
  uuid: m.uuid,
  version: m.version,
  productId: m.productId,
  securityVersion: m.securityVersion,
  debug: m.debug.optional(),
  runtime: m.runtime.optional(),
  limits: z.strictObject({
    heapMb: m.limits.shape.heapMb.optional(),
    stackKb: m.limits.shape.stackKb.optional(),
    maxConcurrency: m.limits.shape.maxConcurrency.optional(),
    callTimeoutMs: m.limits.shape.callTimeoutMs.optional(),
  }).optional(),
  session: z.strictObject({
    singleInstance: m.session.shape.singleInstance.optional(),
    multiSession: m.session.shape.multiSession.optional(),
    keepAlive: m.session.shape.keepAlive.optional(),
  }).optional(),
  hostCalls: m.hostCalls.optional(),
  confidentialCommands: m.confidentialCommands,
  attest: m.attest,
  description: m.description,
  /** Entry file relative to the project (default src/index.ts for js, assembly/index.ts for wasm). */
  entry: z.string().min(1).max(256).regex(/^[^\0]+$/, 'must be a relative path').optional(),
});

export type TAProject = z.infer<typeof projectSchema>;

export interface LoadedProject {
  dir: string;
  project: TAProject;
  entry: string;
  /** The manifest as it goes into the bundle (debug from the build options). */
  manifest(debug: boolean | undefined): TAManifest;
}

export function loadProject(dir: string): LoadedProject {
  const file = join(dir, PROJECT_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no ${PROJECT_FILE} in ${dir} (create a TA with \`enclave-edge ta new <name>\`)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `${file} is not valid JSON: ${(e as Error).message}`);
  }
  const r = projectSchema.safeParse(json);
  if (!r.success) throw new EnclaveEdgeError('CONFIG_INVALID', `${file} is invalid: ${describeIssues(r.error)}`);
  const project = r.data;
  const runtime = project.runtime ?? 'js';
  const entry = project.entry ?? (runtime === 'wasm' ? 'assembly/index.ts' : 'src/index.ts');
  return {
    dir,
    project,
    entry,
    manifest(debug) {
      const { entry: _entry, ...rest } = project;
      return validateManifest(
        {
          ...rest,
          runtime,
          debug: debug ?? project.debug ?? false,
          limits: { ...DEFAULT_LIMITS, ...project.limits },
          session: { ...DEFAULT_SESSION, ...project.session },
          hostCalls: project.hostCalls ?? [],
        },
        file,
      );
    },
  };
}

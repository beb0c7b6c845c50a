/** zod schemas of the manifest parts the simulator reads (lenient on everything else). */
import { z } from 'zod';

const envValue = z.object({ value: z.union([z.string(), z.number(), z.boolean()]) }, { error: 'expected {"value": …}' });

export const moduleNamePattern = /^[a-zA-Z0-9_-]+$/;

export const edgeAgentModuleSchema = z.object({
  version: z.string().optional(),
  type: z.literal('docker', { error: 'expected "docker"' }).optional(),
  status: z.enum(['running', 'stopped']),
  restartPolicy: z.enum(['always', 'on-failure', 'on-unhealthy', 'never']),
  startupOrder: z.number().int().min(0).max(4294967295).optional(),
  env: z.record(z.string(), envValue).optional(),
  settings: z.looseObject({
    image: z.string().min(1, 'expected a non-empty image name'),
    createOptions: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
  }),
  imagePullPolicy: z.enum(['on-create', 'never']).optional(),
});

const routeSchema = z.union([
  z.string().min(1),
  z.object({
    route: z.string().min(1),
    priority: z.number().int().min(0).max(9).optional(),
    timeToLiveSecs: z.number().int().min(0).max(4294967295).optional(),
  }),
], { error: 'expected a route string or {route, priority?, timeToLiveSecs?}' });

export const manifestSchema = z.object({
  modulesContent: z.looseObject({
    $edgeAgent: z.object({
      'properties.desired': z.looseObject({
        // The versions edgeAgent 1.6 accepts; anything else it answers with lastDesiredStatus 412.
        schemaVersion: z.string().regex(/^1\.[01]$/, 'edgeAgent supports schemaVersion "1.0" and "1.1"'),
        modules: z.record(z.string().regex(moduleNamePattern, 'module names may only use letters, digits, "_" and "-"'), edgeAgentModuleSchema).optional(),
      }),
    }),
    $edgeHub: z.object({
      'properties.desired': z.looseObject({
        schemaVersion: z.string().regex(/^1\.[0-2]$/, 'edgeHub supports schemaVersion "1.0", "1.1" and "1.2"'),
        routes: z.record(z.string(), routeSchema).optional(),
        storeAndForwardConfiguration: z.looseObject({ timeToLiveSecs: z.number().int().min(0) }).optional(),
      }),
    }),
  }),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type EdgeAgentModule = z.infer<typeof edgeAgentModuleSchema>;

/** `a.b.c: message` lines, one per issue, with the JSON path of the bad field. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => {
      const path = i.path.map(String).join('.') || '(root)';
      // Record-key failures carry the key's own issue inside; its message says what is wrong.
      const inner = (i as { issues?: { message: string }[] }).issues?.[0]?.message;
      return `${path}: ${i.code === 'invalid_key' && inner ? inner : i.message}`;
    })
    .join('; ');
}

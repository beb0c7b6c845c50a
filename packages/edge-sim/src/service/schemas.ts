/** Request bodies of the IoT Hub-shaped service API (validated; bad bodies get 400 with the reason). */
import { z } from 'zod';

export const MethodRequestSchema = z.object({
  methodName: z.string().min(1).max(100),
  payload: z.unknown().optional(),
  // IoT Hub allows 5..300 s; the simulator also accepts shorter timeouts so tests stay fast.
  responseTimeoutInSeconds: z.number().positive().max(300).optional(),
  connectTimeoutInSeconds: z.number().min(0).max(300).optional(),
});

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
// z.custom hands the parsed JSON on as it is: z.record would drop a "__proto__" key, and keys are the caller's data.
const JsonObject = z.custom<Record<string, unknown>>(isObject, { message: 'expected a JSON object' });
const StringMap = z.custom<Record<string, string>>((v) => isObject(v) && Object.values(v).every((x) => typeof x === 'string'), { message: 'expected an object of strings' });

export const TwinPatchSchema = z.object({
  properties: z.object({ desired: JsonObject.optional() }).optional(),
  tags: JsonObject.optional(),
  etag: z.string().optional(),
});

export const ConfigurationContentSchema = z.object({
  modulesContent: JsonObject,
});

export const ConfigurationSchema = z.looseObject({
  id: z.string().optional(),
  schemaVersion: z.string().optional(),
  targetCondition: z.string().max(1024).optional(),
  priority: z.number().int().min(0).optional(),
  content: z.looseObject({ modulesContent: JsonObject.optional() }),
  labels: StringMap.optional(),
  metrics: z.looseObject({ queries: StringMap.optional() }).optional(),
});

export const QuerySchema = z.object({ query: z.string().min(1).max(8192) });

export function describeZodError(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(body)'}: ${i.message}`).join('; ');
}

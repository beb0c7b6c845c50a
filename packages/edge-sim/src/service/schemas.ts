/** Request bodies of the IoT Hub-shaped service API (validated; bad bodies get 400 with the reason). */
import { z } from 'zod';

export const MethodRequestSchema = z.object({
  methodName: z.string().min(1).max(100),
  payload: z.unknown().optional(),
  // IoT Hub allows 5..300 s; the simulator also accepts shorter timeouts so tests stay fast.
  responseTimeoutInSeconds: z.number().positive().max(300).optional(),
  connectTimeoutInSeconds: z.number().min(0).max(300).optional(),
});

const JsonObject = z.record(z.string(), z.unknown());

export const TwinPatchSchema = z.object({
  properties: z.object({ desired: JsonObject.optional() }).optional(),
  tags: JsonObject.optional(),
  etag: z.string().optional(),
});

export const ConfigurationContentSchema = z.object({
  modulesContent: z.record(z.string(), z.unknown()),
});

export const ConfigurationSchema = z.object({
  id: z.string().optional(),
  targetCondition: z.string().optional(),
  priority: z.number().int().optional(),
  content: ConfigurationContentSchema,
  labels: z.record(z.string(), z.string()).optional(),
});

export function describeZodError(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(body)'}: ${i.message}`).join('; ');
}

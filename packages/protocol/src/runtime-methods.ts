/** Direct-method payloads of ta-runtime (management). */
import { z } from 'zod';
import { hex64, taName } from './names.js';

export const loadTASchema = z.strictObject({
  name: taName,
  /** The .tab file, base64 (small bundles only; larger ones go through desired properties). */
  bundle: z.string().min(4),
  measurement: hex64.optional(),
});
export const unloadTASchema = z.strictObject({ name: taName });
export const getEvidenceSchema = z.strictObject({ ta: taName, nonce: z.string().min(8).max(128) });

export const RUNTIME_METHODS = ['listTAs', 'loadTA', 'unloadTA', 'getEvidence'] as const;

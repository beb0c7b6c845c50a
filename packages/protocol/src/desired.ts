/**
 * Module twin desired properties of both modules. Twins have no arrays, so every list
 * is a map keyed by a name. Each TA entry is validated on its own: one bad entry is
 * reported as rejected while the others load.
 */
import { z } from 'zod';
import { hex64, taName, commandName } from './names.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export const logLevel = z.enum(LOG_LEVELS);

/**
 * `source`: a file name in the runtime's bundle directory (`hello.tab`), an absolute file
 * path in the image (or `file:` URL), an `https://` URL, or `base64:<bundle>`.
 */
export const taSource = z.string().min(1).max(200_000).refine(
  (s) => /^[A-Za-z0-9][A-Za-z0-9._-]*\.tab$/.test(s) || s.startsWith('/') || s.startsWith('file:') || s.startsWith('https://') || s.startsWith('base64:'),
  'must be a .tab file name in the bundle directory, an absolute path, a file: or https:// URL, or base64:<bundle>',
);

export const taEntrySchema = z.object({
  source: taSource,
  /** Pinned measurement: the bundle must have exactly this one. */
  measurement: hex64.optional(),
  enabled: z.boolean().default(true),
  /**
   * Debug TAs only: open a V8 inspector on 127.0.0.1 in the TA's enclave (`true`), or also wait
   * for a debugger before its first line (`"wait"`). A release TA with it is rejected.
   */
  inspect: z.union([z.boolean(), z.literal('wait')]).default(false),
});
export type TAEntry = z.output<typeof taEntrySchema>;

/**
 * Operator caps on what a TA manifest may ask for (O10): a bundle over any cap is refused
 * (POLICY_VIOLATION naming the limit), however trusted its signer. Defaults are safe for a
 * small device; raise them per device in desired properties.
 */
export const DEFAULT_MAX_LIMITS = { heapMb: 256, stackKb: 8192, maxConcurrency: 16, callTimeoutMs: 60_000, maxInstances: 16 } as const;
export const maxLimitsSchema = z.object({
  heapMb: z.number().int().min(4).max(4096).default(DEFAULT_MAX_LIMITS.heapMb),
  stackKb: z.number().int().min(64).max(65_536).default(DEFAULT_MAX_LIMITS.stackKb),
  maxConcurrency: z.number().int().min(1).max(256).default(DEFAULT_MAX_LIMITS.maxConcurrency),
  callTimeoutMs: z.number().int().min(10).max(3_600_000).default(DEFAULT_MAX_LIMITS.callTimeoutMs),
  /** Instances of one TA at once: a manifest asking for more is refused; one naming none gets at most this many. */
  maxInstances: z.number().int().min(1).max(256).default(DEFAULT_MAX_LIMITS.maxInstances),
});
export type MaxLimits = z.output<typeof maxLimitsSchema>;

export const runtimePolicySchema = z.object({
  /** label → signer_id (SHA-256 of the signer's SPKI, hex). Empty: no bundle is trusted. */
  trustedSigners: z.record(z.string(), hex64).default({}),
  allowDebug: z.boolean().default(false),
  allowEmulated: z.boolean().default(false),
  /** TA name → minimum securityVersion it must have. */
  minSvn: z.record(z.string(), z.number().int().min(0)).default({}),
  /**
   * The loadTA/unloadTA direct methods change the TA set; module-to-module methods carry no
   * caller identity, so any module could call them. Off unless the operator turns it on.
   */
  allowRemoteLoad: z.boolean().default(false),
  maxLimits: maxLimitsSchema.default({ ...DEFAULT_MAX_LIMITS }),
});
export type RuntimePolicy = z.output<typeof runtimePolicySchema>;

export const runtimeSettingsSchema = z.object({
  policy: runtimePolicySchema.default({ trustedSigners: {}, allowDebug: false, allowEmulated: false, minSvn: {}, allowRemoteLoad: false, maxLimits: { ...DEFAULT_MAX_LIMITS } }),
  metricsIntervalSec: z.number().int().min(1).max(86_400).default(60),
  logLevel: logLevel.optional(),
});
export type RuntimeSettings = z.output<typeof runtimeSettingsSchema>;

export const pipelineSchema = z.object({
  /** Module input the messages arrive on (a route must send them there). */
  input: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  ta: taName,
  command: commandName,
  /** Module output the TA's result is sent on. */
  output: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  enabled: z.boolean().default(true),
  timeoutMs: z.number().int().min(1).max(120_000).optional(),
  /**
   * How long a message may wait for the TA while it answers UNAVAILABLE, BUSY or TIMEOUT (e.g.
   * ta-runtime restarting): retried with back-off until then, then reported dropped. A message's
   * own expiry (expiryTimeUtc) is kept when earlier. Default 5 minutes.
   */
  retryWithinMs: z.number().int().min(0).max(7 * 86_400_000).default(300_000),
  /**
   * An X25519 public key (OKP JWK): the TA seals each result to it inside the enclave and the
   * pipeline sends on only what is sealed (docs/confidential-calls.md, "Sealed readings").
   * Checked by host-module with @enclave-edge/confidential's one rule for such keys.
   */
  recipient: z.unknown().optional(),
});
export type Pipeline = z.output<typeof pipelineSchema>;

export const hostSettingsSchema = z.object({
  defaultTimeoutMs: z.number().int().min(1).max(120_000).default(10_000),
  metricsIntervalSec: z.number().int().min(1).max(86_400).default(60),
  logLevel: logLevel.optional(),
});
export type HostSettings = z.output<typeof hostSettingsSchema>;

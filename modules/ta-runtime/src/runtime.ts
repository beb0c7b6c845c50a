/**
 * The runtime core, independent of IoT Edge plumbing: admits bundles under the policy,
 * keeps one enclave per TA, reconciles against the desired `tas` map (load, replace and
 * unload without a restart; calls in flight finish), re-admits every running TA whenever the
 * policy changes (and retires those it now refuses), and dispatches taRequests.
 */
import { EnclaveEdgeError, toEnclaveEdgeError } from '@enclave-edge/errors';
import { invokeBatchOf, type EnclaveBackend, type EnclaveCreateOptions, type TrustServices } from '@enclave-edge/enclave';
import {
  decodeValue, encodeValue, runtimePolicySchema, taEntrySchema, TA_NAME,
  type BatchItemResult, type JsonValue, type RuntimePolicy, type TARequest,
} from '@enclave-edge/protocol';
import type { Value } from '@enclave-edge/ta-sdk';
import type { Logger } from '@enclave-edge/observability';
import { DEV_SIGNER_ID, isDevSigner } from '@enclave-edge/bundle/dev-signer';
import type { VerifiedBundle } from '@enclave-edge/bundle/types';
import { admit, admitVerified, admittedOrThrow, refusalError, type AdmissionResult, type Refusal } from '@enclave-edge/bundle/admission';
import { readSource, type SourceOptions } from './sources.js';
import { LoadedTA, sameSource, type SourceIdentity, type TAReport } from './loaded-ta.js';
import { decodeNonce } from '@enclave-edge/attestation/nonce';
import { ENCLAVE_ATTEST_COMMAND } from '@enclave-edge/confidential/names';

export interface RuntimeEvents {
  /** Lifecycle telemetry (`ta.loaded`, `ta.rejected`, …). */
  event(type: string, body: Record<string, unknown>): void;
  /** Reported-properties patch for one TA (null removes it). */
  report(name: string, report: TAReport | null): void;
  /** Every finished call, for metrics. */
  call?(ta: string, command: string, ms: number, err?: EnclaveEdgeError): void;
  /** Runtime-level reported properties derived from the policy (e.g. `devSignerTrusted`). */
  runtimeReport?(patch: Record<string, unknown>): void;
}

export interface RuntimeOptions {
  backend: EnclaveBackend;
  services?: TrustServices;
  log: Logger;
  events: RuntimeEvents;
  sources: SourceOptions;
  createOptions?: Omit<EnclaveCreateOptions, 'services' | 'log'>;
  /** How long a replaced or unloaded TA's calls in flight may take before it is destroyed anyway. */
  drainMs?: number;
  rootOfTrust?: string;
}

interface DesiredTAs {
  tas: Record<string, unknown>;
  /** Undefined: the desired policy is invalid, and nothing runs until it is fixed. */
  policy: RuntimePolicy | undefined;
  policyError: { field: string; message: string } | undefined;
  /** Names whose desired entry was set to null: removed, whoever loaded them. */
  removed: Set<string>;
}

/** A TA the policy in force refuses: kept (not running) so it can return when the policy admits it again. */
interface RevokedTA {
  bundle: VerifiedBundle;
  source: SourceIdentity;
  origin: 'desired' | 'method';
  pinned?: string | undefined;
  refusal: Refusal;
}

export class TARuntime {
  private readonly tas = new Map<string, LoadedTA>();
  private readonly reports = new Map<string, TAReport>();
  private readonly revoked = new Map<string, RevokedTA>();
  /** Undefined until the first reconcile, and while the desired policy is invalid: nothing is admitted. */
  private policy: RuntimePolicy | undefined;
  private policyError: { field: string; message: string } | undefined;
  private policyKey = '';
  private chain: Promise<void> = Promise.resolve();
  private pendingDesired: DesiredTAs | undefined;
  private stopped = false;
  /** How long the last admission of each TA took (start-up trace). */
  private readonly admitMs = new Map<string, number>();

  constructor(private readonly opts: RuntimeOptions) {}

  /** policy.allowRemoteLoad: loadTA/unloadTA methods are allowed (O5). */
  get allowRemoteLoad(): boolean {
    return this.policy?.allowRemoteLoad === true;
  }

  get backendKind(): string {
    return this.opts.backend.kind;
  }

  /** Reconcile with desired properties; calls are serialised and bursts coalesce to the latest. */
  /**
   * `removed`: names a desired patch set to null (the twin client drops them from the merged
   * desired document, so the patch is the only place they show).
   */
  reconcile(desired: { tas?: unknown; policy?: unknown }, removed: Iterable<string> = []): Promise<void> {
    const parsedPolicy = runtimePolicySchema.safeParse(desired.policy ?? {});
    let policyError: DesiredTAs['policyError'];
    if (!parsedPolicy.success) {
      const issue = parsedPolicy.error.issues[0];
      policyError = { field: ['policy', ...(issue?.path ?? []).map(String)].join('.'), message: issue?.message ?? 'invalid' };
    }
    const tas = desired.tas && typeof desired.tas === 'object' && !Array.isArray(desired.tas) ? (desired.tas as Record<string, unknown>) : {};
    const first = this.pendingDesired === undefined;
    // Coalesced bursts keep every removal they carried.
    const gone = new Set([...(this.pendingDesired?.removed ?? []), ...removed]);
    this.pendingDesired = { tas, policy: parsedPolicy.success ? parsedPolicy.data : undefined, policyError, removed: gone };
    if (!first) return this.chain;
    this.chain = this.chain.then(async () => {
      const next = this.pendingDesired!;
      this.pendingDesired = undefined;
      await this.apply(next).catch((err) => this.opts.log.error({ err: (err as Error).message }, 'reconcile failed'));
    });
    return this.chain;
  }

  private async apply({ tas, policy, policyError, removed }: DesiredTAs): Promise<void> {
    if (this.stopped) return;
    const key = JSON.stringify(policy ?? policyError);
    const policyChanged = key !== this.policyKey;
    this.policyKey = key;
    this.policy = policy;
    this.policyError = policyError;
    if (policyChanged) {
      this.reportPolicy(policy, policyError);
      // Fail closed: every running TA, however it was loaded, is admitted again; one the policy
      // now refuses is retired at once. TAs it still admits keep running untouched.
      for (const [name, ta] of [...this.tas]) {
        const r = this.readmit(ta.bundle, name, ta.origin, ta.pinned);
        if (r.refused) this.revoke(name, ta, r.refused);
        // Admitted, but started under another instance cap (its manifest names none): a fresh
        // enclave under the cap now in force takes over, the old one drains.
        else if (!ta.bundle.manifest.session.singleInstance && ta.bundle.manifest.limits.maxInstances === undefined && ta.instanceCap !== policy?.maxLimits.maxInstances) {
          await this.start(name, ta.bundle, ta.source, ta.origin, ta.pinned).catch((err) => this.revoke(name, ta, { code: 'POLICY_VIOLATION', rule: 'maxLimits.maxInstances', message: `it could not be restarted under the new instance cap: ${toEnclaveEdgeError(err).message}` }));
        }
      }
    }
    for (const [name, raw] of Object.entries(tas)) if (raw === null) removed.add(name);
    for (const name of removed) {
      if (tas[name] !== null && tas[name] !== undefined) continue;
      const running = this.tas.get(name);
      if ((running ?? this.revoked.get(name))?.origin === 'method') {
        // Not the desired properties' own TA: the operator revokes what loadTA put there.
        this.revoke(name, running, { code: 'POLICY_VIOLATION', rule: `tas.${name}`, message: `its desired entry tas.${name} was set to null: removed by the operator` });
        continue;
      }
      this.revoked.delete(name);
      await this.unload(name, 'removed');
    }
    const wanted = new Set<string>();
    await Promise.all(
      Object.entries(tas).map(async ([name, raw]) => {
        if (name.startsWith('$') || raw === null) return;
        wanted.add(name);
        if (!TA_NAME.test(name)) return this.reject(name, 'desired', new EnclaveEdgeError('CONFIG_INVALID', `"${name}" is not a valid TA name`));
        const entry = taEntrySchema.safeParse(raw);
        if (!entry.success) {
          const issue = entry.error.issues[0];
          return this.reject(name, 'desired', new EnclaveEdgeError('CONFIG_INVALID', `tas.${name}${issue?.path.length ? '.' + issue.path.join('.') : ''}: ${issue?.message ?? 'invalid'}`));
        }
        if (!entry.data.enabled) {
          this.revoked.delete(name);
          return this.unload(name, 'disabled');
        }
        // Configured but not in yet: callers are told to retry (503), not that it does not exist.
        if (!this.tas.has(name) && !this.revoked.has(name)) this.setReport(name, { status: 'loading', origin: 'desired', since: new Date().toISOString() });
        try {
          const bytes = await readSource(entry.data.source, this.opts.sources);
          const source: SourceIdentity = { bytes, pinned: entry.data.measurement ?? '', ...(entry.data.inspect ? { inspect: entry.data.inspect } : {}) };
          const current = this.tas.get(name);
          // Unchanged and (above) admitted again under this policy: nothing to do, no restart.
          if (current && sameSource(current.source, source)) {
            // Back to the running version after a refused replacement: the report says so.
            if (this.reports.get(name)?.lastError) this.setReport(name, this.describe(current));
            return;
          }
          const rev = this.revoked.get(name);
          if (!current && rev && sameSource(rev.source, source)) {
            if (!policyChanged) return;
            const r = this.readmit(rev.bundle, name, 'desired', rev.pinned);
            if (r.refused) return this.revoke(name, undefined, r.refused);
            await this.start(name, r.admitted, source, 'desired', rev.pinned);
            return;
          }
          await this.install(name, source, 'desired', entry.data.measurement);
        } catch (err) {
          this.reject(name, 'desired', toEnclaveEdgeError(err));
        }
      }),
    );
    for (const [name, ta] of [...this.tas]) {
      if (ta.origin === 'desired' && !wanted.has(name)) await this.unload(name, 'removed');
    }
    for (const [name, r] of [...this.revoked]) if (r.origin === 'desired' && !wanted.has(name)) this.revoked.delete(name);
    for (const [name, r] of [...this.reports]) {
      if (r.origin === 'desired' && !wanted.has(name) && !this.tas.has(name)) {
        this.reports.delete(name);
        this.opts.events.report(name, null);
      }
    }
  }

  /**
   * O5: a method-loaded bundle with the (signer, productId, uuid) of another loaded TA would get
   * that TA's sealing keys and storage under a new name; only desired properties may do that.
   */
  private refuseAlias(name: string, bundle: VerifiedBundle): void {
    const m = bundle.manifest;
    for (const [other, t] of this.tas) {
      const o = t.bundle.manifest;
      if (other !== name && t.bundle.signerId === bundle.signerId && o.productId === m.productId && o.uuid === m.uuid) {
        throw new EnclaveEdgeError('CONFLICT', `the bundle has the signer, productId and uuid of loaded TA "${other}" (it would share its sealed storage); loadTA refuses aliases`);
      }
    }
  }

  /** The admission rules for a bundle already verified, under the policy in force (none while it is invalid). */
  private readmit(bundle: VerifiedBundle, name: string, origin: 'desired' | 'method', pinned: string | undefined): AdmissionResult {
    if (!this.policy) return { refused: this.invalidPolicyRefusal() };
    return admitVerified(bundle, this.policy, { name, pinnedMeasurement: pinned, backendKind: this.opts.backend.kind, origin });
  }

  private invalidPolicyRefusal(): Refusal {
    const e = this.policyError;
    return {
      code: 'POLICY_VIOLATION',
      rule: 'policy',
      message: e ? `the desired policy is invalid (${e.field}: ${e.message}); no TA runs until it is fixed` : 'no policy has been applied yet',
    };
  }

  /**
   * Retire a TA the policy now refuses: new calls get POLICY_VIOLATION naming the rule, calls in
   * flight may finish within the TA's call timeout, then its enclave is destroyed.
   */
  private revoke(name: string, ta: LoadedTA | undefined, refusal: Refusal): void {
    const prev = this.revoked.get(name);
    const bundle = ta?.bundle ?? prev?.bundle;
    if (!bundle) return;
    if (ta) {
      this.tas.delete(name);
      void ta.retire(bundle.manifest.limits.callTimeoutMs);
    }
    const origin = ta?.origin ?? prev!.origin;
    this.revoked.set(name, { bundle, source: ta?.source ?? prev!.source, origin, pinned: ta?.pinned ?? prev?.pinned, refusal });
    this.setReport(name, { ...this.describeBundle(bundle, origin), status: 'revoked', rule: refusal.rule, lastError: `${refusal.code}: ${refusal.message}`, errorCode: refusal.code });
    if (ta || prev?.refusal.rule !== refusal.rule) {
      this.opts.events.event('ta.revoked', { ta: name, code: refusal.code, rule: refusal.rule, reason: refusal.message, measurement: bundle.measurement, signerId: bundle.signerId, svn: bundle.manifest.securityVersion });
      this.opts.log.warn({ ta: name, code: refusal.code, rule: refusal.rule }, `TA revoked: ${refusal.message}`);
    }
  }

  /** Warn loudly, and report, whenever the policy trusts the public DEV signer (O13); report an invalid policy as loudly. */
  private reportPolicy(policy: RuntimePolicy | undefined, error: DesiredTAs['policyError']): void {
    if (!policy) {
      const at = new Date().toISOString();
      this.opts.events.runtimeReport?.({ devSignerTrusted: false, allowRemoteLoad: false, policyError: { ...error, inForce: 'none: no TA runs until the policy is valid', since: at } });
      this.opts.events.event('policy.rejected', { field: error?.field, reason: error?.message, inForce: 'none' });
      this.opts.log.error({ field: error?.field, issue: error?.message }, 'the desired policy is invalid: it is refused as a whole and no TA runs until it is fixed (fail closed)');
      return;
    }
    const devLabels = Object.entries(policy.trustedSigners).filter(([, id]) => isDevSigner(id)).map(([label]) => label);
    const devSignerTrusted = devLabels.length > 0;
    this.opts.events.runtimeReport?.({ devSignerTrusted, allowRemoteLoad: policy.allowRemoteLoad, maxLimits: policy.maxLimits, policyError: null });
    if (devSignerTrusted) {
      this.opts.log.warn(
        { devSignerTrusted, labels: devLabels, signerId: DEV_SIGNER_ID },
        'SECURITY WARNING: policy.trustedSigners trusts the public DEV signer, whose private key is in git: anyone can sign a TA this runtime will run. Replace it with your own signer (docs/deployment.md)',
      );
      this.opts.events.event('policy.devSignerTrusted', { labels: devLabels, signerId: DEV_SIGNER_ID });
    }
  }

  /** Verify under the policy, start an enclave, then swap it in; the old one drains. */
  private async install(name: string, source: SourceIdentity, origin: 'desired' | 'method', pinned?: string): Promise<LoadedTA> {
    if (!this.policy) throw refusalError(this.invalidPolicyRefusal());
    const admitStarted = performance.now();
    const bundle = admittedOrThrow(await admit(source.bytes, this.policy, { name, pinnedMeasurement: pinned, backendKind: this.opts.backend.kind, origin }));
    this.admitMs.set(name, Math.round(performance.now() - admitStarted));
    if (origin === 'method') this.refuseAlias(name, bundle);
    return this.start(name, bundle, source, origin, pinned);
  }

  /** Start an enclave for an admitted bundle and swap it in; the previous one drains. */
  private async start(name: string, bundle: VerifiedBundle, source: SourceIdentity, origin: 'desired' | 'method', pinned?: string): Promise<LoadedTA> {
    const log = this.opts.log;
    // The operator's cap on instances of one TA (a manifest asking for more was refused by admission).
    const instanceCap = this.policy?.maxLimits.maxInstances;
    const createStarted = performance.now();
    const inspect = origin === 'desired' ? source.inspect : undefined;
    let started: LoadedTA | undefined;
    const enclave = await this.opts.backend.create(bundle, {
      ...this.opts.createOptions,
      ...(instanceCap !== undefined ? { maxInstances: instanceCap } : {}),
      ...(this.opts.services ? { services: this.opts.services } : {}),
      // The backend refuses it for a release TA (inspectRefusal): the TA is then rejected with that reason.
      ...(inspect
        ? {
            inspect,
            onInspector: (url: string, i: { waiting: boolean }) => {
              log.warn({ ta: name, inspectorUrl: url }, `debugger listening for TA "${name}" at ${url} (debug TA, inspect ${i.waiting ? 'wait: it waits for the debugger before its first line' : 'on'})`);
              if (started && this.tas.get(name) === started) this.setReport(name, this.describe(started));
            },
          }
        : {}),
      // The TA's fields stay nested: spread at the top they could overwrite `ta`, `level`, `time`
      // or `pid` and so forge another TA's name, the severity or the timestamp of the line.
      log: (level, ta, message, fields) => log[level](fields && Object.keys(fields).length ? { ta, fields } : { ta }, message),
    });
    const loaded = new LoadedTA(name, bundle, enclave, source, origin, pinned, instanceCap);
    started = loaded;
    enclave.on('event', (e) => {
      if (e.type === 'crashed') this.opts.events.event('ta.crashed', { ta: name, reason: e.reason, code: e.code });
      else if (e.type === 'restarted') this.opts.events.event('ta.restarted', { ta: name, attempt: e.attempt });
      else if (e.type === 'failed') {
        this.opts.events.event('ta.failed', { ta: name, reason: e.reason, retryInMs: e.retryInMs });
        this.setReport(name, { ...this.describe(loaded), status: 'failed', lastError: e.reason, errorCode: 'TA_FAILED' });
      } else if (e.type === 'recovering') {
        this.opts.events.event('ta.recovering', { ta: name, after: e.after, failures: e.failures });
        if (this.tas.get(name) === loaded) this.setReport(name, this.describe(loaded));
      }
    });
    const previous = this.tas.get(name);
    this.tas.set(name, loaded);
    this.revoked.delete(name);
    this.setReport(name, this.describe(loaded));
    this.opts.events.event('ta.loaded', { ta: name, version: bundle.manifest.version, measurement: bundle.measurement, signerId: bundle.signerId, svn: bundle.manifest.securityVersion, replaced: previous !== undefined });
    // Start-up trace: ms since this process started, admission, and the enclave's own steps where the backend tells them.
    const steps = (enclave as { lastStartup?: Record<string, unknown> }).lastStartup;
    log.info({
      ta: name, measurement: bundle.measurement, replaced: previous !== undefined,
      atMs: Math.round(performance.now()), admitMs: this.admitMs.get(name), createMs: Math.round(performance.now() - createStarted), ...(steps ? { startup: steps } : {}),
    }, 'TA loaded');
    if (previous) void previous.retire(this.opts.drainMs ?? 30_000);
    return loaded;
  }

  private describe(t: LoadedTA): TAReport {
    const url = (t.enclave as { inspectorUrl?: string }).inspectorUrl;
    return { ...this.describeBundle(t.bundle, t.origin), ...(url ? { inspectorUrl: url } : {}) };
  }

  private describeBundle(b: VerifiedBundle, origin: 'desired' | 'method'): TAReport {
    const m = b.manifest;
    return {
      status: 'loaded', origin, version: m.version, measurement: b.measurement, signerId: b.signerId,
      svn: m.securityVersion, debug: m.debug, runtime: m.runtime, lastError: null, errorCode: null, rule: null, inspectorUrl: null, since: new Date().toISOString(),
    };
  }

  /**
   * A bundle that failed to load. While the running version still passes the policy it keeps
   * serving (a bad replacement changes nothing); a revoked TA stays reported revoked.
   */
  private reject(name: string, origin: 'desired' | 'method', err: EnclaveEdgeError): void {
    const kept = this.tas.get(name);
    const rev = kept ? undefined : this.revoked.get(name);
    const rule = typeof err.detail?.rule === 'string' ? err.detail.rule : null;
    const base = kept ? this.describe(kept) : rev ? this.describeBundle(rev.bundle, rev.origin) : { version: null, measurement: null, signerId: null, svn: null, debug: null, runtime: null };
    this.setReport(name, {
      ...base,
      status: kept ? 'loaded' : rev ? 'revoked' : 'rejected', origin, lastError: `${err.code}: ${err.message}`, errorCode: err.code,
      rule: rev ? rev.refusal.rule : rule, since: new Date().toISOString(),
    });
    this.opts.events.event('ta.rejected', { ta: name, code: err.code, reason: err.message, ...(rule ? { rule } : {}), keptPrevious: kept !== undefined });
    this.opts.log.warn({ ta: name, code: err.code }, `TA rejected: ${err.message}`);
  }

  private setReport(name: string, r: TAReport): void {
    this.reports.set(name, r);
    this.opts.events.report(name, r);
  }

  async unload(name: string, why: 'removed' | 'disabled' | 'method'): Promise<boolean> {
    const ta = this.tas.get(name);
    if (ta) {
      this.tas.delete(name);
      await ta.retire(this.opts.drainMs ?? 30_000);
      this.opts.events.event('ta.unloaded', { ta: name, reason: why });
      this.opts.log.info({ ta: name, why }, 'TA unloaded');
    }
    if (why === 'disabled') this.setReport(name, { status: 'disabled', origin: 'desired', since: new Date().toISOString() });
    else if (this.reports.delete(name)) this.opts.events.report(name, null);
    return ta !== undefined;
  }

  /** loadTA direct method: a small inline bundle, not owned by desired properties. */
  async loadInline(name: string, bytes: Uint8Array, pinned?: string): Promise<TAReport> {
    const current = this.tas.get(name);
    if (current?.origin === 'desired' || this.reports.get(name)?.origin === 'desired') {
      throw new EnclaveEdgeError('CONFLICT', `TA "${name}" is managed by desired properties; change it there`);
    }
    try {
      const loaded = await this.install(name, { bytes, pinned: pinned ?? '' }, 'method', pinned);
      return this.describe(loaded);
    } catch (err) {
      const e = toEnclaveEdgeError(err);
      this.reject(name, 'method', e);
      throw e;
    }
  }

  /** Operator reset of a failed TA: it serves again now instead of after its back-off. */
  async reset(name: string): Promise<{ state: string }> {
    const ta = this.tas.get(name);
    if (!ta) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no TA "${name}" is loaded`);
    if (!ta.enclave.reset) throw new EnclaveEdgeError('NOT_SUPPORTED', `the ${ta.enclave.backend} backend cannot reset a TA`);
    await ta.enclave.reset();
    return { state: ta.enclave.stats().state };
  }

  async unloadMethod(name: string): Promise<void> {
    const ta = this.tas.get(name);
    if (!ta && this.revoked.get(name)?.origin === 'method') {
      this.revoked.delete(name);
      await this.unload(name, 'method');
      return;
    }
    if (!ta) throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no TA "${name}" is loaded`);
    if (ta.origin === 'desired') throw new EnclaveEdgeError('CONFLICT', `TA "${name}" is managed by desired properties; disable or remove it there`);
    await this.unload(name, 'method');
  }

  list(): Array<{ name: string } & TAReport & { stats?: unknown }> {
    return [...this.reports].map(([name, r]) => {
      const ta = this.tas.get(name);
      return { name, ...r, ...(ta ? { stats: ta.enclave.stats(), commands: undefined } : {}) };
    });
  }

  private get(name: string): LoadedTA {
    const ta = this.tas.get(name);
    if (!ta) {
      const rev = this.revoked.get(name);
      if (rev) throw refusalError({ ...rev.refusal, message: `TA "${name}" is revoked: ${rev.refusal.message}` });
      const r = this.reports.get(name);
      if (r?.status === 'rejected') throw new EnclaveEdgeError('UNAVAILABLE', `TA "${name}" was rejected: ${r.lastError ?? ''}`);
      if (r?.status === 'disabled') throw new EnclaveEdgeError('UNAVAILABLE', `TA "${name}" is disabled`);
      if (r?.status === 'loading') throw new EnclaveEdgeError('UNAVAILABLE', `TA "${name}" is still loading; retry shortly`, { detail: { retryAfterMs: 1000 } });
      throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no TA "${name}" is loaded`);
    }
    return ta;
  }

  /**
   * Run an invokeBatch request: each item is one invoke of the same command (no session),
   * through the enclave's batch path (invokeBatchOf). Each item succeeds or fails on its own;
   * the request fails as a whole only when it cannot start (deadline passed, TA not loaded).
   */
  async invokeBatch(req: Extract<TARequest, { op: 'invokeBatch' }>): Promise<BatchItemResult[]> {
    const remaining = req.deadline - Date.now();
    if (remaining <= 0) throw new EnclaveEdgeError('TIMEOUT', 'the request deadline passed before it could start', { detail: { started: false } });
    const ta = this.get(req.ta);
    const started = performance.now();
    const fail = (err: unknown): BatchItemResult => {
      const e = toEnclaveEdgeError(err);
      this.opts.events.call?.(req.ta, req.command, performance.now() - started, e);
      return { ok: false, error: e.toJSON() as Extract<BatchItemResult, { ok: false }>['error'] };
    };
    const results: Array<BatchItemResult | undefined> = [];
    const send: Value[] = [];
    const at: number[] = [];
    for (const item of req.items) {
      try {
        const params = item.params === undefined ? undefined : decodeValue(item.params);
        at.push(results.length);
        send.push(params ?? null);
        results.push(undefined);
      } catch (err) {
        results.push(fail(err));
      }
    }
    const outcomes = send.length ? await ta.use((e) => invokeBatchOf(e, req.command, send, { timeoutMs: Math.max(1, req.deadline - Date.now()) })) : [];
    outcomes.forEach((o, k) => {
      if (!o.ok) return void (results[at[k]!] = fail(o.error));
      this.opts.events.call?.(req.ta, req.command, performance.now() - started);
      results[at[k]!] = { ok: true, result: encodeValue(o.value ?? null) };
    });
    return results as BatchItemResult[];
  }

  /** Run one taRequest; the result is in wire (JSON) form. */
  async dispatch(req: TARequest): Promise<JsonValue | undefined> {
    const remaining = req.deadline - Date.now();
    if (remaining <= 0) throw new EnclaveEdgeError('TIMEOUT', 'the request deadline passed before it could start', { detail: { started: false } });
    switch (req.op) {
      case 'invokeBatch':
        throw new EnclaveEdgeError('INTERNAL', 'invokeBatch is answered by invokeBatch(), not dispatch()');
      case 'listTAs':
        return encodeValue({ tas: this.list() as unknown as Value });
      case 'invoke': {
        const ta = this.get(req.ta);
        const started = performance.now();
        try {
          const params = req.params === undefined ? undefined : decodeValue(req.params);
          const result = await ta.use((e) => e.invoke(req.sessionId, req.command, params ?? null, { timeoutMs: remaining }));
          this.opts.events.call?.(req.ta, req.command, performance.now() - started);
          return encodeValue(result ?? null);
        } catch (err) {
          const e = toEnclaveEdgeError(err);
          this.opts.events.call?.(req.ta, req.command, performance.now() - started, e);
          throw e;
        }
      }
      case 'openSession': {
        const ta = this.get(req.ta);
        const params = req.params === undefined ? undefined : decodeValue(req.params);
        const sessionId = await ta.use((e) => e.openSession(params));
        return { sessionId };
      }
      case 'closeSession': {
        const ta = this.get(req.ta);
        await ta.use((e) => e.closeSession(req.sessionId));
        return { closed: true };
      }
      case 'attest':
        return { token: await this.attest(req.ta, req.nonce, req.claims === undefined ? undefined : (decodeValue(req.claims) as Record<string, Value>)) };
    }
  }

  /**
   * Evidence for a TA. If the TA has an `attest` command it produces its own evidence (so it
   * can bind its public key, and decides which caller claims it asserts); otherwise the runtime
   * issues evidence for the TA's identity only, and refuses caller claims (O4).
   */
  async attest(name: string, nonceText: string, claims?: Record<string, Value>): Promise<string> {
    decodeNonce(nonceText); // refuse a bad nonce before anything runs, with the one codec's error
    const ta = this.get(name);
    let token: string | undefined;
    // Declared in the signed manifest, never discovered by calling it: the TA's own failure is the caller's answer.
    if (ta.bundle.manifest.attest === true) {
      const r = await ta.use((e) => e.invoke(undefined, 'attest', { nonce: nonceText, ...(claims ? { claims } : {}) }));
      const o = r && typeof r === 'object' && !(r instanceof Uint8Array) && !Array.isArray(r) ? (r as Record<string, Value>) : undefined;
      token = typeof r === 'string' ? r : typeof o?.token === 'string' ? o.token : typeof o?.evidence === 'string' ? o.evidence : undefined;
      if (token === undefined) throw new EnclaveEdgeError('TA_ERROR', `TA "${name}" declares attest but its attest command returned no token (a string, { token } or { evidence })`);
    } else {
      if (!this.opts.services) throw new EnclaveEdgeError('NOT_SUPPORTED', 'this runtime has no root of trust, so it cannot attest');
      // O4: runtime-issued evidence states only what the runtime measured. Caller claims would
      // be signed by the device key as if the TA asserted them (the caller is the untrusted host).
      if (claims && Object.keys(claims).length > 0) {
        throw new EnclaveEdgeError('BAD_PARAMETERS', `TA "${name}" does not declare attest in its manifest, so it cannot assert claims; the runtime does not sign caller claims. Bind your context in the nonce instead (e.g. SHA-256 of it)`);
      }
      // Issued through the enclave, so the evidence binds the TA's HPKE key (created in there).
      const r = await ta.use((e) => e.invoke(undefined, ENCLAVE_ATTEST_COMMAND, { nonce: nonceText }));
      if (typeof r !== 'string') throw new EnclaveEdgeError('INTERNAL', 'the enclave returned no evidence token');
      token = r;
    }
    this.opts.events.event('attestation.issued', { ta: name, measurement: ta.bundle.measurement, tee: this.opts.backend.kind });
    return token;
  }

  get liveEnclaves(): number {
    return this.tas.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.chain.catch(() => undefined);
    await Promise.all([...this.tas.values()].map((t) => t.retire(2000)));
    this.tas.clear();
  }
}

/**
 * The simulator's state folder (default `.edge-sim/`): PKI, SAS keys (0600), and `state.json`
 * describing a running simulator so the CLI can find it.
 */
import { mkdirSync, chmodSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { writeFileAtomic, readIfExists } from './files.js';

export { writeFileAtomic } from './files.js';

const KeysSchema = z.object({
  hubKey: z.string().min(16),
  workloadSecret: z.string().min(16),
  modules: z.record(z.string(), z.object({ key: z.string().min(16), generationId: z.string().min(1) })),
});
type Keys = z.infer<typeof KeysSchema>;

export const RuntimeStateSchema = z.object({
  pid: z.number().int(),
  startedAt: z.string(),
  hubHostName: z.string(),
  deviceId: z.string(),
  mqttPort: z.number().int(),
  httpsPort: z.number().int(),
  workloadUri: z.string(),
  host: z.string().optional(),
  amqpPort: z.number().int().optional(),
  manifest: z.string().optional(),
  modules: z.array(z.string()).default([]),
});
export type RuntimeState = z.infer<typeof RuntimeStateSchema>;

export interface ModuleIdentity {
  moduleId: string;
  key: Buffer;
  keyBase64: string;
  generationId: string;
}

export class StateDir {
  readonly dir: string;
  readonly caCertPath: string;
  readonly serverCertPath: string;
  readonly serverKeyPath: string;
  private keys!: Keys;
  caCertPem!: string;
  serverCertPem!: string;
  serverKeyPem!: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.caCertPath = join(dir, 'ca.pem');
    this.serverCertPath = join(dir, 'server.pem');
    this.serverKeyPath = join(dir, 'server-key.pem');
  }

  /** Open (creating on first use) the state folder: PKI and keys are made once and kept. */
  /** `listenHost`: the address the simulator listens on; the server certificate is made to name it. */
  static async open(dir = '.edge-sim', listenHost = '127.0.0.1'): Promise<StateDir> {
    const s = new StateDir(resolve(dir));
    try {
      mkdirSync(s.dir, { recursive: true, mode: 0o700 });
      chmodSync(s.dir, 0o700);
    } catch (err) {
      throw stateDirError(err, s.dir);
    }
    await s.loadOrCreatePki(listenHost);
    s.loadOrCreateKeys();
    return s;
  }

  /** Read-only view for clients (CLI): fails with a clear message when nothing is there. */
  static openExisting(dir = '.edge-sim'): StateDir {
    const s = new StateDir(resolve(dir));
    const ca = readIfExists(s.caCertPath);
    const keys = readIfExists(join(s.dir, 'keys.json'));
    if (!ca || !keys) throw new EnclaveEdgeError('UNAVAILABLE', `no simulator state in ${s.dir}; start one with \`enclave-edge sim up\``);
    s.caCertPem = ca;
    s.keys = KeysSchema.parse(JSON.parse(keys));
    return s;
  }

  private async loadOrCreatePki(listenHost: string): Promise<void> {
    const ca = readIfExists(this.caCertPath);
    const cert = readIfExists(this.serverCertPath);
    const key = readIfExists(this.serverKeyPath);
    const caKey = readIfExists(join(this.dir, 'ca-key.pem'));
    const extraIps = listenHost === '127.0.0.1' || listenHost === 'localhost' ? [] : [listenHost];
    if (ca && cert && key) {
      Object.assign(this, { caCertPem: ca, serverCertPem: cert, serverKeyPem: key });
      if (!extraIps.length || !caKey) return;
      const { serverCertCovers, reissueServerCert } = await import('./certs.js');
      if (serverCertCovers(cert, listenHost)) return;
      const server = await reissueServerCert(ca, caKey, extraIps);
      writeFileAtomic(this.serverKeyPath, server.serverKeyPem, 0o600);
      writeFileAtomic(this.serverCertPath, server.serverCertPem, 0o644);
      Object.assign(this, server);
      return;
    }
    // Loaded on first run only: the x509 stack is slow to import and the CLI rarely needs it.
    const { generatePki } = await import('./certs.js');
    const pki = await generatePki({ ips: extraIps });
    writeFileAtomic(join(this.dir, 'ca-key.pem'), pki.caKeyPem, 0o600);
    writeFileAtomic(this.serverKeyPath, pki.serverKeyPem, 0o600);
    writeFileAtomic(this.serverCertPath, pki.serverCertPem, 0o644);
    writeFileAtomic(this.caCertPath, pki.caCertPem, 0o644);
    Object.assign(this, { caCertPem: pki.caCertPem, serverCertPem: pki.serverCertPem, serverKeyPem: pki.serverKeyPem });
  }

  private loadOrCreateKeys(): void {
    const raw = readIfExists(join(this.dir, 'keys.json'));
    if (raw) {
      const parsed = KeysSchema.safeParse(JSON.parse(raw));
      if (!parsed.success) throw new EnclaveEdgeError('CONFIG_INVALID', `${join(this.dir, 'keys.json')} is corrupt; delete the state folder to start afresh`);
      this.keys = parsed.data;
      return;
    }
    this.keys = { hubKey: randomBytes(32).toString('base64'), workloadSecret: randomBytes(32).toString('base64'), modules: {} };
    this.saveKeys();
  }

  private saveKeys(): void {
    writeFileAtomic(join(this.dir, 'keys.json'), JSON.stringify(this.keys, null, 2) + '\n', 0o600);
  }

  /** The `iothubowner` policy key (base64). */
  get hubKey(): string {
    return this.keys.hubKey;
  }

  get workloadSecret(): Buffer {
    return Buffer.from(this.keys.workloadSecret, 'base64');
  }

  /** The identity of `moduleId`, created (random 32-byte key) on first request when `create`. */
  moduleIdentity(moduleId: string, create = true): ModuleIdentity | undefined {
    // Module ids come from outside (client ids, URLs, deployments): own entries only.
    const own = (modules: Keys['modules']) => (Object.hasOwn(modules, moduleId) ? modules[moduleId] : undefined);
    let entry = own(this.keys.modules);
    if (!entry) {
      // Another process (the CLI's module-credentials) may have added it since we loaded.
      const raw = readIfExists(join(this.dir, 'keys.json'));
      const fresh = raw ? KeysSchema.safeParse(JSON.parse(raw)) : undefined;
      if (fresh?.success && fresh.data.hubKey === this.keys.hubKey) {
        this.keys = { ...this.keys, modules: { ...fresh.data.modules, ...this.keys.modules } };
        entry = own(this.keys.modules);
      }
    }
    if (!entry) {
      if (!create) return undefined;
      entry = { key: randomBytes(32).toString('base64'), generationId: randomUUID() };
      this.keys = { ...this.keys, modules: { ...this.keys.modules, [moduleId]: entry } }; // a computed key is always an own property
      this.saveKeys();
    }
    return { moduleId, key: Buffer.from(entry.key, 'base64'), keyBase64: entry.key, generationId: entry.generationId };
  }

  writeRuntime(state: RuntimeState): void {
    writeFileAtomic(join(this.dir, 'state.json'), JSON.stringify(state, null, 2) + '\n', 0o600);
  }

  clearRuntime(pid = process.pid): void {
    const current = this.readRuntime();
    if (current && current.pid === pid) rmSync(join(this.dir, 'state.json'), { force: true });
  }

  /** The running simulator's ports, or undefined when none (a stale file of a dead pid counts as none). */
  readRuntime(): RuntimeState | undefined {
    const raw = readIfExists(join(this.dir, 'state.json'));
    if (!raw) return undefined;
    const parsed = RuntimeStateSchema.safeParse(JSON.parse(raw));
    if (!parsed.success) return undefined;
    return isAlive(parsed.data.pid) ? parsed.data : undefined;
  }
}

/** The folder cannot be made ours and private (another user's, or a parent we may not write): say which. */
function stateDirError(err: unknown, dir: string): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'EPERM' && code !== 'EACCES') return err;
  const owner = ownerOf(dir);
  const why = owner !== undefined && owner !== process.getuid?.() ? `belongs to another user (uid ${owner})` : 'cannot be created or made private (0700) by this user';
  return new EnclaveEdgeError('ACCESS_DENIED', `state folder ${dir} ${why}`, { cause: err, detail: { stateDir: dir } });
}

function ownerOf(path: string): number | undefined {
  try {
    return statSync(path).uid;
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid exists (EPERM: it does, as another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The simulator's hub state on disk, kept across a crash and restart as IoT Hub keeps it:
 * module twins (desired, reported, tags and their versions), the device twin (its tags target
 * configurations), the configurations (deployments at scale) and the deployment last applied
 * through the service API. Messages for module inputs not yet acknowledged are kept beside it
 * (hub-state-forwarding.ts). One JSON file, replaced with the project's durable write (temp,
 * fsync, rename, fsync of the folder) on every change, before the change is acknowledged.
 * The state belongs to the manifest the simulator started from: started with another manifest,
 * the simulator begins again from that manifest (and says so).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { writeFileAtomicSync } from '@enclave-edge/durable-files';
import type { Twin } from '../hub/twins.js';
import type { Configuration } from '../registry/configurations.js';

export const HUB_STATE_FILE = 'hub-state.json';

export interface HubState {
  /** `modulesContent` last applied with applyConfigurationContent, or null (the manifest's). */
  deployment: { modulesContent: Record<string, unknown> } | null;
  twins: Twin[];
  /** The device twin (tags, desired); absent in a state written before it was kept. */
  deviceTwins?: Twin[];
  configurations?: Configuration[];
}

interface HubStateDoc extends HubState {
  v: 1;
  manifest: string;
}

/** Identifies the manifest a state belongs to. */
export function manifestFingerprint(manifest: unknown): string {
  return createHash('sha256').update(JSON.stringify(manifest)).digest('hex');
}

export class HubStateFile {
  constructor(private readonly path: string, private readonly manifest: string, private readonly log: (line: string) => void) {}

  /** The saved state of this manifest, or undefined (none, another manifest's, or unreadable: set aside). */
  load(): HubState | undefined {
    if (!existsSync(this.path)) return undefined;
    let doc: HubStateDoc;
    try {
      doc = JSON.parse(readFileSync(this.path, 'utf8')) as HubStateDoc;
      if (doc.v !== 1 || !Array.isArray(doc.twins)) throw new Error('not a hub state document');
    } catch (err) {
      const aside = `${this.path}.unreadable-${Date.now()}`;
      renameSync(this.path, aside);
      this.log(`warning: ${HUB_STATE_FILE} could not be read (${(err as Error).message}); set aside as ${aside}, starting from the manifest`);
      return undefined;
    }
    if (doc.manifest !== this.manifest) {
      this.log('the manifest changed since the last run: twins and deployment start again from it');
      return undefined;
    }
    const configurations = Array.isArray(doc.configurations) ? doc.configurations : [];
    this.log(`hub state restored: ${doc.twins.length} twin(s), ${configurations.length} configuration(s)${doc.deployment ? ', the deployment applied through the service API' : ''}`);
    return { deployment: doc.deployment, twins: doc.twins, deviceTwins: Array.isArray(doc.deviceTwins) ? doc.deviceTwins : [], configurations };
  }

  save(state: HubState): void {
    const doc: HubStateDoc = { v: 1, manifest: this.manifest, ...state };
    writeFileAtomicSync(this.path, JSON.stringify(doc), 0o600);
  }
}

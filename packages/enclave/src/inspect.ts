/**
 * Who may be inspected. An inspector is full control of the TA it is attached to (read its
 * memory and keys in use, change its code and results), so only a debug build is ever
 * inspected; a debug build runs only where the policy allows debug TAs (admission).
 */
import type { TAManifest } from '@enclave-edge/bundle/types';

/** How an enclave opens its instances' inspector: listen, or listen and wait for the debugger before the TA's code runs. */
export type InspectMode = 'listen' | 'wait';

/** The reason a TA may not be inspected, or undefined when it may. Every layer (backend, CLI, ta-runtime) asks this. */
export function inspectRefusal(m: Pick<TAManifest, 'name' | 'debug'>): string | undefined {
  if (m.debug === true) return undefined;
  return `TA "${m.name}" is a release build: only debug builds (manifest.debug, built with --debug) can be inspected, because an inspector has full control of the TA`;
}

/** The inspector's address as the worker reports it: loopback only, a port and the V8 target id. */
export const INSPECTOR_URL = /^ws:\/\/127\.0\.0\.1:\d{1,5}\/[0-9a-f-]{36}$/;

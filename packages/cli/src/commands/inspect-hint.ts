/** How the CLI tells where to point a debugger at an inspected TA (`ta run --inspect`, `ta deploy --inspect`). */

export function inspectorBanner(ta: string, url: string, waiting: boolean): string {
  const u = new URL(url);
  return [
    `enclave-edge: debugger listening for TA ${ta} at ${url} (DEBUG TA: whoever attaches has full control of it)`,
    `  Chrome: devtools://devtools/bundled/js_app.html?ws=${u.host}${u.pathname}  (or chrome://inspect, Configure… ${u.host})`,
    `  VS Code: attach to ${u.hostname} port ${u.port} (docs/debugging.md); the TA's sources are ta:///src/…`,
    ...(waiting ? [`enclave-edge: waiting for the debugger; the TA stops before its first line`] : []),
  ].join('\n');
}

/** The refusal for a release TA, in the CLI's words, from the one rule (inspectRefusal). */
export async function refuseReleaseInspect(flag: string, manifest: { name: string; debug: boolean }, fix: string): Promise<void> {
  const { inspectRefusal } = await import('@enclave-edge/enclave/inspect');
  const why = inspectRefusal(manifest);
  if (why) {
    const { EnclaveEdgeError } = await import('@enclave-edge/errors');
    throw new EnclaveEdgeError('POLICY_VIOLATION', `${flag}: ${why}; ${fix}`);
  }
}

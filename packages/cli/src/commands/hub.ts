/** `enclave-edge invoke | monitor | twin`: IoT Hub service operations, on the simulator or a real hub. */
import type { Command } from 'commander';
import { EnclaveEdgeError, isEnclaveEdgeError } from '@enclave-edge/errors';
import type { UpstreamEvent } from '@enclave-edge/hub-client';
import { EXIT, emit, action, oneLine, warn, type GlobalOptions } from '../output.js';
import { cliCommand } from './cli-hint.js';
import { addTargetOptions, parseJsonArg, type TargetOptions } from './target-options.js';
import type { ConfidentialInvokeOptions } from './confidential-invoke.js';
import { parseConsumerGroup, parseFrom, type StartFrom } from './monitor-eventhub-options.js';

// The hub client and the simulator state are imported when an action runs, not to show help.
async function resolveTarget(o: TargetOptions) {
  const { resolveTarget } = await import('./hub-target.js');
  return resolveTarget(o);
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 300) throw new EnclaveEdgeError('BAD_PARAMETERS', `timeout must be 0 < s <= 300, got ${v}`);
  return n;
}

function positiveSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new EnclaveEdgeError('BAD_PARAMETERS', `not a positive number of seconds: ${v}`);
  return n;
}

function count(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new EnclaveEdgeError('BAD_PARAMETERS', `not a positive count: ${v}`);
  return n;
}

/** A method timeout says what to check. (Our own modules answer a method they lack at once, with their list.) */
function explainTimeout(err: unknown, moduleId: string, methodName: string, timeoutS: number, simulator: boolean): unknown {
  if (!isEnclaveEdgeError(err, 'TIMEOUT')) return err;
  const hints = [`check that module "${moduleId}" exists and implements method "${methodName}" (names are case-sensitive)`];
  hints.push(simulator ? `check that ${moduleId} is connected: ${cliCommand()} sim status` : `check that ${moduleId} is running and connected on the device`);
  return new EnclaveEdgeError('TIMEOUT', `no answer from ${moduleId} ${methodName} within ${timeoutS} s: ${hints.join('; ')}`, { cause: err });
}

/** A non-2xx answer: one line on stderr and exit status 3 (the answer itself is already on stdout). */
function reportStatus(moduleId: string, methodName: string, r: { status: number; payload: unknown }): void {
  if (r.status >= 200 && r.status <= 299) return;
  const e = (r.payload as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof e?.code === 'string' ? e.code : `STATUS_${r.status}`;
  process.stderr.write(`enclave-edge: ${code}: ${moduleId} ${methodName} answered ${r.status}${typeof e?.message === 'string' ? `: ${oneLine(e.message)}` : ''}\n`);
  process.exitCode = EXIT.METHOD_STATUS;
}

function pretty(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
}

function formatEvent(e: UpstreamEvent): string {
  const props = Object.keys(e.properties).length ? `\n  properties: ${JSON.stringify(e.properties)}` : '';
  const sys = Object.fromEntries(Object.entries(e.systemProperties).filter(([k]) => k !== '$.cdid' && k !== '$.cmid'));
  const sysText = Object.keys(sys).length ? `\n  system: ${JSON.stringify(sys)}` : '';
  const body = typeof e.body === 'string' ? e.body : JSON.stringify(e.body);
  return `[${e.enqueuedTimeUtc}] ${e.deviceId}/${e.moduleId}${e.output ? ` output ${e.output}` : ''}${sysText}${props}\n  body: ${body}${e.bodyEncoding ? ` (${e.bodyEncoding})` : ''}`;
}

export function register(program: Command): void {
  addTargetOptions(
    program
      .command('invoke <module> <method> [payload]')
      .description('invoke a direct method on a module (payload is JSON; default null)')
      .option('--timeout <s>', 'response timeout in seconds', seconds, 30)
      .option('--confidential', 'invokeTA only: verify the TA\'s evidence, then send params and get the result sealed to its attested key (see docs/confidential-calls.md)')
      .option('--trust <pem>', 'with --confidential: trust anchor certificate(s) for the evidence (PEM)')
      .option('--policy <file>', 'with --confidential: verifier policy JSON (allowedSigners, allowedMeasurements, minSecurityVersion, …)')
      .option('--allow-emulated', 'with --confidential: accept evidence from emulated enclaves (development)'),
  ).action(
    action(async (moduleId: string, methodName: string, payload: string | undefined, o: TargetOptions & ConfidentialInvokeOptions & { confidential?: boolean }, cmd: Command) => {
      const body = parseJsonArg(payload, 'payload'); // local input first: no hub needed to refuse it
      const g = cmd.optsWithGlobals() as GlobalOptions;
      const t = await resolveTarget(o);
      try {
        if (o.confidential) {
          const { invokeConfidential } = await import('./confidential-invoke.js');
          const r = await invokeConfidential(t.client, t.deviceId, moduleId, methodName, body, o);
          for (const w of r.confidential.warnings) warn(w);
          emit(g, r, (v: typeof r) => `status ${v.status} (confidential: ${v.confidential.ta} ${v.confidential.measurement.slice(0, 12)}…, tee ${v.confidential.tee})\n${pretty(v.payload)}`);
          reportStatus(moduleId, methodName, r);
          return;
        }
        let r;
        try {
          r = await t.client.invokeModuleMethod(t.deviceId, moduleId, { methodName, payload: body, responseTimeoutInSeconds: o.timeout });
        } catch (err) {
          throw explainTimeout(err, moduleId, methodName, o.timeout, t.simulator);
        }
        emit(g, r, (v: typeof r) => `status ${v.status}\n${pretty(v.payload)}`);
        reportStatus(moduleId, methodName, r);
      } finally {
        t.client.close();
      }
    }),
  );

  program
    .command('monitor')
    .description('print every message routed to $upstream (module, properties, body), like az iot hub monitor-events')
    .option('--state-dir <dir>', 'simulator state folder', '.edge-sim')
    .option('--module <id>', 'only messages from this module')
    .option('--count <n>', 'stop after n messages', count)
    .option('--timeout <s>', 'stop after s seconds', positiveSeconds)
    .option('--eventhub', 'read through the Event Hub-compatible endpoint with @azure/event-hubs, as a back end does')
    .option('--consumer-group <name>', 'with --eventhub: the consumer group (default $Default)', parseConsumerGroup)
    .option('--from <position>', 'with --eventhub: earliest, latest (default) or an ISO 8601 enqueued time', parseFrom)
    .action(
      action(async (o: { stateDir: string; module?: string; count?: number; timeout?: number; eventhub?: boolean; consumerGroup?: string; from?: StartFrom }, cmd: Command) => {
        const g = cmd.optsWithGlobals() as GlobalOptions;
        if (!o.eventhub && (o.consumerGroup !== undefined || o.from !== undefined)) throw new EnclaveEdgeError('BAD_PARAMETERS', '--consumer-group and --from read the Event Hub-compatible endpoint: add --eventhub');
        const ac = new AbortController();
        const stop = (): void => ac.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        const timer = o.timeout ? setTimeout(stop, o.timeout * 1000) : undefined;
        const filter = o.module ? ` (module ${o.module})` : '';
        let events: AsyncIterable<UpstreamEvent>;
        let close: () => void = () => {};
        if (o.eventhub) {
          const { eventHubUpstream } = await import('./monitor-eventhub.js');
          events = eventHubUpstream({
            stateDir: o.stateDir,
            consumerGroup: o.consumerGroup ?? '$Default',
            from: o.from ?? 'latest',
            signal: ac.signal,
            onReady: (deviceId, d) => {
              if (!g.json) process.stderr.write(`monitoring $upstream of ${deviceId}${filter} through the Event Hub-compatible endpoint (${d}); Ctrl-C to stop\n`);
            },
            onWarning: warn,
          });
        } else {
          const t = await resolveTarget({ stateDir: o.stateDir });
          if (!g.json) process.stderr.write(`monitoring $upstream of ${t.deviceId}${filter}; Ctrl-C to stop\n`);
          events = t.client.streamUpstream({ signal: ac.signal, onDropped: (n) => warn(`the simulator dropped ${n} message(s): this monitor did not read fast enough`) });
          close = () => t.client.close();
        }
        let n = 0;
        try {
          for await (const e of events) {
            if (o.module && e.moduleId !== o.module) continue;
            process.stdout.write((g.json ? JSON.stringify(e) : formatEvent(e)) + '\n');
            if (o.count && ++n >= o.count) break;
          }
        } catch (err) {
          if (!ac.signal.aborted) throw err;
        } finally {
          if (timer) clearTimeout(timer);
          close();
        }
        process.exit(0);
      }),
    );

  const twin = program.command('twin').description('module twins');
  addTargetOptions(twin.command('show <module>').description('show a module twin (desired and reported properties)')).action(
    action(async (moduleId: string, o: TargetOptions, cmd: Command) => {
      const t = await resolveTarget(o);
      try {
        const tw = await t.client.getModuleTwin(t.deviceId, moduleId);
        emit(cmd.optsWithGlobals() as GlobalOptions, tw, (v) => pretty(v));
      } finally {
        t.client.close();
      }
    }),
  );
  addTargetOptions(
    twin
      .command('patch <module> <json>')
      .description('patch desired properties: `{"key": value}` (null removes), or a full `{"properties":{"desired":…},"tags":…}` patch'),
  ).action(
    action(async (moduleId: string, json: string, o: TargetOptions, cmd: Command) => {
      const patch = parseJsonArg(json, 'patch');
      if (!patch || typeof patch !== 'object' || Array.isArray(patch)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'the patch must be a JSON object');
      const body = 'properties' in patch || 'tags' in patch ? (patch as Record<string, unknown>) : { properties: { desired: patch } };
      const t = await resolveTarget(o);
      try {
        const tw = await t.client.updateModuleTwin(t.deviceId, moduleId, body);
        emit(cmd.optsWithGlobals() as GlobalOptions, tw, (v) => pretty((v as { properties?: unknown }).properties ?? v));
      } finally {
        t.client.close();
      }
    }),
  );
}

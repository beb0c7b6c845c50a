/** Settings of the sensor from its environment, with the original module's names and defaults. */
import { DEFAULT_SIMULATION, type SimulationParameters } from './simulation.js';

export interface SensorConfig {
  /** Messages to send; negative = unlimited. Env `MessageCount`, default 500. */
  messageCount: number;
  /** Delay between messages (ms). Env `MessageDelay` (TimeSpan "hh:mm:ss" or seconds) or `SendInterval` (seconds); default 5 s. */
  messageDelayMs: number;
  /** Desired property `SendData` (default true). */
  sendData: boolean;
  simulation: SimulationParameters;
}

/** .NET TimeSpan text ("00:00:05", "1.00:00:00", "00:00:00.5") or plain seconds → ms. */
export function parseTimeSpan(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?$/.exec(t);
  if (!m) return undefined;
  const [, d = '0', h, min, s = '0'] = m;
  return (((Number(d) * 24 + Number(h)) * 60 + Number(min)) * 60 + Number(s)) * 1000;
}

function num(env: Record<string, string | undefined>, key: string, dflt: number): number {
  const v = env[key];
  if (v === undefined || v.trim() === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${key}=${v} is not a number`);
  return n;
}

export function readSensorConfig(env: Record<string, string | undefined> = process.env): SensorConfig {
  let messageDelayMs = 5000;
  if (env.MessageDelay !== undefined) {
    const ms = parseTimeSpan(env.MessageDelay);
    if (ms === undefined) throw new Error(`MessageDelay=${env.MessageDelay} is not a time span (e.g. 00:00:05)`);
    messageDelayMs = ms;
  } else if (env.SendInterval !== undefined) {
    messageDelayMs = num(env, 'SendInterval', 5) * 1000;
  }
  return {
    messageCount: Math.trunc(num(env, 'MessageCount', 500)),
    messageDelayMs,
    sendData: true,
    simulation: {
      machineTempMin: num(env, 'machineTempMin', DEFAULT_SIMULATION.machineTempMin),
      machineTempMax: num(env, 'machineTempMax', DEFAULT_SIMULATION.machineTempMax),
      machinePressureMin: num(env, 'machinePressureMin', DEFAULT_SIMULATION.machinePressureMin),
      machinePressureMax: num(env, 'machinePressureMax', DEFAULT_SIMULATION.machinePressureMax),
      ambientTemp: num(env, 'ambientTemp', DEFAULT_SIMULATION.ambientTemp),
    },
  };
}

/** Desired properties the original reads: SendInterval (seconds) and SendData (bool). */
export function applyDesired(cfg: SensorConfig, desired: Record<string, unknown>): string[] {
  const changed: string[] = [];
  const si = desired.SendInterval;
  if (typeof si === 'number' && Number.isFinite(si) && si >= 0) {
    cfg.messageDelayMs = si * 1000;
    changed.push('SendInterval');
  }
  if (typeof desired.SendData === 'boolean') {
    cfg.sendData = desired.SendData;
    changed.push('SendData');
  }
  return changed;
}

/** A control message asks for a reset: {"command":"reset"} / {"command":0}, or an array of those. */
export function isResetCommand(body: unknown): boolean {
  const one = (c: unknown) => {
    const cmd = (c as { command?: unknown } | null)?.command;
    return cmd === 0 || (typeof cmd === 'string' && cmd.toLowerCase() === 'reset');
  };
  return Array.isArray(body) ? body.some(one) : one(body);
}

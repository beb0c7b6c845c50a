/** Level names: pino's, IoT Edge's `RuntimeLogLevel` spellings, and syslog severities. */
export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

const ALIASES: Readonly<Record<string, Level>> = {
  trace: 'trace', verbose: 'trace',
  debug: 'debug',
  info: 'info', information: 'info',
  warn: 'warn', warning: 'warn',
  error: 'error', err: 'error',
  fatal: 'fatal', critical: 'fatal',
};

/** Normalise a level name (case-insensitive); undefined when unknown. */
export function normalizeLevel(name: string | undefined | null): Level | undefined {
  if (!name) return undefined;
  const key = String(name).trim().toLowerCase();
  return Object.hasOwn(ALIASES, key) ? ALIASES[key] : undefined;
}

/** pino numeric level → syslog severity as IoT Edge's GetModuleLogs expects in `<N>`. */
export function syslogSeverity(pinoLevel: number): number {
  if (pinoLevel >= 60) return 2; // critical
  if (pinoLevel >= 50) return 3; // error
  if (pinoLevel >= 40) return 4; // warning
  if (pinoLevel >= 30) return 6; // informational
  return 7; // debug
}

export function shortLevel(pinoLevel: number): string {
  if (pinoLevel >= 60) return 'CRT';
  if (pinoLevel >= 50) return 'ERR';
  if (pinoLevel >= 40) return 'WRN';
  if (pinoLevel >= 30) return 'INF';
  if (pinoLevel >= 20) return 'DBG';
  return 'VRB';
}

/**
 * pino in the IoT Edge log format: `<N> 2026-01-01 12:00:00.000 +00:00 [INF] - message {fields}`,
 * where N is the syslog severity that `GetModuleLogs` filters on.
 */
import { pino, type Logger } from 'pino';
import { normalizeLevel, shortLevel, syslogSeverity, type Level } from './levels.js';
import { redact } from './redact.js';
import { escapeLogText } from './escape.js';

export interface Writable {
  write(line: string): unknown;
}

export interface LoggerOptions {
  /** Module or component name, printed on each line. */
  name: string;
  /** Explicit level; otherwise `RuntimeLogLevel` from the environment; otherwise info. */
  level?: string;
  /** Where lines go (default stdout). */
  destination?: Writable;
  env?: NodeJS.ProcessEnv;
}

function timestamp(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-01-01T12:00:00.000Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)} +00:00`;
}

/** Turns pino's JSON lines into IoT Edge lines. */
export function edgeFormatStream(out: Writable): Writable {
  return {
    write(chunk: string) {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(chunk) as Record<string, unknown>;
      } catch {
        return out.write(`<6> ${timestamp(Date.now())} [INF] - ${escapeLogText(chunk.trim())}\n`);
      }
      const { level, time, msg, name, pid: _pid, hostname: _host, ...fields } = rec;
      const lvl = typeof level === 'number' ? level : 30;
      const extra = Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
      const who = typeof name === 'string' ? `${name}: ` : '';
      const text = escapeLogText(`${who}${String(msg ?? '')}${extra}`);
      return out.write(`<${syslogSeverity(lvl)}> ${timestamp(typeof time === 'number' ? time : Date.now())} [${shortLevel(lvl)}] - ${text}\n`);
    },
  };
}

export function levelFromEnv(env: NodeJS.ProcessEnv = process.env): Level | undefined {
  return normalizeLevel(env.RuntimeLogLevel ?? env.RUNTIME_LOG_LEVEL);
}

export function createLogger(opts: LoggerOptions): Logger {
  const level = normalizeLevel(opts.level) ?? levelFromEnv(opts.env) ?? 'info';
  return pino(
    {
      name: opts.name,
      level,
      base: undefined,
      formatters: { log: (obj) => redact(obj) as Record<string, unknown> },
    },
    edgeFormatStream(opts.destination ?? process.stdout) as never,
  );
}

/** Apply a level from a desired property; unknown names are ignored (returns false). */
export function setLogLevel(logger: Logger, name: string | undefined): boolean {
  const level = normalizeLevel(name);
  if (!level) return false;
  logger.level = level;
  return true;
}

export type { Logger };

/**
 * The recent output of every module (and of the runtime itself, as edgeAgent / edgeHub), kept in
 * memory so `$edgeAgent` GetModuleLogs can answer as `docker logs` does on a device. Bounded per
 * module by lines and bytes; the oldest lines go first.
 */

export interface LogLine {
  /** Milliseconds since the epoch, when the line arrived. */
  at: number;
  stream: 'stdout' | 'stderr';
  text: string;
}

export interface LogBufferLimits {
  maxLines: number;
  maxBytes: number;
}

export const DEFAULT_LOG_LIMITS: LogBufferLimits = { maxLines: 10_000, maxBytes: 4 * 1024 * 1024 };

export class ModuleLogBuffer {
  private readonly modules = new Map<string, { lines: LogLine[]; bytes: number }>();
  private readonly limits: LogBufferLimits;

  constructor(limits: Partial<LogBufferLimits> = {}) {
    this.limits = { ...DEFAULT_LOG_LIMITS, ...limits };
  }

  add(moduleId: string, stream: 'stdout' | 'stderr', text: string, at = Date.now()): void {
    let m = this.modules.get(moduleId);
    if (!m) {
      m = { lines: [], bytes: 0 };
      this.modules.set(moduleId, m);
    }
    m.lines.push({ at, stream, text });
    m.bytes += text.length;
    let drop = 0;
    while (m.lines.length - drop > this.limits.maxLines || (m.bytes > this.limits.maxBytes && m.lines.length - drop > 1)) {
      m.bytes -= m.lines[drop]!.text.length;
      drop++;
    }
    if (drop) m.lines.splice(0, drop);
  }

  /** Module names with any output, in first-seen order. */
  names(): string[] {
    return [...this.modules.keys()];
  }

  lines(moduleId: string): readonly LogLine[] {
    return this.modules.get(moduleId)?.lines ?? [];
  }
}

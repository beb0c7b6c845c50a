/**
 * Caps the distinct (ta, command) label pairs metrics may create. Callers choose command (and,
 * at host-module, TA) names, so without a cap every new name is a new Prometheus series that
 * lives forever: 100k names cost ~140 MB of heap and a 20 s scrape. Past the cap, new pairs are
 * counted under `_other`.
 */
export const OTHER_LABEL = '_other';

export class LabelCap {
  private readonly seen = new Set<string>();

  constructor(readonly max = 1000) {}

  labels(ta: string, command: string): { ta: string; command: string } {
    const key = `${ta}\u0000${command}`;
    if (this.seen.has(key)) return { ta, command };
    if (this.seen.size < this.max) {
      this.seen.add(key);
      return { ta, command };
    }
    return { ta: OTHER_LABEL, command: OTHER_LABEL };
  }
}

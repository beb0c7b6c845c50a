/** Map a debug TA's stack frames (ta:///<name>.js:L:C) back to TypeScript lines with the bundle's source map. */
import { SourceMap } from 'node:module';

const FRAME = /ta:\/\/\/([A-Za-z0-9-]+)\.js:(\d+):(\d+)/;

export class StackMapper {
  private readonly sm: SourceMap | undefined;

  constructor(sourceMap: Uint8Array | undefined, private readonly wrapperLines: number) {
    if (!sourceMap) return;
    try {
      this.sm = new SourceMap(JSON.parse(new TextDecoder().decode(sourceMap)));
    } catch {
      this.sm = undefined; // a broken map only costs mapping, never the call
    }
  }

  /** Keep the message line and the TA's own frames (mapped when possible); drop runtime frames. */
  map(stack: string): string {
    const lines = stack.split('\n');
    const out: string[] = [];
    let inFrames = false;
    for (const line of lines) {
      const isFrame = /^\s+at /.test(line);
      if (!isFrame) {
        if (!inFrames) out.push(line);
        continue;
      }
      inFrames = true;
      const m = FRAME.exec(line);
      if (!m) continue;
      const genLine = Number(m[2]) - 1 - this.wrapperLines;
      const genCol = Number(m[3]) - 1;
      const entry = this.sm && genLine >= 0 ? (this.sm.findEntry(genLine, genCol) as { originalSource?: string; originalLine?: number; originalColumn?: number }) : undefined;
      if (entry && entry.originalSource !== undefined && entry.originalLine !== undefined) {
        const src = entry.originalSource.replace(/^(webpack|file):\/\//, '');
        out.push(line.replace(m[0], `${src}:${entry.originalLine + 1}:${(entry.originalColumn ?? 0) + 1}`));
      } else {
        out.push(line.replace(m[0], `ta:///${m[1]}.js:${genLine + 1}:${genCol + 1}`));
      }
    }
    return out.join('\n');
  }
}

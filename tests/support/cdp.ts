/**
 * A small Chrome DevTools Protocol client over the inspector's WebSocket (the `ws` package):
 * commands by id, events kept in order so a test can wait for the next one it expects.
 */
import WebSocket from 'ws';

export interface CdpEvent {
  method: string;
  params: Record<string, unknown>;
}

export class Cdp {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void; method: string }>();
  private readonly events: CdpEvent[] = [];
  private waiter: (() => void) | undefined;
  private closed: Error | undefined;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: WebSocket.RawData) => {
      const m = JSON.parse(String(data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; params?: Record<string, unknown> };
      if (m.id !== undefined) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) p?.reject(new Error(`${p.method}: ${m.error.message}`));
        else p?.resolve(m.result ?? {});
      } else if (m.method) {
        this.events.push({ method: m.method, params: m.params ?? {} });
        this.waiter?.();
      }
    });
    ws.on('close', () => {
      this.closed = new Error('the inspector closed the connection');
      for (const p of this.pending.values()) p.reject(this.closed);
      this.pending.clear();
      this.waiter?.();
    });
  }

  static connect(url: string): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(new Cdp(ws)));
      ws.once('error', reject);
    });
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Every event seen so far (oldest first). */
  seen(method: string): CdpEvent[] {
    return this.events.filter((e) => e.method === method);
  }

  /** The next event of this kind not yet taken (events are taken in order). */
  async next(method: string, match: (p: Record<string, unknown>) => boolean = () => true): Promise<CdpEvent> {
    for (;;) {
      const i = this.events.findIndex((e) => e.method === method && !taken.has(e) && match(e.params));
      if (i >= 0) {
        taken.add(this.events[i]!);
        return this.events[i]!;
      }
      if (this.closed) throw new Error(`waiting for ${method}: ${this.closed.message}`);
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  close(): void {
    this.ws.close();
  }
}

const taken = new WeakSet<CdpEvent>();

import { defineTA, TAError, utf8Decode, utf8Encode, type TAContext, type Value } from '@enclave-edge/ta-sdk';

/**
 * Secrets in sealed storage. Values are strings or binary (Uint8Array); the stored form is one
 * tag byte (0 = UTF-8 string, 1 = binary) then the bytes. Values are never logged.
 */
const PREFIX = 'kv.';
const NAME = /^[A-Za-z0-9._-]{1,120}$/;
const MAX_VALUE_BYTES = 64 * 1024;

function nameOf(params: Value): string {
  const name = (params as { name?: unknown } | null)?.name;
  if (typeof name !== 'string' || !NAME.test(name)) throw new TAError('BAD_PARAMETERS', 'params.name must be 1..120 chars of [A-Za-z0-9._-]');
  return name;
}

function encode(value: unknown): Uint8Array {
  let tag: number;
  let body: Uint8Array;
  if (typeof value === 'string') (tag = 0), (body = utf8Encode(value));
  else if (value instanceof Uint8Array) (tag = 1), (body = value);
  else throw new TAError('BAD_PARAMETERS', 'params.value must be a string or binary');
  if (body.byteLength > MAX_VALUE_BYTES) throw new TAError('BAD_PARAMETERS', `params.value is larger than ${MAX_VALUE_BYTES} bytes`);
  const out = new Uint8Array(body.byteLength + 1);
  out[0] = tag;
  out.set(body, 1);
  return out;
}

function decode(stored: Uint8Array): Value {
  return stored[0] === 1 ? stored.slice(1) : utf8Decode(stored.subarray(1));
}

async function list(ctx: TAContext, prefix: string): Promise<string[]> {
  return (await ctx.storage.list(PREFIX + prefix)).map((k) => k.slice(PREFIX.length));
}

export default defineTA({
  commands: {
    async put(ctx, params) {
      const name = nameOf(params);
      const existed = (await ctx.storage.get(PREFIX + name)) !== undefined;
      await ctx.storage.put(PREFIX + name, encode((params as { value?: unknown }).value));
      ctx.log.info('secret stored', { name });
      return { name, created: !existed };
    },
    async get(ctx, params) {
      const name = nameOf(params);
      const stored = await ctx.storage.get(PREFIX + name);
      if (!stored) throw new TAError('ITEM_NOT_FOUND', `no secret named "${name}"`);
      return { name, value: decode(stored) };
    },
    async delete(ctx, params) {
      const name = nameOf(params);
      const deleted = await ctx.storage.delete(PREFIX + name);
      if (deleted) ctx.log.info('secret deleted', { name });
      return { name, deleted };
    },
    async list(ctx, params) {
      const prefix = (params as { prefix?: unknown } | null)?.prefix ?? '';
      if (typeof prefix !== 'string' || (prefix && !NAME.test(prefix))) throw new TAError('BAD_PARAMETERS', 'params.prefix must be chars of [A-Za-z0-9._-]');
      return { names: await list(ctx, prefix) };
    },
  },
});

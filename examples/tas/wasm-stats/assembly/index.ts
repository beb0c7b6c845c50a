// wasm-stats: a Wasm TA in AssemblyScript following packages/ta-sdk/WASM-ABI.md.
// Commands: "ping" → "pong"; "stats" with params [numbers…] or {"values":[numbers…]}
// → {"count","min","max","mean","stddev"} (population standard deviation).

@external("ta", "result")
declare function ta_result(ptr: usize, len: i32): void;

@external("ta", "log")
declare function ta_log(level: i32, ptr: usize, len: i32): void;

const OK: i32 = 0;
const BAD_PARAMETERS: i32 = 1;
const ITEM_NOT_FOUND: i32 = 2;

// The current input buffer; kept reachable (so not collected) until the next ta_alloc.
let input: ArrayBuffer = new ArrayBuffer(0);

export function ta_alloc(len: i32): usize {
  input = new ArrayBuffer(len);
  return changetype<usize>(input);
}

function reply(text: string): void {
  const buf = String.UTF8.encode(text);
  ta_result(changetype<usize>(buf), buf.byteLength);
}

function log(level: i32, text: string): void {
  const buf = String.UTF8.encode(text);
  ta_log(level, changetype<usize>(buf), buf.byteLength);
}

function isNumberChar(c: i32): bool {
  return (c >= 48 && c <= 57) || c == 45 || c == 43 || c == 46 || c == 101 || c == 69; // 0-9 - + . e E
}

function isSpace(c: i32): bool {
  return c == 32 || c == 9 || c == 10 || c == 13;
}

// Parses the first JSON array in `text` as numbers; null if it is not an array of finite numbers.
function parseNumbers(text: string): Array<f64> | null {
  const open = text.indexOf("[");
  const close = text.lastIndexOf("]");
  if (open < 0 || close < open) return null;
  const body = text.substring(open + 1, close);
  if (body.indexOf("[") >= 0) return null;
  const out = new Array<f64>();
  if (body.trim().length == 0) return out;
  const parts = body.split(",");
  for (let i = 0; i < parts.length; i++) {
    const token = parts[i].trim();
    if (token.length == 0) return null;
    for (let j = 0; j < token.length; j++) {
      const c = token.charCodeAt(j);
      if (!isNumberChar(c) || isSpace(c)) return null;
    }
    const value = F64.parseFloat(token);
    if (!isFinite(value)) return null;
    out.push(value);
  }
  return out;
}

function stats(params: string): i32 {
  const values = parseNumbers(params);
  if (values == null) {
    reply("params must be a JSON array of finite numbers, or {\"values\": [...]}");
    return BAD_PARAMETERS;
  }
  const n = values.length;
  if (n == 0) {
    reply("params must contain at least one number");
    return BAD_PARAMETERS;
  }
  let min = values[0];
  let max = values[0];
  let sum: f64 = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  const mean = sum / <f64>n;
  let squares: f64 = 0;
  for (let i = 0; i < n; i++) {
    const d = values[i] - mean;
    squares += d * d;
  }
  const stddev = Math.sqrt(squares / <f64>n);
  if (!isFinite(mean) || !isFinite(stddev)) {
    reply("the numbers are too large to summarise");
    return BAD_PARAMETERS;
  }
  reply(
    "{\"count\":" + n.toString() +
    ",\"min\":" + min.toString() +
    ",\"max\":" + max.toString() +
    ",\"mean\":" + mean.toString() +
    ",\"stddev\":" + stddev.toString() + "}",
  );
  return OK;
}

export function ta_create(): void {
  log(1, "wasm-stats ready");
}

export function ta_invoke(cmdPtr: usize, cmdLen: i32, paramsPtr: usize, paramsLen: i32): i32 {
  const command = String.UTF8.decodeUnsafe(cmdPtr, cmdLen);
  const params = String.UTF8.decodeUnsafe(paramsPtr, paramsLen);
  if (command == "ping") {
    reply("\"pong\"");
    return OK;
  }
  if (command == "stats") return stats(params);
  reply("unknown command: " + command);
  return ITEM_NOT_FOUND;
}

/**
 * Text from outside (TA log messages, client and module ids, route and method names) is data in
 * a log line: control characters must not end the line, rewrite the terminal or reorder what a
 * reader sees. Every logger path writes through this one function.
 */
// C0 (incl. \n \r \t ESC), DEL, C1 (incl. NEL), U+2028/2029 and the bidirectional overrides.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const SHORT: ReadonlyMap<string, string> = new Map([
  ['\n', '\\n'],
  ['\r', '\\r'],
  ['\t', '\\t'],
]);

function escapeOne(c: string): string {
  const short = SHORT.get(c);
  if (short) return short;
  // \uXXXX also keeps a JSON fields object valid JSON.
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** `text` with every control character written as a visible escape, so it stays on one line. */
export function escapeLogText(text: string): string {
  return text.replace(CONTROL, escapeOne);
}

/** If-Match as IoT Hub reads it (azure-iothub quotes every etag, `*` too). */
import { HubError } from '../hub/hub-error.js';

export const preconditionFailed = (what: string): HubError => new HubError(412, 412002, `Precondition failed: the etag given for ${what} is not the current one.`, 'CONFLICT');

/** The etag without quotes or a weak prefix; undefined when the header is absent. */
export function normalizeIfMatch(ifMatch: string | undefined): string | undefined {
  return ifMatch === undefined ? undefined : ifMatch.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/** Absent or `*` matches anything; otherwise the etag must be the current one (412 naming `what`). */
export function checkIfMatch(ifMatch: string | undefined, etag: string, what: string): void {
  const m = normalizeIfMatch(ifMatch);
  if (m === undefined || m === '*') return;
  if (m !== etag) throw preconditionFailed(what);
}

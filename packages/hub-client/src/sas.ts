/** Service SAS tokens: HMAC-SHA256 over `<url-encoded resource>\n<expiry>` with the policy key. */
import { createHmac } from 'node:crypto';

const strict = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

export function serviceSas(resource: string, keyName: string, keyBase64: string, ttlSecs = 3600): string {
  const sr = strict(resource);
  const se = Math.floor(Date.now() / 1000) + ttlSecs;
  const sig = createHmac('sha256', Buffer.from(keyBase64, 'base64')).update(`${sr}\n${se}`).digest('base64');
  return `SharedAccessSignature sr=${sr}&sig=${strict(sig)}&se=${se}&skn=${strict(keyName)}`;
}

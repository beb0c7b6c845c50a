/** `HostName=…;SharedAccessKeyName=…;SharedAccessKey=…` (IoT Hub service connection strings). */
import { EnclaveEdgeError } from '@enclave-edge/errors';

export interface ServiceConnectionString {
  hostName: string;
  sharedAccessKeyName: string;
  sharedAccessKey: string;
}

export function parseServiceConnectionString(cs: string): ServiceConnectionString {
  const fields = new Map<string, string>();
  for (const part of cs.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const hostName = fields.get('HostName');
  const sharedAccessKeyName = fields.get('SharedAccessKeyName');
  const sharedAccessKey = fields.get('SharedAccessKey');
  const missing = [!hostName && 'HostName', !sharedAccessKeyName && 'SharedAccessKeyName', !sharedAccessKey && 'SharedAccessKey'].filter(Boolean);
  if (missing.length) throw new EnclaveEdgeError('BAD_PARAMETERS', `connection string lacks ${missing.join(', ')} (expected an IoT Hub policy connection string, e.g. iothubowner)`);
  return { hostName: hostName!, sharedAccessKeyName: sharedAccessKeyName!, sharedAccessKey: sharedAccessKey! };
}

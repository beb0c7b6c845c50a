/** A listen failure on a port the caller asked for, as a taxonomy error naming the port. */
import { EnclaveEdgeError } from '@enclave-edge/errors';

export type Listener = 'mqtt' | 'https' | 'amqp';

const LABEL: Record<Listener, string> = { mqtt: 'MQTT', https: 'HTTPS', amqp: 'AMQP' };

/** EADDRINUSE → CONFLICT, EACCES → ACCESS_DENIED (a port below 1024 without privileges); anything else unchanged. */
export function listenError(err: unknown, listener: Listener, port: number): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const detail = { listener, port };
  if (code === 'EADDRINUSE') return new EnclaveEdgeError('CONFLICT', `${LABEL[listener]} port ${port} is in use`, { cause: err, detail });
  if (code === 'EACCES') return new EnclaveEdgeError('ACCESS_DENIED', `${LABEL[listener]} port ${port} may not be used by this user (ports below 1024 need privileges)`, { cause: err, detail });
  return err;
}

/**
 * What to tell a developer whose simulator could not have a port that official clients dial
 * without asking (443 for azure-iothub, module-to-module methods, MQTT and AMQP over WebSockets
 * and the Event Hub-compatible endpoint over WebSockets): the one-time fix, spelled out to be pasted.
 */
import { realpathSync } from 'node:fs';

/** `workaround`: what a client that can be given another port does meanwhile. */
export function privilegedPortAdvice(port: number, code: string, host: string, fallbackPort: number, clients: string, workaround?: string): string {
  const lines = [`port ${port} on ${host} is not available (${code}); listening on ${fallbackPort} instead.`, `${clients} always dial ${port} and cannot reach ${fallbackPort}.`];
  if (workaround) lines.push(workaround);
  if (code === 'EADDRINUSE') {
    lines.push(`Another process holds ${host}:${port} (another simulator?). Stop it, or give this simulator its own loopback address: sim up --host 127.0.0.2`);
  } else if (process.platform === 'linux') {
    let node = process.execPath;
    try {
      node = realpathSync(node);
    } catch {
      /* keep the path as given */
    }
    lines.push(
      `Ports below 1024 need privileges on Linux. Run once (either line), then start the simulator again:`,
      `  sudo sysctl -w net.ipv4.ip_unprivileged_port_start=${port} && echo 'net.ipv4.ip_unprivileged_port_start=${port}' | sudo tee /etc/sysctl.d/60-edge-sim.conf`,
      `  sudo setcap cap_net_bind_service=+ep ${node}`,
      `(the first lets every user bind ports from ${port} up and survives reboots; the second only this node binary, until node is reinstalled)`,
    );
  } else {
    lines.push(`Run the simulator as a user allowed to bind ports below 1024.`);
  }
  return lines.join('\n');
}

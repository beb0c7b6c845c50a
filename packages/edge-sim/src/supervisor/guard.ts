/**
 * Preloaded into Node children (`--import`) by the Supervisor: if the supervising process dies
 * without stopping us (even SIGKILL), the IPC channel closes and this child ends its own process
 * group, so no module outlives the simulator.
 */
if (process.channel) {
  process.channel.unref(); // the channel must not keep an idle child alive
  process.on('disconnect', () => {
    try {
      process.kill(-process.pid, 'SIGTERM');
    } catch {
      process.kill(process.pid, 'SIGTERM');
    }
    // Whatever ignored SIGTERM (us included) goes for good shortly after.
    setTimeout(() => {
      try {
        process.kill(-process.pid, 'SIGKILL');
      } finally {
        process.exit(1);
      }
    }, 2000).unref();
  });
}
export {};

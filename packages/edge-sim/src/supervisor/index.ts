/**
 * Module process supervisor (what edgeAgent does for containers):
 *
 *   const sup = new Supervisor({ output: process.stdout });
 *   sup.start('tempSensor', { command: process.execPath, args: [entry], env, restartPolicy: 'always' });
 *   sup.on('exit', (e) => …); sup.status(); await sup.stopAll();
 *
 * Restart policies: always / on-unhealthy (same here) restart on any exit, on-failure on a
 * non-zero code or a signal, never not at all; exponential back-off (1 s doubling to 60 s, reset
 * after a 10 s healthy run). Output lines are prefixed `[name] `. Children run in their own
 * process groups, killed as a group on stop and on process exit; Node children also die when
 * the supervising process is killed outright (IPC guard).
 */
export { Supervisor } from './supervisor.js';
export type {
  BackoffOptions,
  ChildState,
  ChildStatus,
  ExitEvent,
  RestartPolicy,
  StartOptions,
  SupervisorEvents,
  SupervisorOptions,
} from './types.js';

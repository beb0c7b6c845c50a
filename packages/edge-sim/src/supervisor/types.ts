/** Public types of the module supervisor. */
export type RestartPolicy = 'always' | 'on-failure' | 'on-unhealthy' | 'never';

export interface BackoffOptions {
  /** Delay before the first restart after a crash (ms). Default 1000. */
  initialMs?: number;
  /** Cap on the delay (ms). Default 60000. */
  maxMs?: number;
  /** A run at least this long counts as healthy and resets the back-off (ms). Default 10000. */
  resetAfterMs?: number;
}

export interface SupervisorOptions {
  /** Supervisor's own messages (restarts, back-off, give-ups). Default: to `output` as `[supervisor] …`. */
  log?: (line: string) => void;
  /** Where children's prefixed output lines go. Default process.stdout. */
  output?: NodeJS.WritableStream;
  /** Colour the `[name]` prefixes. Default: when output is a TTY. */
  color?: boolean;
  /** SIGTERM → SIGKILL grace period on stop (ms). Default 5000. */
  graceMs?: number;
  backoff?: BackoffOptions;
}

export interface StartOptions {
  command: string;
  args?: string[];
  /** The child's whole environment (nothing is inherited unless you pass it). */
  env?: Record<string, string>;
  cwd?: string;
  /** Default 'always'. 'on-unhealthy' acts as 'always' (there are no health probes). */
  restartPolicy?: RestartPolicy;
}

export type ChildState = 'running' | 'backoff' | 'stopping' | 'stopped' | 'exited';

export interface ChildStatus {
  name: string;
  state: ChildState;
  pid?: number;
  /** Restarts done by the restart policy since start(). */
  restarts: number;
  restartPolicy: RestartPolicy;
  lastExit?: { code: number | null; signal: NodeJS.Signals | null; at: string };
  /** When the current (or last) process was started. */
  startedAt?: string;
  /** When the restart policy (or restart()) last started it again. */
  lastRestartAt?: string;
}

export interface ExitEvent {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when stop()/stopAll() asked for it. */
  requested: boolean;
  willRestart: boolean;
}

export interface SupervisorEvents {
  spawn: [{ name: string; pid: number }];
  exit: [ExitEvent];
  backoff: [{ name: string; delayMs: number; restarts: number }];
  restart: [{ name: string; restarts: number }];
  line: [{ name: string; stream: 'stdout' | 'stderr'; line: string }];
  spawnError: [{ name: string; error: Error }];
}

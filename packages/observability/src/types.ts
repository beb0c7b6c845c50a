export interface InvocationStatsRow {
  ta: string;
  command: string;
  count: number;
  errors: number;
  p50Ms: number;
  p95Ms: number;
}

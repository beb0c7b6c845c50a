/** `npm run bench [suite…]`: runs bench/suites/*.bench.ts, prints a table, writes bench/results/latest.json. */
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';
import os from 'node:os';
import type { BenchSuite, Comparison } from './lib.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(join(here, 'suites'))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();

const results: Comparison[] = [];
const failures: string[] = [];
for (const file of files) {
  const suite = (await import(pathToFileURL(join(here, 'suites', file)).href)).default as BenchSuite;
  process.stdout.write(`\n# ${suite.name}\n`);
  try {
    await suite.run({
      compare(c) {
        const ratio = c.ratio ?? c.subject.p50Us / c.baseline.p50Us;
        const full: Comparison = { suite: suite.name, ...c, ratio, targets: c.targets ?? [] };
        results.push(full);
        printRow(full);
      },
    });
  } catch (err) {
    failures.push(`${suite.name}: ${(err as Error).stack ?? err}`);
    process.stdout.write(`  suite failed: ${(err as Error).message}\n`);
  }
}

function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

function printRow(c: Comparison): void {
  const row = (m: Comparison['subject']) =>
    `    ${m.label.padEnd(44)} p50 ${fmt(m.p50Us).padStart(9)} µs  p99 ${fmt(m.p99Us).padStart(9)} µs  ${fmt(m.opsPerSec, 0).padStart(9)} ops/s`;
  process.stdout.write(`  ${c.name}  (ratio ${fmt(c.ratio, 2)}×)\n${row(c.subject)}\n${row(c.baseline)}  [baseline]\n`);
  for (const t of c.targets) process.stdout.write(`    ${t.pass ? 'PASS' : 'MISS'}  ${t.description}\n`);
  if (c.notes) process.stdout.write(`    note: ${c.notes}\n`);
}

mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(
  join(here, 'results', 'latest.json'),
  JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, results, failures }, null, 2) + '\n',
);
const missed = results.flatMap((r) => r.targets.filter((t) => !t.pass).map((t) => `${r.suite}/${r.name}: ${t.description}`));
process.stdout.write(`\n${results.length} comparisons, ${missed.length} targets missed, ${failures.length} suites failed; written bench/results/latest.json\n`);
for (const m of missed) process.stdout.write(`  MISS ${m}\n`);
process.exit(failures.length ? 1 : 0);

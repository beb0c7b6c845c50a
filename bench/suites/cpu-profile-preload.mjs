// Bench-only preload (`--import`): Node 20 refuses --cpu-prof in NODE_OPTIONS, so a module
// process started by the simulator profiles itself through the inspector and writes a
// .cpuprofile into BENCH_CPU_PROF when it exits.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROF;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // The main-thread session answers synchronously, so this completes inside 'exit'.
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(join(dir, `${process.env.IOTEDGE_MODULEID ?? 'node'}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}

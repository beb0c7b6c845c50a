import { Command } from 'commander';
import { commandGroups } from './commands/index.js';

const program = new Command()
  .name('enclave-edge')
  .description('Trusted applications for Azure IoT Edge: build, sign, run, attest, simulate')
  .option('--json', 'machine-readable output')
  .showHelpAfterError()
  .exitOverride((err) => {
    // commander already printed help or the usage error; keep its exit code.
    process.exit(err.exitCode);
  });

for (const register of commandGroups) register(program);

await program.parseAsync(process.argv);

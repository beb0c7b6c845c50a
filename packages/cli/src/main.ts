/** The `enclave-edge` command: builds the program with only the named group loaded, then runs it. */
import { buildProgram, commandNamed } from './program.js';
import { EXIT, fail, wantsJson } from './output.js';

const args = process.argv.slice(2);
const globals = { json: wantsJson(args) };

// Anything that escapes an action (a late socket error, a rejected promise) still ends in one line.
process.on('uncaughtException', (err) => fail(globals, err));
process.on('unhandledRejection', (err) => fail(globals, err));

let parsing = false;
try {
  const program = await buildProgram({ load: commandNamed(args) });
  parsing = true;
  await program.parseAsync(process.argv);
} catch (err) {
  // Actions report their own failures; what arrives here is a group that failed to load, or an
  // option value rejected while parsing (a usage error).
  fail(globals, err, parsing ? EXIT.USAGE : EXIT.FAILED);
}

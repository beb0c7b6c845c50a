/**
 * The commander program: global options, the error conventions for commander's own usage
 * errors, and the command groups — all of them (`load: 'all'`, for tests and docs) or only the
 * one a command line names (the others are listed in help without being imported).
 */
import { readFileSync } from 'node:fs';
import { Command, Help, type CommanderError } from 'commander';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { commandGroups } from './commands/index.js';
import { EXIT, fail, wantsJson } from './output.js';

export const PROGRAM_NAME = 'enclave-edge';

function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export interface BuildOptions {
  /** 'all', or the top-level command whose group to import (see commandNamed). Default: none. */
  load?: 'all' | string | undefined;
}

/** The top-level command a command line names: its first operand (`help x` names x). */
export function commandNamed(args: readonly string[]): string | undefined {
  const operands: string[] = [];
  for (const a of args) {
    if (a === '--') break;
    if (!a.startsWith('-')) operands.push(a);
    if (operands.length === 2) break;
  }
  return operands[0] === 'help' ? operands[1] : operands[0];
}

/** `enclave-edge ta sign`, for messages. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Commander's usage errors, as one `enclave-edge: BAD_PARAMETERS: …` line with exit status 2. */
function onCommanderExit(this: Command, err: CommanderError): never {
  if (err.exitCode === 0) process.exit(EXIT.OK); // --help, help <command>
  const path = commandPath(this);
  const given = this.args.filter((a) => a !== 'help');
  const message =
    err.code === 'commander.help'
      ? given.length > 0
        ? `unknown command '${given[0]}'; see ${path} --help` // `help <unknown>`
        : `missing command: ${path} <${this.commands.map((c) => c.name()).filter((n) => n !== 'help').join('|')}>; see ${path} --help`
      : `${err.message.replace(/^error: /, '').trim().split(/\s*\n\s*/).join(' ').replace(/\.$/, '')}; see ${path} --help`;
  fail({ json: wantsJson(process.argv.slice(2)) }, new EnclaveEdgeError('BAD_PARAMETERS', message), EXIT.USAGE);
}

export async function buildProgram(options: BuildOptions = {}): Promise<Command> {
  const stubTerms = new WeakMap<Command, string>();
  const program = new Command()
    .name(PROGRAM_NAME)
    .description('Trusted applications for Azure IoT Edge: build, sign, run, attest, simulate')
    .version(version(), '-V, --version', 'print the version')
    .option('--json', 'machine-readable output: one JSON document on stdout; on failure {"error":{"code","message"}}')
    .configureHelp({
      showGlobalOptions: true, // every command's --help mentions --json
      // A group that was not imported is listed with the term its real registration would show.
      subcommandTerm(this: Help, cmd: Command): string {
        return stubTerms.get(cmd) ?? Help.prototype.subcommandTerm.call(this, cmd);
      },
    })
    // Commander's own messages (and help shown for an error) are replaced by our one line.
    .configureOutput({ writeErr: () => {}, outputError: () => {} })
    .exitOverride(onCommanderExit);

  for (const group of commandGroups) {
    const names = Object.keys(group.commands);
    if (options.load === 'all' || (options.load !== undefined && names.includes(options.load))) {
      const { register } = await group.load();
      register(program);
      continue;
    }
    for (const [name, c] of Object.entries(group.commands)) {
      const stub = program
        .command(name)
        .description(c.description)
        .allowUnknownOption()
        .allowExcessArguments()
        .action(() => {
          throw new EnclaveEdgeError('INTERNAL', `command group ${group.file} was not loaded for "${name}"`);
        });
      stubTerms.set(stub, c.term);
    }
  }
  return program;
}

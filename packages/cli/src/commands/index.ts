/** Each command group lives in its own file and registers itself here. */
import type { Command } from 'commander';

export type RegisterCommands = (program: Command) => void;

export const commandGroups: RegisterCommands[] = [];

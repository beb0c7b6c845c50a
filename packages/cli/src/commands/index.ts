/** Each command group lives in its own file and registers itself here. */
import type { Command } from 'commander';
import { register as registerSim } from './sim.js';
import { register as registerHub } from './hub.js';
import { register as registerTa } from './ta.js';
import { register as registerDevice } from './device.js';
import { register as registerVerify } from './verify.js';
import { register as registerDeploy } from './deploy.js';

export type RegisterCommands = (program: Command) => void;

export const commandGroups: RegisterCommands[] = [registerSim, registerHub, registerTa, registerDevice, registerVerify, registerDeploy];

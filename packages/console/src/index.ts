export { startConsole, type ConsoleHandle, type ConsoleOptions } from './server.js';
export { mergePatch, validateDesiredPatch } from './twin-patch.js';

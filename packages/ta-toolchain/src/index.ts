export { buildTA, type BuildOptions, type BuildResult } from './build.js';
export { newTA, type NewTAResult } from './scaffold.js';
export { loadProject, projectSchema, PROJECT_FILE, DEFAULT_LIMITS, DEFAULT_SESSION, type TAProject, type LoadedProject } from './project.js';
export { checkWasmAbi, ALLOWED_WASM_IMPORTS, REQUIRED_WASM_EXPORTS } from './build-wasm.js';

// The official IoT Edge schemas, vendored unchanged in ./schemas (source and license: schemas/README.md).
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvModule from 'ajv-draft-04';

// A CommonJS package: under NodeNext the default import is its module.exports, whose `default` is the class.
const Ajv = AjvModule.default;

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const schemaDir = resolve(dirname(fileURLToPath(import.meta.url)), 'schemas');

export function loadValidators() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  for (const f of readdirSync(schemaDir).filter((n) => n.endsWith('.json'))) {
    ajv.addSchema(JSON.parse(readFileSync(join(schemaDir, f), 'utf8')));
  }
  const get = (id: string) => {
    const v = ajv.getSchema(`https://json.schemastore.org/${id}`);
    if (!v) throw new Error(`schema ${id} not found in ${schemaDir}`);
    return v;
  };
  return { template: get('azure-iot-edge-deployment-template-4.0.json'), deployment: get('azure-iot-edge-deployment-2.0.json'), ajv };
}

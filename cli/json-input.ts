// Reading a user's JSON file: one line on failure naming the file, and the JSON path from the schema.
import { readFileSync } from 'node:fs';
import { validate, type SchemaName } from '../base/schemas.js';
import { UsageError } from '../base/errors.js';

export function readInputFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UsageError(`${path}: ${err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.message}`);
  }
}

export function readJsonFile(path: string, schema?: SchemaName): unknown {
  let json: unknown;
  try {
    json = JSON.parse(readInputFile(path).toString('utf8'));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${path}: not JSON: ${(e as Error).message}`);
  }
  if (schema) {
    const problems = validate(schema, json);
    if (problems.length) throw new UsageError(`${path}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
  }
  return json;
}

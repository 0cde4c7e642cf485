// The other end of nvmx-target/1: any in-process Target served over a line stream. `serve` uses it
// for the reference model; tests use it for targets that misbehave on purpose.
import type { Readable, Writable } from 'node:stream';
import { validateDef } from '../../base/schemas.js';
import type { Target, TargetResult } from '../target.js';
import { METHOD_OF_OP, PROTOCOL, serverCodec, type HelloMessage, type OpMethod, type WireRequest, type WireResponse } from './wire.js';

export function helloOf(target: Target): HelloMessage {
  const { name, version, profile } = target.identity;
  return {
    type: 'hello',
    protocol: PROTOCOL,
    name,
    version,
    ...(profile !== undefined ? { profile } : {}),
    groups: [...target.groups],
    // what answer() reads; the runner sends packed vmcs12-access, and zero runs in request bytes,
    // only to a target that says so
    features: ['packed-access', 'zero-runs'],
    ...(target.unsupportedReasons ? { unsupported: target.unsupportedReasons as Record<string, string> } : {}),
    ...(target.vmm ? { vmm: target.vmm } : {}),
  };
}

export async function answer(target: Target, req: WireRequest): Promise<WireResponse> {
  const method: OpMethod | undefined = METHOD_OF_OP.get(req.op);
  if (method === undefined) return { id: req.id, status: 'unsupported', reason: `unknown op "${req.op}"` };
  const bad = validateDef('target-protocol', `args-${req.op}`, req.args);
  if (bad.length) return { id: req.id, status: 'error', reason: `bad ${req.op} args: ${bad[0]}` };
  const codec = serverCodec(method, req.args) as unknown as { decodeArgs(w: unknown): unknown[]; encodeValue(v: unknown): unknown };
  let args: unknown[];
  try {
    args = codec.decodeArgs(req.args);
  } catch (e) {
    return { id: req.id, status: 'error', reason: `bad ${req.op} args: ${e instanceof Error ? e.message : String(e)}` };
  }
  try {
    const r = await (target[method] as (...a: unknown[]) => Promise<TargetResult<unknown>>).apply(target, args);
    if (r.status === 'ok') return { id: req.id, status: 'ok', value: codec.encodeValue(r.value) };
    return { id: req.id, status: r.status, reason: r.reason };
  } catch (e) {
    return { id: req.id, status: 'error', reason: `${req.op} threw: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/**
 * The input's lines. Not readline: its line-ending regex over a 14 KB request and its event
 * iterator cost about 30 µs a line, a tenth of a write-read case; a newline is looked for in the
 * new chunk only. A \r before the newline stays, and JSON.parse takes it as whitespace.
 */
async function* lines(input: Readable): AsyncGenerator<string> {
  let rest = '';
  input.setEncoding('utf8');
  for await (const chunk of input as AsyncIterable<string>) {
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf('\n', start)) >= 0) {
      yield rest + chunk.slice(start, nl);
      rest = '';
      start = nl + 1;
    }
    rest += chunk.slice(start);
  }
  if (rest) yield rest;
}

/** Serves until the input ends. A line that is not a request is reported on stderr and skipped. */
export async function serveTarget(target: Target, input: Readable, output: Writable, log: (line: string) => void): Promise<void> {
  output.write(JSON.stringify(helloOf(target)) + '\n');
  for await (const line of lines(input)) {
    if (!line.trim()) continue;
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      log(`not JSON, ignored: ${line.slice(0, 200)}`);
      continue;
    }
    const problems = validateDef('target-protocol', 'requestLine', msg);
    if (problems.length) {
      log(`not an nvmx-target/1 request (${problems[0]}), ignored: ${line.slice(0, 200)}`);
      continue;
    }
    const out =
      'batch' in (msg as object)
        ? { batch: await Promise.all((msg as { batch: WireRequest[] }).batch.map((r) => answer(target, r))) }
        : await answer(target, msg as WireRequest);
    output.write(Buffer.from(JSON.stringify(out) + '\n'));
  }
}

// The `exec:` target: any program speaking nvmx-target/1 on stdin/stdout, behind the Target
// interface. A process that broke is restarted before the next property (beforeProperty), so one
// crash costs one property an `error` verdict and the run goes on.
import { GROUPS, type Group, type Target, type TargetIdentity, type TargetResult } from './target.js';
import { Connection, type LaunchOptions } from './protocol/connection.js';
import { OP_METHODS, runnerCodec, type HelloMessage, type OpMethod } from './protocol/wire.js';

/** The target could not even say hello: the reason, and what it printed on stderr. */
export class TargetStartError extends Error {
  constructor(
    message: string,
    readonly stderr: readonly string[] = [],
  ) {
    super(message);
  }
}

/**
 * Opens a target and waits for its hello as long as the request timeout (--target-timeout), unless
 * the caller says otherwise (the kvm: machine boots for minutes: it passes helloTimeoutMs).
 */
export async function openExecTarget(launchOptions: LaunchOptions, name?: string): Promise<Target> {
  const launch: LaunchOptions = { helloTimeoutMs: launchOptions.timeoutMs, ...launchOptions };
  let conn: Connection;
  let hello: HelloMessage;
  const start = async (): Promise<TargetResult<null>> => {
    const r = await Connection.open(launch);
    conn = r.conn;
    if ('failure' in r) return r.failure;
    if (hello && (r.hello.groups.join() !== hello.groups.join() || r.hello.profile !== hello.profile))
      return { status: 'error', reason: `target restarted with different groups or profile: ${JSON.stringify(r.hello)}` };
    hello = r.hello;
    return { status: 'ok', value: null };
  };
  const first = await start();
  if (first.status !== 'ok') throw new TargetStartError(first.reason, first.status === 'error' ? first.stderr : []);
  const identity: TargetIdentity = { name: name ?? hello!.name, version: hello!.version, ...(hello!.profile !== undefined ? { profile: hello!.profile } : {}) };
  const groups = new Set(hello!.groups.filter((g): g is Group => (GROUPS as readonly string[]).includes(g)));
  const ops = Object.fromEntries(OP_METHODS.map((m) => [m, (...args: unknown[]) => call(m, args)])) as unknown as Pick<Target, OpMethod>;
  return {
    ...ops,
    identity,
    groups,
    ...(hello!.unsupported ? { unsupportedReasons: knownGroups(hello!.unsupported) } : {}),
    ...(hello!.unsupportedGuestOps ? { unsupportedGuestOps: hello!.unsupportedGuestOps } : {}),
    ...(hello!.vmcs12Access ? { vmcs12AccessPath: hello!.vmcs12Access } : {}),
    ...(hello!.vmxMsrs ? { vmxMsrs: new Map(Object.entries(hello!.vmxMsrs).map(([k, v]) => [Number(k), BigInt(v)])) } : {}),
    ...(hello!.vmm ? { vmm: hello!.vmm } : {}),
    ...(hello!.guestMemory ? { guestMemory: { bytes: BigInt(hello!.guestMemory.bytes), reserved: hello!.guestMemory.reserved.map(([a, b]) => [BigInt(a), BigInt(b)] as const) } } : {}),
    async beforeProperty() {
      if (!conn.broken) return { status: 'ok', value: null };
      await conn.close();
      return start();
    },
    async close() {
      await conn.close();
    },
  };
  async function call(m: OpMethod, args: unknown[]): Promise<TargetResult<unknown>> {
    const codec = runnerCodec(m, hello.features ?? []) as unknown as { op: string; encodeArgs(...a: unknown[]): Record<string, unknown>; decodeValue(w: unknown): unknown };
    const r = await conn.call(codec.op, codec.encodeArgs(...args));
    if (r.status === 'ok') {
      try {
        return { status: 'ok', value: codec.decodeValue(r.value) };
      } catch (e) {
        return { status: 'error', reason: `target's ${codec.op} value does not decode: ${(e as Error).message}` };
      }
    }
    if ('id' in r) return { status: r.status, reason: r.reason }; // the target's own answer
    return r; // the connection broke
  }
}

/** The reasons a hello gives for groups this runner knows (a retired one, such as `migration`, is left out). */
const knownGroups = (reasons: Record<string, string>): Partial<Record<Group, string>> =>
  Object.fromEntries(Object.entries(reasons).filter(([g]) => (GROUPS as readonly string[]).includes(g)));

/**
 * Splits an `exec:` command line into argv the way a shell would split words, without a shell:
 * blanks separate words, '…' is literal, "…" allows \" and \\, a backslash escapes one character.
 * No expansion, pipes or redirections (use --target-shell for those).
 */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new RangeError('unterminated single quote');
      word += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && (line[j + 1] === '"' || line[j + 1] === '\\')) j++;
        word += line[j];
      }
      if (j >= line.length) throw new RangeError('unterminated double quote');
      i = j;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

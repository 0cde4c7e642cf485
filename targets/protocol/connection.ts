// One running target process speaking nvmx-target/1: spawn, hello, framing, batching, timeouts.
// Anything the process does wrong (exits, hangs, sends non-JSON, answers the wrong id, breaks the
// schema) breaks the connection for good: every open and later call gets the same `error` with the
// reason and the last lines of the process's stderr. Restarting is the caller's job (exec.ts).
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { validateDef } from '../../base/schemas.js';
import type { TargetResult } from '../target.js';
import { processEndpoint, type Endpoint, type ProcessLaunch } from './endpoint.js';
import type { HelloMessage, WireRequest, WireResponse } from './wire.js';

export interface LaunchOptions extends Partial<ProcessLaunch> {
  readonly timeoutMs: number;
  /** how long the hello may take (default: the request timeout); a booting machine needs minutes */
  readonly helloTimeoutMs?: number;
  /** where the lines go, when not a process of argv (the kvm: broker's socket) */
  readonly endpoint?: () => Endpoint;
}

type Failure = Extract<TargetResult<never>, { status: 'error' }>;

const STDERR_LINES = 12;
/** a stderr line kept for the report is cut here: a target flooding stderr costs neither memory nor report size */
const STDERR_LINE_CHARS = 1000;
const QUOTE_CHARS = 300;
/**
 * The longest line a target may send (characters before the newline). The largest real answers are
 * batches of a case's answers, a few GETs with their pages among them, some tens of KB; a longer line
 * is refused as "line too long" as soon as it passes the cap, so a target streaming output without
 * newlines neither hangs the run nor fills memory.
 */
export const MAX_LINE = 4 * 1024 * 1024;

/** Request lines at least this long go deflated to a target that offers it. */
const DEFLATE_FROM = 1024;

const isDeflated = (msg: unknown): msg is { deflate: string } =>
  typeof msg === 'object' && msg !== null && !Array.isArray(msg) && Object.keys(msg).length === 1 && typeof (msg as { deflate?: unknown }).deflate === 'string';

/** A line quoted in a reason: long lines are cut, so a reason stays one readable line. */
export const quote = (line: string): string => JSON.stringify(line.length > QUOTE_CHARS ? line.slice(0, QUOTE_CHARS) + '…' : line);

/**
 * The last lines of free text a target printed (stderr, a machine's console), bounded: at most
 * `maxLines` lines of at most `maxChars` characters each are kept, whatever the target writes.
 * A longer line keeps its beginning and says how much was cut.
 */
export class OutputTail {
  private readonly lines: string[] = [];
  private partial = '';
  private cut = 0;
  constructor(
    private readonly maxLines = STDERR_LINES,
    private readonly maxChars = STDERR_LINE_CHARS,
  ) {}

  push(chunk: string): void {
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf('\n', start)) >= 0) {
      this.append(chunk, start, nl);
      this.lines.push(this.current());
      if (this.lines.length > this.maxLines) this.lines.shift();
      this.partial = '';
      this.cut = 0;
      start = nl + 1;
    }
    this.append(chunk, start, chunk.length);
  }

  /** the kept lines, the unfinished one last */
  tail(): string[] {
    return [...this.lines, ...(this.partial || this.cut ? [this.current()] : [])].slice(-this.maxLines);
  }

  /** characters held (a test shows a flood does not grow it) */
  get retained(): number {
    return this.lines.reduce((n, l) => n + l.length, this.partial.length);
  }

  private append(chunk: string, from: number, to: number): void {
    const room = Math.max(0, this.maxChars - this.partial.length);
    const take = Math.min(room, to - from);
    // a copy, not a slice: a slice would keep the whole chunk alive
    if (take) this.partial += Buffer.from(chunk.slice(from, from + take)).toString();
    this.cut += to - from - take;
  }

  private current(): string {
    return this.cut ? `${this.partial}… (${this.cut} more characters cut)` : this.partial;
  }
}

interface Pending {
  readonly req: WireRequest;
  readonly resolve: (r: WireResponse | Failure) => void;
}

export class Connection {
  private readonly child: Endpoint;
  /** the unfinished line from the target: always shorter than MAX_LINE */
  private buffer = '';
  private readonly stderr = new OutputTail();
  private queued: Pending[] = [];
  /** the line on the wire, waiting for its answer; one at a time keeps ids and timeouts simple */
  private inflight: Pending[] | null = null;
  private timer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private failure: Promise<Failure> | null = null;
  private helloWaiter: ((h: HelloMessage | Failure) => void) | null = null;
  private closing = false;
  /** the target's hello offered `deflate`: long request lines travel compressed */
  private deflate = false;

  private constructor(private readonly opts: LaunchOptions) {
    this.child = opts.endpoint ? opts.endpoint() : processEndpoint({ argv: opts.argv ?? [], shell: opts.shell ?? false });
    this.child.onError((message) => this.fail(message));
    this.child.onClose((why) => {
      if (this.closing) return;
      const open = this.inflight ? ` while request ${this.inflight.map((p) => `${p.req.id} (${p.req.op})`).join(', ')} was open` : '';
      this.fail(why + open);
    });
    this.child.onStdout((chunk: string) => this.onData(chunk));
    this.child.onStderr((chunk: string) => this.onStderr(chunk));
  }

  /** Starts the process and waits for its hello (helloTimeoutMs, by default the request timeout). */
  static async open(opts: LaunchOptions): Promise<{ conn: Connection; hello: HelloMessage } | { conn: Connection; failure: Failure }> {
    const conn = new Connection(opts);
    const first = await new Promise<HelloMessage | Failure>((resolve) => {
      conn.helloWaiter = resolve;
      const ms = opts.helloTimeoutMs ?? opts.timeoutMs;
      conn.arm(`no hello within ${ms} ms`, ms);
    });
    return 'status' in first ? { conn, failure: first } : { conn, hello: first };
  }

  /** One request; requests issued in the same tick travel as one `batch` line. */
  call(op: string, args: Record<string, unknown>): Promise<WireResponse | Failure> {
    if (this.failure) return this.failure;
    return new Promise((resolve) => {
      this.queued.push({ req: { id: this.nextId++, op, args }, resolve });
      if (this.queued.length === 1) queueMicrotask(() => this.flush());
    });
  }

  get broken(): boolean {
    return this.failure !== null;
  }

  /** Ends the target; a request still open (a run being stopped) is answered with an error, not left waiting. */
  async close(): Promise<void> {
    if (this.inflight || this.queued.length) this.fail(`the runner closed the connection while request ${[...(this.inflight ?? []), ...this.queued].map((p) => `${p.req.id} (${p.req.op})`).join(', ')} was open`);
    this.closing = true;
    this.child.end();
    const t = setTimeout(() => this.child.kill(), 1000);
    await this.child.closed;
    clearTimeout(t);
  }

  private flush(): void {
    if (this.inflight || this.failure || !this.queued.length) return;
    const batch = this.queued;
    this.queued = [];
    this.inflight = batch;
    let line = batch.length === 1 ? JSON.stringify(batch[0]!.req) : JSON.stringify({ batch: batch.map((p) => p.req) });
    // a slow link (the kvm: serial line) carries a case's batch of operations in a tenth of the bytes
    if (this.deflate && line.length > DEFLATE_FROM) line = JSON.stringify({ deflate: deflateRawSync(line).toString('base64') });
    this.child.write(Buffer.from(line + '\n')); // one copy to UTF-8, then a plain buffer write
    const ops = [...new Set(batch.map((p) => p.req.op))].join(', ');
    this.arm(`no answer within ${this.opts.timeoutMs} ms to request ${batch.map((p) => p.req.id).join(', ')} (${ops})`);
  }

  private arm(reason: string, ms = this.opts.timeoutMs): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fail(reason), ms);
  }

  private onData(chunk: string): void {
    let start = 0;
    let nl: number;
    // a newline is looked for in the new chunk only, so a long line costs linear time
    while (!this.failure && (nl = chunk.indexOf('\n', start)) >= 0) {
      const line = this.buffer + chunk.slice(start, nl);
      this.buffer = '';
      start = nl + 1;
      if (line.length > MAX_LINE) return this.tooLong(line);
      if (line.trim()) this.onLine(line);
    }
    if (this.failure) return; // nothing more is read from a broken connection
    this.buffer += chunk.slice(start);
    if (this.buffer.length > MAX_LINE) this.tooLong(this.buffer);
  }

  private tooLong(line: string): void {
    this.buffer = '';
    this.fail(`line too long: the target sent more than ${MAX_LINE} characters without a newline: ${quote(line.slice(0, QUOTE_CHARS + 1))}`);
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return this.fail(`target sent malformed JSON: ${quote(line)}`);
    }
    // a target with the `deflate` feature may answer a deflated request deflated (a slow link)
    if (this.deflate && !this.helloWaiter && isDeflated(msg)) {
      let inner: string;
      try {
        inner = inflateRawSync(Buffer.from(msg.deflate, 'base64'), { maxOutputLength: MAX_LINE }).toString('utf8');
      } catch (e) {
        return this.fail(`target sent a deflated line that does not inflate (${(e as Error).message}): ${quote(line)}`);
      }
      try {
        msg = JSON.parse(inner);
      } catch {
        return this.fail(`target sent a deflated line whose content is malformed JSON: ${quote(inner)}`);
      }
      if (isDeflated(msg)) return this.fail(`target sent a deflated line inside a deflated line: ${quote(line)}`);
      line = inner;
    }
    if (this.helloWaiter) {
      const problems = validateDef('target-protocol', 'hello', msg);
      if (problems.length) return this.fail(`bad hello (${problems[0]}): ${quote(line)}`);
      clearTimeout(this.timer);
      this.deflate = (msg as HelloMessage).features?.includes('deflate') ?? false;
      const w = this.helloWaiter;
      this.helloWaiter = null;
      return w(msg as HelloMessage);
    }
    const batch = this.inflight;
    if (!batch) return this.fail(`target sent a line nobody asked for: ${quote(line)}`);
    const problems = validateDef('target-protocol', 'responseLine', msg);
    if (problems.length) return this.fail(`message breaks nvmx-target/1 (${problems[0]}): ${quote(line)}`);
    const responses: WireResponse[] = 'batch' in (msg as object) ? (msg as { batch: WireResponse[] }).batch : [msg as WireResponse];
    const want = batch.map((p) => p.req.id);
    const got = responses.map((r) => r.id);
    if (('batch' in (msg as object)) !== batch.length > 1 || [...got].sort().join() !== [...want].sort().join())
      return this.fail(`target answered id ${got.join(', ')} to request ${want.join(', ')}: ${quote(line)}`);
    for (const p of batch) {
      const r = responses.find((x) => x.id === p.req.id)!;
      if (r.status === 'ok') {
        const bad = validateDef('target-protocol', `value-${p.req.op}`, r.value);
        if (bad.length) return this.fail(`target's ${p.req.op} value breaks nvmx-target/1 (${bad[0]}): ${quote(line)}`);
      }
    }
    clearTimeout(this.timer);
    this.inflight = null;
    for (const p of batch) p.resolve(responses.find((x) => x.id === p.req.id)!);
    this.flush();
  }

  private onStderr(chunk: string): void {
    this.stderr.push(chunk);
  }

  /** Breaks the connection: kills the process, then answers everything open with the reason. */
  private fail(reason: string): void {
    if (this.failure) return;
    clearTimeout(this.timer);
    if (this.child.alive) this.child.kill();
    // stderr is complete once the process has closed its pipes; a stuck pipe gets 500 ms
    this.failure = Promise.race([this.child.closed, new Promise((r) => setTimeout(r, 500))]).then(() => {
      const stderr = this.stderr.tail();
      return { status: 'error' as const, reason, ...(stderr.length ? { stderr } : {}) };
    });
    void this.failure.then((f) => {
      const open = [...(this.inflight ?? []), ...this.queued];
      this.inflight = null;
      this.queued = [];
      for (const p of open) p.resolve(f);
      this.helloWaiter?.(f);
      this.helloWaiter = null;
    });
  }
}

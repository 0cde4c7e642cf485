// The one machine of a run, shared: a Unix socket that relays nvmx-target/1 lines to the agent on
// the machine's serial line. `check` starts it before the suites, so one Bochs boot serves every
// vitest worker (and the golden section); the boot goes on while properties that do not need the
// target run. Requests from all clients go to the agent one line at a time. A request the agent
// does not answer in time, or a machine that dies, takes the machine down: every client sees its
// connection close (its property gets `error`, with the console's last lines), and the next
// client that connects boots a fresh machine.
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KvmImage } from './image.js';
import { KvmMachine } from './machine.js';

export interface BrokerOptions {
  readonly timeoutMs: number;
  readonly bootTimeoutMs: number;
  readonly log: (line: string) => void;
  /** boots allowed after the first one failed or the machine died (each costs a boot) */
  readonly maxRestarts?: number;
}

interface Live {
  readonly machine: KvmMachine;
  readonly hello: string;
  readonly bootSeconds: number;
}

interface Job {
  readonly client: Socket;
  readonly line: string;
}

export class KvmBroker {
  readonly dir = mkdtempSync(join(tmpdir(), 'nvmx-kvm-'));
  readonly path = join(this.dir, 'agent.sock');
  readonly consoleLog = join(this.dir, 'console.log');
  private server: Server | undefined;
  private live: Promise<Live> | null = null;
  private readonly clients = new Set<Socket>();
  private readonly queue: Job[] = [];
  private busy = false;
  private boots = 0;
  private lastFailure = '';
  private closed = false;
  /** seconds from Bochs start to the agent's hello, per boot */
  readonly bootTimes: number[] = [];

  constructor(
    private readonly image: KvmImage,
    private readonly opts: BrokerOptions,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((c) => void this.accept(c));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.path, resolve);
    });
    void this.machine().catch(() => {}); // boot now, in the background
  }

  /** The running machine, booting one when there is none (and restarts are left). */
  private machine(): Promise<Live> {
    if (this.live) return this.live;
    if (this.boots > (this.opts.maxRestarts ?? 2)) return Promise.reject(new Error(`the kvm: machine is not restarted again after ${this.boots} boots: ${this.lastFailure}`));
    this.boots++;
    const live = this.boot();
    this.live = live;
    live.catch((e: Error) => {
      this.lastFailure = e.message;
      if (this.live === live) this.live = null;
      this.opts.log(`kvm: ${e.message}`);
    });
    return live;
  }

  private async boot(): Promise<Live> {
    const t0 = Date.now();
    this.opts.log(`kvm: booting ${this.image.kernelSource} in Bochs (console: ${this.consoleLog})`);
    const machine = await KvmMachine.start(this.image, this.dir);
    const hello = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => fail(`no hello from the agent within ${Math.round(this.opts.bootTimeoutMs / 1000)} s of boot`), this.opts.bootTimeoutMs);
      const fail = (why: string) => {
        clearTimeout(timer);
        machine.kill();
        reject(new Error(why));
      };
      void machine.exited.then((why) => fail(`the machine stopped before the agent said hello: ${why}`));
      const onData = (chunk: Buffer) => {
        buf += chunk.toString('latin1');
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        machine.socket.off('data', onData);
        clearTimeout(timer);
        resolve(buf.slice(0, nl));
      };
      machine.socket.on('data', onData);
    });
    const bootSeconds = (Date.now() - t0) / 1000;
    this.bootTimes.push(bootSeconds);
    this.opts.log(`kvm: agent ready after ${bootSeconds.toFixed(0)} s`);
    void machine.exited.then((why) => this.down(machine, `the machine stopped: ${why}`));
    return { machine, hello, bootSeconds };
  }

  private async accept(client: Socket): Promise<void> {
    this.clients.add(client);
    client.once('close', () => this.clients.delete(client));
    client.on('error', () => {});
    let live: Live;
    try {
      live = await this.machine();
    } catch {
      client.destroy();
      return;
    }
    if (client.destroyed) return;
    client.write(live.hello + '\n');
    let buf = '';
    client.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.queue.push({ client, line: buf.slice(0, nl + 1) });
        buf = buf.slice(nl + 1);
      }
      void this.pump();
    });
  }

  /** One request on the serial line at a time: the agent answers in order. */
  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (let job = this.queue.shift(); job; job = this.queue.shift()) {
        if (job.client.destroyed) continue;
        let live: Live;
        try {
          live = await this.machine();
        } catch {
          job.client.destroy();
          continue;
        }
        const t0 = Date.now();
        const answer = await this.ask(live, job.line);
        // NVMX_KVM_TRACE=FILE: one line per request (ops, bytes each way, milliseconds), for finding where time goes
        if (process.env.NVMX_KVM_TRACE) appendFileSync(process.env.NVMX_KVM_TRACE, `${Date.now() - t0} ms ${job.line.length} B -> ${answer?.length ?? 0} B ${[...job.line.matchAll(/"op":"([a-z-]+)"/g)].map((m) => m[1]).join(',').slice(0, 300)}\n`);
        if (answer === null) continue; // the machine went down; the client was closed with it
        if (!job.client.destroyed) job.client.write(answer);
      }
    } finally {
      this.busy = false;
    }
  }

  private ask(live: Live, line: string): Promise<string | null> {
    const { machine } = live;
    return new Promise((resolve) => {
      let buf = '';
      const done = (answer: string | null) => {
        clearTimeout(timer);
        machine.socket.off('data', onData);
        machine.socket.off('close', onClose);
        resolve(answer);
      };
      // the serial socket closes when Bochs exits or is killed: no answer will come
      const onClose = () => done(null);
      const timer = setTimeout(() => {
        this.down(machine, `the agent did not answer within ${this.opts.timeoutMs} ms (the emulated machine hangs?)`);
        done(null);
      }, this.opts.timeoutMs);
      // Bochs sends a byte at a time: the newline is looked for in the new chunk only, so a long
      // answer costs linear time, not quadratic
      const onData = (chunk: Buffer) => {
        const nl = chunk.indexOf(10);
        if (nl < 0) return void (buf += chunk.toString('latin1'));
        done(buf + chunk.toString('latin1', 0, nl + 1));
      };
      machine.socket.on('data', onData);
      machine.socket.once('close', onClose);
      machine.socket.write(line);
    });
  }

  /** The machine is gone or hung: stop it and close every client; the next one boots anew. */
  private down(machine: KvmMachine, why: string): void {
    void this.live?.then((l) => {
      if (l.machine !== machine) return;
      this.live = null;
      this.lastFailure = why;
      if (!this.closed) this.opts.log(`kvm: ${why}; restarting on the next property`);
      machine.kill();
      for (const c of this.clients) c.destroy();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const live = await this.live?.catch(() => null);
    live?.machine.kill();
    for (const c of this.clients) c.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    if (live) await live.machine.exited;
    if (!process.env.NVMX_KVM_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }
}

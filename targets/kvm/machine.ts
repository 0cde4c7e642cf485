// One emulated machine: Bochs (which emulates VMX) booting the kvm: image. COM2 is the agent's
// nvmx-target/1 line (a TCP socket Bochs serves on loopback); COM1 is the kernel console, written
// to a file. Bochs runs in a process group of its own and is killed with it, also when this
// process exits. Settings from spec/realkvm-notes.md: no `nogui` in Debian's build (rfb without
// waiting for a client), dummy sound (ALSA aborts Bochs), the debugger continues from an rc file.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, openSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { DISK_GEOMETRY, type KvmImage } from './image.js';

export const BOCHS_CPU = 'corei7_skylake_x';
export const GUEST_MEGS = 768;

export function bochsrc(o: { disk: string; consoleLog: string; port: number; bochsLog: string }): string {
  const g = DISK_GEOMETRY;
  return [
    `megs: ${GUEST_MEGS}`,
    `cpu: model=${BOCHS_CPU}, count=1, ignore_bad_msrs=1, reset_on_triple_fault=0`,
    'romimage: file=/usr/share/bochs/BIOS-bochs-latest',
    'vgaromimage: file=/usr/share/vgabios/vgabios.bin',
    'display_library: rfb, options="timeout=0"',
    'sound: driver=dummy',
    'speaker: enabled=0',
    'clock: sync=none',
    `ata0-master: type=disk, mode=flat, path=${o.disk}, cylinders=${g.cylinders}, heads=${g.heads}, spt=${g.spt}`,
    'boot: disk',
    `com1: enabled=1, mode=file, dev=${o.consoleLog}`,
    `com2: enabled=1, mode=socket-server, dev=localhost:${o.port}`,
    `log: ${o.bochsLog}`,
    // every unknown MSR access is logged as an error: keep the log to what ends a run
    'panic: action=fatal',
    'error: action=ignore',
    'info: action=ignore',
    'debug: action=ignore',
    '',
  ].join('\n');
}

/** "Bochs 2.7+dfsg-4+deb12u1 (cpu corei7_skylake_x)", from the Debian package database. */
export function bochsVersion(): string {
  let v = 'unknown version';
  try {
    v = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'bochs'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || v;
  } catch {
    // not a Debian system: the version stays unknown, the report says so
  }
  return `Bochs ${v} (cpu ${BOCHS_CPU})`;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

export class KvmMachine {
  private constructor(
    private readonly child: ChildProcess,
    readonly socket: Socket,
    readonly consoleLog: string,
    /** resolves with a description once Bochs has exited */
    readonly exited: Promise<string>,
  ) {}

  /** Starts Bochs on the image and connects to the agent's serial line (before the guest boots). */
  static async start(image: KvmImage, dir: string): Promise<KvmMachine> {
    const consoleLog = join(dir, 'console.log');
    const bochsLog = join(dir, 'bochs.log');
    // a restart keeps the lost machine's console and Bochs output beside the new ones: the evidence of why it was lost
    const stamp = Date.now();
    for (const f of ['console.log', 'bochs.out']) if (existsSync(join(dir, f)) && statSync(join(dir, f)).size > 0) renameSync(join(dir, f), join(dir, `lost-${stamp}-${f}`));
    writeFileSync(consoleLog, '');
    const port = await freePort();
    // Bochs locks its disk image with a file beside it that a killed Bochs leaves behind: every
    // boot gets its own copy, so a stale lock or a second machine never blocks the next one
    const disk = join(dir, 'disk.img');
    rmSync(`${disk}.lock`, { force: true });
    copyFileSync(image.disk, disk);
    writeFileSync(join(dir, 'bochsrc'), bochsrc({ disk, consoleLog, port, bochsLog }));
    writeFileSync(join(dir, 'continue.rc'), 'c\n');
    const out = openSync(join(dir, 'bochs.out'), 'w');
    const child = spawn('bochs', ['-q', '-f', 'bochsrc', '-rc', 'continue.rc'], {
      cwd: dir,
      stdio: ['ignore', out, out],
      detached: true,
      ...(image.bochsPreload ? { env: { ...process.env, LD_PRELOAD: image.bochsPreload } } : {}),
    });
    const kill = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    process.once('exit', kill);
    const exited = new Promise<string>((resolve) =>
      child.once('close', (code, signal) => {
        process.off('exit', kill);
        resolve(signal ? `Bochs was killed by ${signal}` : `Bochs exited with code ${code} (see ${join(dir, 'bochs.out')})`);
      }),
    );
    child.once('error', () => {}); // a missing binary shows as the exit below
    let gone: string | null = null;
    void exited.then((why) => (gone = why));
    // Bochs listens on COM2 before the simulation starts and waits there for us
    for (let i = 0; i < 300; i++) {
      if (gone) throw new Error(`Bochs did not start: ${gone}`);
      const socket = await new Promise<Socket | null>((resolve) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => resolve(s));
        s.once('error', () => resolve(null));
      });
      if (socket) {
        socket.setNoDelay(true);
        const m = new KvmMachine(child, socket, consoleLog, exited);
        return m;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    kill();
    throw new Error(`Bochs did not open its serial port ${port} within 30 s (see ${join(dir, 'bochs.out')})`);
  }

  kill(): void {
    this.socket.destroy();
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

// Where nvmx-target/1 lines go and come from: a process's stdin/stdout (exec:, linux:), or a
// socket (the kvm: machine's broker). A Connection sees only this shape, so framing, timeouts and
// schema checks are the same for every kind of target.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';

export interface Endpoint {
  write(data: Buffer): void;
  /** polite close: end the input; the far side should exit */
  end(): void;
  /** hard stop (a process target: its whole process group) */
  kill(): void;
  onStdout(cb: (chunk: string) => void): void;
  /** free text the far side printed for humans (a process's stderr, a machine's console) */
  onStderr(cb: (chunk: string) => void): void;
  /** once: why it went away (exit code, signal, a closed socket) */
  onClose(cb: (why: string) => void): void;
  /** once: it could not even start */
  onError(cb: (message: string) => void): void;
  readonly alive: boolean;
  /** resolves once it has gone and its output is complete */
  readonly closed: Promise<void>;
}

export interface ProcessLaunch {
  /** argv[0] and its arguments, or one shell command line when `shell` */
  readonly argv: readonly string[];
  readonly shell: boolean;
}

/**
 * A target process in a process group of its own: killing it kills what it started too (a shell
 * wrapper's background children), so a restart never waits for a stray grandchild. When the
 * process itself exits, the rest of its group is killed as well: a background child that still
 * holds stdout would otherwise keep the pipes (and so the close) open until the request timeout.
 */
export function processEndpoint(launch: ProcessLaunch): Endpoint {
  const [cmd, ...args] = launch.argv;
  const child = spawn(cmd!, launch.shell ? [] : args, { shell: launch.shell, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let alive = true;
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let exit = '';
  child.once('exit', (code, signal) => {
    alive = false;
    exit = signal ? `target killed by signal ${signal}` : `target exited with code ${code}`;
    killGroup();
  });
  child.stdin.on('error', () => {}); // EPIPE after a crash: the close handler reports it
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  const killGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  };
  // the group outlives us otherwise (detached): take it down when this process exits
  process.once('exit', killGroup);
  void closed.then(() => process.off('exit', killGroup));
  return {
    write: (data) => void child.stdin.write(data),
    end: () => void child.stdin.end(),
    kill: killGroup,
    onStdout: (cb) => void child.stdout.on('data', cb),
    onStderr: (cb) => void child.stderr.on('data', cb),
    // how the target itself ended, not the stragglers of its group killed after it
    onClose: (cb) => void child.once('close', (code, signal) => cb(exit || (signal ? `target killed by signal ${signal}` : `target exited with code ${code}`))),
    onError: (cb) => void child.once('error', (e) => cb(`cannot run target: ${e.message}`)),
    get alive() {
      return alive;
    },
    closed,
  };
}

/**
 * A Unix socket to a broker that relays lines to a target it owns (the kvm: machine). The broker
 * cannot carry stderr; the target's console log is read when the socket closes instead.
 */
export function socketEndpoint(path: string, consoleLog?: string): Endpoint {
  const sock = connect(path);
  let alive = true;
  let stderrCb: ((chunk: string) => void) | undefined;
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.setEncoding('utf8');
  sock.once('close', () => {
    alive = false;
    if (consoleLog && stderrCb) {
      try {
        stderrCb(readFileSync(consoleLog, 'utf8').split('\n').slice(-40).join('\n') + '\n');
      } catch {
        // no console log yet: nothing to add
      }
    }
  });
  return {
    write: (data) => void sock.write(data),
    end: () => void sock.end(),
    kill: () => void sock.destroy(),
    onStdout: (cb) => void sock.on('data', cb),
    onStderr: (cb) => void (stderrCb = cb),
    onClose: (cb) => void sock.once('close', () => cb('the kvm: machine closed the connection (it was restarted or stopped)')),
    onError: (cb) => void sock.once('error', (e) => cb(`cannot reach the kvm: machine: ${e.message}`)),
    get alive() {
      return alive;
    },
    closed,
  };
}

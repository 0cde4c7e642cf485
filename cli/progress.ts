// Progress for long runs. On a terminal: one status line, redrawn every second, under the
// per-property lines. Elsewhere (CI logs): only the per-property lines, no control characters.
export class Progress {
  private readonly running = new Set<string>();
  private done = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();
  private readonly tty: boolean;

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(out.isTTY) && !process.env.CI;
    if (this.tty) this.timer = setInterval(() => this.draw(), 1000).unref();
  }

  start(id: string): void {
    this.running.add(id);
    this.draw();
  }

  /** Prints finished-property lines to stdout, keeping the status line below them. */
  finish(id: string, lines: readonly string[]): void {
    this.running.delete(id);
    this.done++;
    this.clear();
    console.log(lines.join('\n'));
    if (this.done === this.total) this.stop();
    else this.draw();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.clear();
  }

  private clear(): void {
    if (this.tty) this.out.write('\r\x1b[2K');
  }

  private draw(): void {
    if (!this.tty) return;
    const secs = ((Date.now() - this.started) / 1000).toFixed(0);
    const now = [...this.running].join(', ');
    const line = `[${this.done}/${this.total}] ${secs}s${now ? `  running: ${now}` : ''}`;
    this.out.write(`\r\x1b[2K${line.slice(0, (this.out.columns || 100) - 1)}`);
  }
}

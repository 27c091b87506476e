// A forked benchmark process with typed IPC: `send`, `next(type)` for the answer to a request,
// and `on(type)` for the messages it streams. A child that reports an error or exits early fails
// every pending `next`.
import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";

interface Typed {
  readonly type: string;
}

/** Peak resident set of a process (VmHWM in /proc/PID/status), in bytes; NaN if unreadable. */
export function peakRss(pid: number): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match === null ? Number.NaN : Number(match[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system) a process has used so far, in seconds; NaN if unreadable. */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** USER_HZ: 100 on Linux. */
const CLOCK_TICKS = 100;

export class Child<In extends Typed, Out extends Typed> {
  private readonly proc: ChildProcess;
  private readonly waiters: { type: string; resolve: (m: Out) => void; reject: (e: Error) => void }[] = [];
  private readonly listeners = new Map<string, (m: Out) => void>();
  private failure: Error | undefined;

  constructor(
    readonly name: string,
    modulePath: string,
  ) {
    this.proc = fork(modulePath, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.proc.on("message", (raw) => this.receive(raw as Out));
    this.proc.on("exit", (code, signal) => {
      if (this.waiters.length > 0) this.fail(new Error(`${name} exited (${signal ?? code}) while awaited`));
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  private receive(message: Out): void {
    if (message.type === "error") {
      this.fail(new Error(`${this.name}: ${(message as unknown as { message: string }).message}`));
      return;
    }
    this.listeners.get(message.type)?.(message);
    const index = this.waiters.findIndex((w) => w.type === message.type);
    if (index >= 0) this.waiters.splice(index, 1)[0]?.resolve(message);
  }

  private fail(error: Error): void {
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  send(message: In): void {
    this.proc.send(message);
  }

  on<T extends Out["type"]>(type: T, listener: (message: Extract<Out, { type: T }>) => void): void {
    this.listeners.set(type, listener as (m: Out) => void);
  }

  next<T extends Out["type"]>(type: T): Promise<Extract<Out, { type: T }>> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiters.push({ type, resolve: resolve as (m: Out) => void, reject });
    });
  }

  /** Sends `message` and waits for the answer of type `type`. */
  request<T extends Out["type"]>(message: In, type: T): Promise<Extract<Out, { type: T }>> {
    const answer = this.next(type);
    this.send(message);
    return answer;
  }

  /** Rejects if the child has failed (checked while waiting on other things). */
  check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill("SIGKILL");
  }
}

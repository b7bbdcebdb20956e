/**
 * A small QMP (QEMU Machine Protocol) client over QEMU's Unix socket: the greeting, `qmp_capabilities`, commands with
 * ids and timeouts, asynchronous events, and fds sent with `SCM_RIGHTS` alongside a command (`getfd`, `add-fd`).
 *
 * Written here rather than taken from npm: the one QMP client there (`qemu-qmp`, a single 0.5.0 release, no licence,
 * a `split` dependency) has no way to send fds, which is what hot-plugging a macvtap needs, and the protocol is one
 * JSON object per line (QEMU's docs/interop/qmp-spec).
 */
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { binding } from '../binding.js';
import { abortError, callNative, invalidType, invalidValue } from '../errors.js';
import * as v from '../validate.js';

/**
 * The oldest QEMU this client talks to: libvirt's own floor (4.2), which has every command the hot-plug uses
 * (`getfd`, `closefd`, `netdev_add` with `fds`, `device_add`, `device_del` + `DEVICE_DELETED`, `query-rx-filter`).
 */
export const QMP_MIN_QEMU = { major: 4, minor: 2 } as const;

/** A line longer than this is not QMP (QEMU's largest replies, `query-qmp-schema`, are well below). */
const MAX_LINE = 16 * 1024 * 1024;

/**
 * A command QEMU refused: its error `class` (`'GenericError'`, `'DeviceNotFound'`, `'CommandNotFound'`, …) and `desc`,
 * as QMP's `{"error": {"class", "desc"}}` carries them.
 */
export class QmpError extends Error {
  /** Always `'ERR_QMP_COMMAND'`. */
  readonly code = 'ERR_QMP_COMMAND';
  /** QEMU's error class. */
  readonly class: string;
  /** QEMU's error text. */
  readonly desc: string;
  /** The command that failed. */
  readonly command: string;

  /** @internal Built by {@link QmpClient}. */
  constructor(command: string, cls: string, desc: string) {
    super(`QMP ${command}: ${cls}: ${desc}`);
    this.name = 'QmpError';
    this.class = cls;
    this.desc = desc;
    this.command = command;
  }
}

/**
 * Why a QMP conversation failed outside QEMU's own refusals:
 * - `ERR_QMP_NOT_QMP`: the socket did not greet like QMP (not JSON, no `QMP` object, or nothing in time — QEMU
 *   serves one client per QMP socket, so a second client waits for a greeting that never comes);
 * - `ERR_QMP_UNSUPPORTED`: a QMP greeting from a QEMU older than {@link QMP_MIN_QEMU}, or without a version;
 * - `ERR_QMP_PROTOCOL`: a message that breaks the protocol (not JSON, a reply to no command, an oversized line);
 * - `ERR_QMP_CLOSED`: the connection ended (QEMU exited, or {@link QmpClient.close}) before the reply came;
 * - `ERR_QMP_TIMEOUT`: no reply (or event) within the timeout. A command that timed out may still run in QEMU.
 */
export class QmpProtocolError extends Error {
  readonly code: 'ERR_QMP_NOT_QMP' | 'ERR_QMP_UNSUPPORTED' | 'ERR_QMP_PROTOCOL' | 'ERR_QMP_CLOSED' | 'ERR_QMP_TIMEOUT';
  /** The socket path. */
  readonly path: string;
  /** The command waited for, when there was one. */
  readonly command?: string;

  /** @internal Built by {@link QmpClient}. */
  constructor(code: QmpProtocolError['code'], path: string, message: string, command?: string) {
    super(`${message} (QMP socket ${path})`);
    this.name = 'QmpProtocolError';
    this.code = code;
    this.path = path;
    if (command !== undefined) this.command = command;
  }
}

/** What QEMU said about itself in its greeting. */
export interface QmpGreeting {
  /** QEMU's version. */
  version: { major: number; minor: number; micro: number };
  /** The distribution's package string (`'Debian 1:7.2+dfsg-7'`), possibly empty. */
  package: string;
  /** Capabilities QEMU offered (`'oob'`); this client enables none of them. */
  capabilities: string[];
}

/** An asynchronous QMP event. */
export interface QmpEvent {
  /** The event's name: `'DEVICE_DELETED'`, `'NIC_RX_FILTER_CHANGED'`, `'SHUTDOWN'`, … */
  event: string;
  /** The event's data (`{}` when QEMU sent none). */
  data: Record<string, unknown>;
  /** When QEMU emitted it. */
  timestamp: { seconds: number; microseconds: number };
}

/** Options of {@link connectQmp}. */
export interface QmpConnectOptions {
  /** How long to wait for the connection, the greeting and the capabilities negotiation, ms. Default 5000. */
  timeoutMs?: number;
}

/** Options of {@link QmpClient.execute}. */
export interface QmpExecuteOptions {
  /** How long to wait for the reply, ms. Default 10000. */
  timeoutMs?: number;
  /**
   * Fds sent with the command in one `SCM_RIGHTS` message. QEMU's `getfd` and `add-fd` each take one fd (QEMU 7.2
   * closes any others of the same message): send one per command. Our copies stay open; QEMU gets its own.
   */
  fds?: number[];
}

/** Options of {@link QmpClient.waitEvent}. */
export interface QmpWaitEventOptions {
  /** How long to wait, ms. Default 10000. */
  timeoutMs?: number;
  /** Stops waiting (the promise rejects with an `AbortError`). */
  signal?: AbortSignal;
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface Waiter {
  name: string;
  predicate: (data: Record<string, unknown>) => boolean;
  resolve: (e: QmpEvent) => void;
  reject: (e: Error) => void;
  cleanup: () => void;
}

/**
 * A connected, negotiated QMP session (made by {@link connectQmp}). Events arrive as `'event'` (every {@link QmpEvent})
 * and as the event's own name (`'DEVICE_DELETED'`, with the `QmpEvent`); `'close'` once the connection has ended,
 * with the reason (`QmpProtocolError` `ERR_QMP_CLOSED`, or what broke the protocol).
 */
export class QmpClient extends EventEmitter {
  /** The socket path. */
  readonly path: string;
  /** QEMU's greeting. */
  readonly greeting: QmpGreeting;
  #socket: Socket;
  #nextId = 1;
  #pending = new Map<string, Pending>();
  #waiters = new Set<Waiter>();
  #writes: Promise<void> = Promise.resolve();
  #closed: QmpProtocolError | null = null;

  /** @internal Use {@link connectQmp}. */
  constructor(socket: Socket, path: string, greeting: QmpGreeting, rest: string) {
    super();
    this.#socket = socket;
    this.path = path;
    this.greeting = greeting;
    let buf = rest;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line.length > 0) this.#message(line);
        if (this.#closed) return;
      }
      if (buf.length > MAX_LINE) this.#fail(new QmpProtocolError('ERR_QMP_PROTOCOL', path, `a message longer than ${MAX_LINE} bytes`));
    });
    socket.on('error', () => {
      // 'close' follows and carries the reason.
    });
    socket.on('close', () => this.#fail(new QmpProtocolError('ERR_QMP_CLOSED', path, 'the QMP connection closed (QEMU exited?)')));
    socket.resume();
  }

  /** `true` once the connection has ended (QEMU gone, a protocol error, or {@link close}). */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /**
   * Runs one QMP command and resolves with its `return` value. Rejects with {@link QmpError} when QEMU refuses it,
   * {@link QmpProtocolError} `ERR_QMP_TIMEOUT` / `ERR_QMP_CLOSED` when no reply comes. With `fds`, the fds travel with
   * the command's bytes in one `SCM_RIGHTS` message, as QEMU's `getfd` and `add-fd` expect.
   *
   * Equivalent to: `{"execute": command, "arguments": args, "id": …}` on the socket.
   *
   * @example
   * ```ts
   * await qmp.execute('getfd', { fdname: 'tap0' }, { fds: [queue.fd] });
   * const status = await qmp.execute('query-status');
   * ```
   */
  execute(command: string, args?: Record<string, unknown>, options?: QmpExecuteOptions): Promise<unknown> {
    try {
      return this.#execute(command, args, options);
    } catch (e) {
      // Bad input rejects like everything else here (nothing was sent).
      return Promise.reject(e);
    }
  }

  #execute(command: string, args?: Record<string, unknown>, options?: QmpExecuteOptions): Promise<unknown> {
    if (typeof command !== 'string' || !/^[A-Za-z][A-Za-z0-9_-]*$/.test(command)) throw invalidType('command', 'a QMP command name', command);
    if (args !== undefined && !v.isPlainObject(args)) throw invalidType('args', 'an object of command arguments', args);
    const opts = v.options('options', options);
    v.knownKeys('options', opts, ['timeoutMs', 'fds']);
    const timeoutMs = opts.timeoutMs === undefined ? 10_000 : v.integer('timeoutMs', opts.timeoutMs, 1, 2 ** 31 - 1);
    let fds: number[] = [];
    if (opts.fds !== undefined) {
      if (!Array.isArray(opts.fds) || opts.fds.length === 0 || opts.fds.length > 253) throw invalidType('fds', 'an array of 1 to 253 fds', opts.fds);
      fds = opts.fds.map((fd, i) => v.integer(`fds[${i}]`, fd, 0, 2 ** 31 - 1));
    }
    if (this.#closed) return Promise.reject(this.#closedError(command));
    const id = `mvt-${this.#nextId++}`;
    const msg: Record<string, unknown> = { execute: command, id };
    if (args !== undefined) msg.arguments = args;
    const line = JSON.stringify(msg) + '\n';
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new QmpProtocolError('ERR_QMP_TIMEOUT', this.path, `no reply to ${command} within ${timeoutMs} ms`, command));
      }, timeoutMs);
      this.#pending.set(id, { command, resolve, reject, timer });
      this.#send(line, fds).catch((e: unknown) => {
        const p = this.#pending.get(id);
        if (!p) return;
        this.#pending.delete(id);
        clearTimeout(p.timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      });
    });
  }

  /**
   * Resolves with the next event `name` for which `predicate(data)` holds (every one when omitted). Start waiting
   * before the command that causes the event: an event that arrived earlier is not replayed. Rejects with
   * {@link QmpProtocolError} `ERR_QMP_TIMEOUT` (default 10 s) or `ERR_QMP_CLOSED`, or an `AbortError`.
   *
   * @example
   * ```ts
   * const gone = qmp.waitEvent('DEVICE_DELETED', (d) => d.device === 'nic1', 30_000);
   * await qmp.execute('device_del', { id: 'nic1' });
   * await gone;
   * ```
   */
  waitEvent(name: string, predicate?: (data: Record<string, unknown>) => boolean, options?: number | QmpWaitEventOptions): Promise<QmpEvent> {
    try {
      return this.#waitEvent(name, predicate, options);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #waitEvent(name: string, predicate?: (data: Record<string, unknown>) => boolean, options?: number | QmpWaitEventOptions): Promise<QmpEvent> {
    if (typeof name !== 'string' || name.length === 0) throw invalidType('name', 'an event name', name);
    if (predicate !== undefined && typeof predicate !== 'function') throw invalidType('predicate', 'a function', predicate);
    const opts: QmpWaitEventOptions = typeof options === 'number' ? { timeoutMs: options } : v.options('options', options);
    v.knownKeys('options', opts, ['timeoutMs', 'signal']);
    const timeoutMs = opts.timeoutMs === undefined ? 10_000 : v.integer('timeoutMs', opts.timeoutMs, 1, 2 ** 31 - 1);
    const signal = v.signal(opts);
    if (this.#closed) return Promise.reject(this.#closedError(`waiting for ${name}`));
    if (signal?.aborted) return Promise.reject(abortError(`waiting for ${name} was aborted`, signal));
    return new Promise<QmpEvent>((resolve, reject) => {
      const onAbort = (): void => {
        w.cleanup();
        reject(abortError(`waiting for ${name} was aborted`, signal!));
      };
      const timer = setTimeout(() => {
        w.cleanup();
        reject(new QmpProtocolError('ERR_QMP_TIMEOUT', this.path, `no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const w: Waiter = {
        name,
        predicate: predicate ?? (() => true),
        resolve,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.#waiters.delete(w);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(w);
    });
  }

  /**
   * Ends the session: pending commands and event waits reject with `ERR_QMP_CLOSED`, the socket is closed. QEMU keeps
   * running. Idempotent; resolves once the socket is closed.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    const done = new Promise<void>((r) => this.#socket.once('close', () => r()));
    this.#fail(new QmpProtocolError('ERR_QMP_CLOSED', this.path, 'the QMP client was closed'));
    await done;
  }

  /** `await using qmp = await connectQmp(…)`: closes the session at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #closedError(command: string): QmpProtocolError {
    const c = this.#closed!;
    return new QmpProtocolError(c.code, this.path, c.message.replace(/ \(QMP socket .*\)$/, ''), command);
  }

  // Writes go one after another: a command carrying fds is written by the addon's sendmsg() on the socket's own fd,
  // which must not interleave with bytes Node still has queued.
  #send(line: string, fds: number[]): Promise<void> {
    const next = this.#writes.then(async () => {
      if (this.#closed) throw this.#closedError(JSON.parse(line).execute as string);
      try {
        if (fds.length === 0) {
          await new Promise<void>((resolve, reject) => this.#socket.write(line, (e) => (e ? reject(e) : resolve())));
        } else {
          const fd = socketFd(this.#socket);
          await callNative(() => binding.sendFds(fd, fds, Buffer.from(line)));
        }
      } catch (e) {
        // A write that fails means the peer is gone (EPIPE, ECONNRESET): the session is over, for every caller.
        this.#fail(new QmpProtocolError('ERR_QMP_CLOSED', this.path, `the QMP connection broke (${(e as { code?: string }).code ?? String(e)}; QEMU exited?)`));
        throw this.#closedError(JSON.parse(line).execute as string);
      }
    });
    // The chain itself never rejects (one failed write must not block the next); the caller gets the error.
    this.#writes = next.catch(() => undefined);
    return next;
  }

  #message(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.#fail(new QmpProtocolError('ERR_QMP_PROTOCOL', this.path, `a message that is not JSON: ${line.slice(0, 80)}`));
      return;
    }
    if (!v.isPlainObject(msg)) {
      this.#fail(new QmpProtocolError('ERR_QMP_PROTOCOL', this.path, `a message that is not a JSON object: ${line.slice(0, 80)}`));
      return;
    }
    if (typeof msg.event === 'string') {
      const ts = v.isPlainObject(msg.timestamp) ? msg.timestamp : {};
      const ev: QmpEvent = {
        event: msg.event,
        data: v.isPlainObject(msg.data) ? msg.data : {},
        timestamp: { seconds: Number(ts.seconds ?? 0), microseconds: Number(ts.microseconds ?? 0) },
      };
      for (const w of [...this.#waiters]) {
        if (w.name !== ev.event) continue;
        let hit: boolean;
        try {
          hit = w.predicate(ev.data);
        } catch (e) {
          w.cleanup();
          w.reject(e instanceof Error ? e : new Error(String(e)));
          continue;
        }
        if (hit) {
          w.cleanup();
          w.resolve(ev);
        }
      }
      this.emit('event', ev);
      this.emit(ev.event, ev);
      return;
    }
    const id = msg.id;
    if (typeof id !== 'string') {
      // Replies without an id answer nothing we sent (we always send one): a protocol break.
      this.#fail(new QmpProtocolError('ERR_QMP_PROTOCOL', this.path, `a reply without an id: ${line.slice(0, 80)}`));
      return;
    }
    const p = this.#pending.get(id);
    // A reply to a command that already timed out: nobody waits for it any more.
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if ('return' in msg) {
      p.resolve(msg.return);
    } else if (v.isPlainObject(msg.error)) {
      p.reject(new QmpError(p.command, String(msg.error.class ?? 'GenericError'), String(msg.error.desc ?? '')));
    } else {
      p.reject(new QmpProtocolError('ERR_QMP_PROTOCOL', this.path, `a reply with neither return nor error: ${line.slice(0, 80)}`, p.command));
    }
  }

  #fail(reason: QmpProtocolError): void {
    if (this.#closed) return;
    this.#closed = reason;
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.reject(this.#closedError(p.command));
    }
    for (const w of [...this.#waiters]) {
      w.cleanup();
      w.reject(this.#closedError(`waiting for ${w.name}`));
    }
    this.#socket.destroy();
    this.emit('close', reason);
  }
}

/** The fd under a connected `net.Socket` (libuv's pipe handle exposes it on Unix). */
function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the QMP socket has no fd to send SCM_RIGHTS on');
  return fd;
}

function parseGreeting(path: string, line: string): QmpGreeting {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    throw new QmpProtocolError('ERR_QMP_NOT_QMP', path, `the socket's first message is not JSON: ${JSON.stringify(line.slice(0, 80))}`);
  }
  if (!v.isPlainObject(msg) || !v.isPlainObject(msg.QMP)) {
    throw new QmpProtocolError('ERR_QMP_NOT_QMP', path, `the socket's first message is not a QMP greeting: ${line.slice(0, 80)}`);
  }
  const q = msg.QMP;
  const ver = v.isPlainObject(q.version) && v.isPlainObject(q.version.qemu) ? q.version.qemu : null;
  const num = (x: unknown): number | null => (typeof x === 'number' && Number.isInteger(x) && x >= 0 ? x : null);
  const major = num(ver?.major);
  const minor = num(ver?.minor);
  const micro = num(ver?.micro);
  if (major === null || minor === null || micro === null) {
    throw new QmpProtocolError('ERR_QMP_UNSUPPORTED', path, `a QMP greeting without a QEMU version: ${line.slice(0, 120)}`);
  }
  if (major < QMP_MIN_QEMU.major || (major === QMP_MIN_QEMU.major && minor < QMP_MIN_QEMU.minor)) {
    throw new QmpProtocolError('ERR_QMP_UNSUPPORTED', path, `QEMU ${major}.${minor}.${micro} is older than ${QMP_MIN_QEMU.major}.${QMP_MIN_QEMU.minor}`);
  }
  const pkg = v.isPlainObject(q.version) && typeof q.version.package === 'string' ? q.version.package.trim() : '';
  const caps = Array.isArray(q.capabilities) ? q.capabilities.filter((c): c is string => typeof c === 'string') : [];
  return { version: { major, minor, micro }, package: pkg, capabilities: caps };
}

/**
 * Connects to QEMU's QMP socket (`-qmp unix:PATH,server=on,wait=off` or `-chardev socket,…` + `-mon mode=control`),
 * checks the greeting and negotiates capabilities (`qmp_capabilities`, none enabled). QEMU serves one client per QMP
 * socket: while another is connected, this one gets no greeting and fails `ERR_QMP_NOT_QMP` after the timeout.
 *
 * Equivalent to: `qmp-shell PATH` / `socat - UNIX-CONNECT:PATH` and typing `{"execute": "qmp_capabilities"}`.
 *
 * @example
 * ```ts
 * await using qmp = await connectQmp('/run/vm1/qmp.sock');
 * console.log(qmp.greeting.version, await qmp.execute('query-status'));
 * ```
 * @throws Node's `SystemError` (`ENOENT`, `ECONNREFUSED`, `EACCES`) when the socket cannot be connected;
 *   {@link QmpProtocolError} `ERR_QMP_NOT_QMP`, `ERR_QMP_UNSUPPORTED`, `ERR_QMP_TIMEOUT`, `ERR_QMP_CLOSED`;
 *   {@link QmpError} when QEMU refuses the negotiation.
 */
export async function connectQmp(path: string, options?: QmpConnectOptions): Promise<QmpClient> {
  if (typeof path !== 'string' || path.length === 0 || Buffer.byteLength(path) >= 108 || path.includes('\0')) {
    throw invalidType('path', 'a Unix socket path (under 108 bytes)', path);
  }
  const opts = v.options('options', options);
  v.knownKeys('options', opts, ['timeoutMs']);
  const timeoutMs = opts.timeoutMs === undefined ? 5000 : v.integer('timeoutMs', opts.timeoutMs, 1, 2 ** 31 - 1);
  const deadline = Date.now() + timeoutMs;
  const socket = createConnection({ path });
  let greeting: QmpGreeting;
  let rest: string;
  try {
    ({ greeting, rest } = await new Promise<{ greeting: QmpGreeting; rest: string }>((resolve, reject) => {
      let buf = '';
      const done = (): void => {
        // Paused until the client's own reader is attached, so no byte after the greeting is dropped.
        socket.pause();
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('close', onClose);
      };
      const onData = (chunk: Buffer): void => {
        buf += chunk.toString('utf8');
        const nl = buf.indexOf('\n');
        if (nl < 0) {
          if (buf.length > 64 * 1024) {
            done();
            reject(new QmpProtocolError('ERR_QMP_NOT_QMP', path, 'the socket sent 64 KiB without a line break'));
          }
          return;
        }
        done();
        try {
          resolve({ greeting: parseGreeting(path, buf.slice(0, nl).trim()), rest: buf.slice(nl + 1) });
        } catch (e) {
          reject(e);
        }
      };
      const onError = (e: Error): void => {
        done();
        reject(e);
      };
      const onClose = (): void => {
        done();
        reject(new QmpProtocolError('ERR_QMP_NOT_QMP', path, 'the socket closed without a QMP greeting'));
      };
      const timer = setTimeout(() => {
        done();
        reject(new QmpProtocolError('ERR_QMP_NOT_QMP', path, `no QMP greeting within ${timeoutMs} ms (is another client connected? QEMU serves one per socket)`));
      }, timeoutMs);
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);
    }));
  } catch (e) {
    socket.destroy();
    if (e instanceof Error && !(e instanceof QmpProtocolError)) Error.captureStackTrace(e, connectQmp);
    throw e;
  }
  const client = new QmpClient(socket, path, greeting, rest);
  try {
    await client.execute('qmp_capabilities', undefined, { timeoutMs: Math.max(1, deadline - Date.now()) });
  } catch (e) {
    await client.close();
    throw e;
  }
  return client;
}

/** @internal The `qmp` argument of the QEMU calls: a {@link QmpClient}, or a TypeError. */
export function qmpClient(x: unknown): QmpClient {
  if (!(x instanceof QmpClient)) throw invalidType('qmp', 'a QmpClient (from connectQmp)', x);
  return x;
}

/** @internal The ids of QEMU's devices that have one (QOM: they live in `/machine/peripheral`). */
export async function peripheralIds(qmp: QmpClient): Promise<string[]> {
  const children = await qmp.execute('qom-list', { path: '/machine/peripheral' });
  return (Array.isArray(children) ? children : [])
    .filter((c): c is { name: string; type: string } => v.isPlainObject(c) && typeof c.name === 'string' && typeof c.type === 'string' && c.type.startsWith('child<'))
    .map((c) => c.name);
}

/** @internal Refuses a QMP-visible id QEMU would reject (`id_wellformed`: a letter, then letters, digits, `-._`). */
export function qemuId(option: string, x: unknown): string {
  if (typeof x !== 'string') throw invalidType(option, 'a QEMU id (a letter, then letters, digits, "-", ".", "_")', x);
  if (!/^[A-Za-z][A-Za-z0-9._-]{0,127}$/.test(x)) throw invalidValue(option, 'must be a QEMU id: a letter, then up to 127 letters, digits, "-", ".", "_"', x);
  return x;
}

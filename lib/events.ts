/**
 * Link events: {@link watchLinks} (an async iterator) and {@link linkEvents} (an EventEmitter over it).
 *
 * The addon only owns the socket: a non-blocking `NETLINK_ROUTE` socket joined to `RTNLGRP_LINK`, watched by a libuv
 * poll handle, dumped once right after it subscribed (so nothing falls in between) and again whenever a batch
 * handler asks, handing decoded messages over in batches. It is a handle like a tap queue's fd (`binding.d.ts`):
 * `fdClose` ends it, and so does the environment's exit. Everything else is here: when to dump again, the
 * reconciliation of dump and notifications, the resync after `ENOBUFS`, and what changed between two states of a link.
 */
import { EventEmitter } from 'node:events';
import type { NativeLinkWatchItem } from '../binding.js';
import { binding } from './binding.js';
import { abortError, callNative, fromNative, invalidValue } from './errors.js';
import { copyLinkInfo } from './linkinfo.js';
import type { LinkChange, LinkEvent, LinkInfo, WatchLinksOptions } from './types.js';
import * as v from './validate.js';

const WATCH_ABORTED = 'The link watcher was aborted';

const DEFAULT_RECEIVE_BUFFER = 64 * 1024;

/** The public view of a native link, with the lower device's name taken from the same namespace's known links. */
function publicInfo(n: LinkInfo, known: Map<number, LinkInfo>): LinkInfo {
  return copyLinkInfo(n, n.lower && n.lower.netnsid === null ? known.get(n.lower.ifindex)?.name ?? null : undefined);
}

/** What differs between two states of one link, in a fixed order. @internal */
export function linkChanges(a: LinkInfo, b: LinkInfo): LinkChange[] {
  const out: LinkChange[] = [];
  if (a.up !== b.up) out.push('up');
  if (a.operstate !== b.operstate) out.push('operstate');
  if (a.carrier !== b.carrier) out.push('carrier');
  if (a.promisc !== b.promisc) out.push('promisc');
  if (a.flags !== b.flags) out.push('flags');
  if (a.mtu !== b.mtu) out.push('mtu');
  if (a.mac !== b.mac) out.push('mac');
  if (a.name !== b.name) out.push('name');
  if ((a.lower?.ifindex ?? null) !== (b.lower?.ifindex ?? null) || (a.lower?.netnsid ?? null) !== (b.lower?.netnsid ?? null)) out.push('lower');
  if (a.master !== b.master) out.push('master');
  if (a.alias !== b.alias) out.push('alias');
  if (a.group !== b.group) out.push('group');
  if (a.txqlen !== b.txqlen) out.push('txqlen');
  return out;
}

/**
 * A running link watcher: an async iterator of {@link LinkEvent}s. Ending it (`break` out of `for await`,
 * {@link LinkWatcher.return}, {@link LinkWatcher.close} or the `signal`) closes its socket and libuv handle, after
 * which nothing of it keeps the process alive.
 */
export class LinkWatcher implements AsyncIterableIterator<LinkEvent> {
  /** The addon's handle of the watcher (its socket's fd), once `linkWatch` resolved; null before and once released. */
  #handle: number | null = null;
  #closed = false;
  #error: unknown = null;
  #queue: LinkEvent[] = [];
  #waiters: { resolve: (r: IteratorResult<LinkEvent>) => void; reject: (e: unknown) => void }[] = [];
  /** The last known state of every link of the namespace (all kinds: lower names are resolved from it). */
  #state = new Map<number, LinkInfo>();
  /**
   * The state being rebuilt from a dump plus the notifications that arrive while it runs; null when not dumping. The
   * addon dumps once as soon as it watches, so the first dump is running from the start.
   */
  #building: Map<number, LinkInfo> | null = new Map();
  /** Whether the running dump's first part has arrived (see #onBatch). */
  #dumpStarted = false;
  #ready = false;
  #resyncPending = false;
  readonly #kinds: Set<string | null> | null;
  readonly #snapshot: boolean;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#fail(abortError(WATCH_ABORTED, this.#signal as AbortSignal));

  /** @internal Use {@link watchLinks}. */
  constructor(opts: { ns: string | number | null; kinds: (string | null)[] | null; snapshot: boolean; rcvbuf: number; signal?: AbortSignal }) {
    this.#kinds = opts.kinds && new Set(opts.kinds);
    this.#snapshot = opts.snapshot;
    this.#signal = opts.signal;
    if (this.#signal?.aborted) {
      this.#error = abortError(WATCH_ABORTED, this.#signal);
      this.#closed = true;
      return;
    }
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
    callNative(() => binding.linkWatch(opts.ns, { rcvbuf: opts.rcvbuf }, (batch) => this.#onBatch(batch))).then(
      (handle) => {
        if (this.#closed) {
          binding.fdClose(handle);
          return;
        }
        this.#handle = handle;
      },
      (e: unknown) => this.#fail(e),
    );
  }

  /** `true` once the watcher has ended (closed, aborted or failed). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The next event; `{ done: true }` once closed; rejects with the error that ended the watcher. */
  next(): Promise<IteratorResult<LinkEvent>> {
    const event = this.#queue.shift();
    if (event) return Promise.resolve({ value: event, done: false });
    if (this.#error !== null) {
      const e = this.#error;
      this.#error = null; // reported once, then the iterator is simply done
      return Promise.reject(e);
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Closes the watcher (what `break` in `for await` calls). */
  return(): Promise<IteratorResult<LinkEvent>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Closes the socket and the libuv handle; queued events are dropped. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#release();
    for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Same as {@link LinkWatcher.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #release(): void {
    this.#signal?.removeEventListener('abort', this.#onAbort);
    if (this.#handle !== null) binding.fdClose(this.#handle);
    this.#handle = null;
  }

  #fail(e: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    this.#release();
    const waiters = this.#waiters.splice(0);
    if (waiters.length === 0) this.#error = e;
    for (const w of waiters) w.reject(e);
  }

  /** A new dump is about to run (asked for by returning `true` from the batch handler): its state starts empty. */
  #startDump(): void {
    this.#building = new Map();
    this.#dumpStarted = false;
  }

  #wanted(kind: string | null): boolean {
    return this.#kinds === null || this.#kinds.has(kind);
  }

  #push(event: LinkEvent): void {
    const w = this.#waiters.shift();
    if (w) w.resolve({ value: event, done: false });
    else this.#queue.push(event);
  }

  /** One batch from the addon; returns `true` to have it dump again once the batch is handled. */
  #onBatch(batch: NativeLinkWatchItem[]): boolean {
    let dump = false;
    for (const item of batch) {
      if (this.#closed) return false;
      switch (item.type) {
        case 'dump':
          this.#dumpStarted = true;
          this.#building?.set(item.link.ifindex, item.link);
          break;
        // While a dump runs, notifications read after its first part are part of the state it builds (socket order
        // is the kernel's order: each is newer than the dump parts before it). Those read before its first part are
        // older than the whole dump, which supersedes them — and after an overrun they may be followed by lost ones
        // (the kernel reports ENOBUFS before the datagrams still queued), so they must not be trusted.
        case 'new':
          if (!this.#building) this.#apply(item.link);
          else if (this.#dumpStarted) this.#building.set(item.link.ifindex, item.link);
          break;
        case 'del':
          if (!this.#building) this.#remove(item.link);
          else if (this.#dumpStarted) this.#building.delete(item.link.ifindex);
          break;
        case 'done':
          if (item.intr) {
            // The table changed under the dump: its parts may be inconsistent.
            this.#startDump();
            dump = true;
          } else {
            this.#reconcile();
          }
          break;
        case 'overrun':
          // Notifications were lost: only a fresh dump (superseding one that runs) tells the truth again.
          if (this.#ready) this.#resyncPending = true;
          this.#startDump();
          dump = true;
          break;
        case 'error':
          this.#fail(fromNative(item.error));
          return false;
      }
    }
    return dump;
  }

  #apply(n: LinkInfo): void {
    const prev = this.#state.get(n.ifindex);
    this.#state.set(n.ifindex, n);
    if (!this.#wanted(n.kind)) return;
    const link = publicInfo(n, this.#state);
    if (!prev) {
      this.#push({ type: 'added', link, snapshot: false });
      return;
    }
    const previous = publicInfo(prev, this.#state);
    const changes = linkChanges(previous, link);
    if (changes.length > 0) this.#push({ type: 'changed', link, previous, changes });
  }

  #remove(n: LinkInfo): void {
    const prev = this.#state.get(n.ifindex);
    if (!prev) return; // never known (e.g. deleted before the dump reached it): nothing to report
    this.#state.delete(n.ifindex);
    if (this.#wanted(prev.kind)) this.#push({ type: 'removed', link: publicInfo(n, this.#state) });
  }

  /** The dump is complete: report how it differs from what we knew, then go on with notifications. */
  #reconcile(): void {
    const next = this.#building ?? new Map<number, LinkInfo>();
    const old = this.#state;
    this.#building = null;
    this.#state = next;
    if (!this.#ready) {
      this.#ready = true;
      if (this.#snapshot) {
        for (const n of next.values()) {
          if (this.#wanted(n.kind)) this.#push({ type: 'added', link: publicInfo(n, next), snapshot: true });
        }
      }
      this.#push({ type: 'ready' });
      return;
    }
    if (this.#resyncPending) this.#push({ type: 'resync' });
    this.#resyncPending = false;
    for (const [ifindex, prev] of old) {
      if (!next.has(ifindex) && this.#wanted(prev.kind)) this.#push({ type: 'removed', link: publicInfo(prev, old) });
    }
    for (const [ifindex, n] of next) {
      if (!this.#wanted(n.kind)) continue;
      const prev = old.get(ifindex);
      const link = publicInfo(n, next);
      if (!prev) {
        this.#push({ type: 'added', link, snapshot: false });
        continue;
      }
      const previous = publicInfo(prev, old);
      const changes = linkChanges(previous, link);
      if (changes.length > 0) this.#push({ type: 'changed', link, previous, changes });
    }
  }
}

const WATCH_KEYS = ['netns', 'kinds', 'snapshot', 'signal', 'receiveBuffer'] as const;

function watchOptions(options: WatchLinksOptions | undefined): ConstructorParameters<typeof LinkWatcher>[0] {
  const opts = v.options('options', options);
  v.knownKeys('options', opts, WATCH_KEYS);
  let kinds: (string | null)[] | null = null;
  if (opts.kinds !== undefined) {
    if (!Array.isArray(opts.kinds) || !opts.kinds.every((k) => k === null || (typeof k === 'string' && /^[a-z0-9_.-]{1,31}$/i.test(k)))) {
      throw invalidValue('kinds', 'must be an array of link kinds such as "macvtap" (or null for links without one)', opts.kinds);
    }
    kinds = [...opts.kinds];
  }
  const snapshot = opts.snapshot === undefined ? false : v.bool('snapshot', opts.snapshot);
  const signal = v.signal(opts);
  const rcvbuf = opts.receiveBuffer === undefined ? DEFAULT_RECEIVE_BUFFER : v.integer('receiveBuffer', opts.receiveBuffer, 1024, 0x7fff_ffff);
  const out: ConstructorParameters<typeof LinkWatcher>[0] = { ns: v.nsOf(opts), kinds, snapshot, rcvbuf };
  if (signal !== undefined) out.signal = signal;
  return out;
}

/**
 * Watches a namespace's links: an async iterator of `added`, `removed`, `changed` (with what changed), `resync` and
 * `ready` events, from an `RTNLGRP_LINK` subscription. The subscription is made first and the links are dumped on the
 * same socket second, so with `snapshot: true` the current links come first, then every later change, with no gap
 * and no duplicate. When the kernel drops notifications (`ENOBUFS`) the watcher dumps again and reports `resync`
 * followed by the differences. The socket is read whenever the event loop runs, and events wait in memory until
 * `next()` takes them: a consumer that stops calling `next()` without closing the watcher lets that queue grow.
 *
 * Equivalent to: `ip monitor link` (plus `ip link show` first with `snapshot`).
 *
 * @example
 * ```ts
 * for await (const ev of watchLinks({ netns: netnsPath('lab'), kinds: ['macvtap'], snapshot: true })) {
 *   if (ev.type === 'changed' && ev.changes.includes('carrier')) console.log(ev.link.name, ev.link.carrier);
 * }
 * ```
 * @throws TypeError/RangeError for bad options, at once. The iterator rejects with a {@link MacvtapError} when the
 *   socket cannot be made (`ENOENT` for a missing namespace path, `EPERM`) or fails later, and with an `AbortError`
 *   when `signal` aborts.
 */
export function watchLinks(options?: WatchLinksOptions): LinkWatcher {
  return new LinkWatcher(watchOptions(options));
}

/**
 * The events of {@link watchLinks} as an EventEmitter: `'added'`, `'removed'`, `'changed'`, `'resync'`, `'ready'`
 * (each with its {@link LinkEvent}), `'event'` for every one of them, `'error'`, and `'close'` once it has ended.
 */
export class LinkEventEmitter extends EventEmitter {
  readonly #watcher: LinkWatcher;

  /** @internal Use {@link linkEvents}. */
  constructor(watcher: LinkWatcher) {
    super();
    this.#watcher = watcher;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      for await (const ev of this.#watcher) {
        this.emit(ev.type, ev);
        this.emit('event', ev);
      }
    } catch (e) {
      this.emit('error', e);
    }
    this.emit('close');
  }

  /** Closes the underlying watcher (its socket and libuv handle). Idempotent. */
  close(): void {
    this.#watcher.close();
  }
}

/**
 * {@link watchLinks} as an EventEmitter (see {@link LinkEventEmitter}). Listen for `'error'`: without a listener a
 * failure is thrown as an uncaught exception, as for any EventEmitter.
 */
export function linkEvents(options?: WatchLinksOptions): LinkEventEmitter {
  return new LinkEventEmitter(watchLinks(options));
}

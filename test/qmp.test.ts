/**
 * The QMP client against a real QEMU (`-machine none`, TCG: no guest, starts in ≈50 ms): greeting and negotiation,
 * commands and QEMU's refusals, events, fds sent with `getfd` (checked in QEMU's own fd table), timeouts, QEMU dying
 * with a call pending, and sockets that are not QMP (small servers of our own: QEMU cannot be made to greet wrongly).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { connectQmp, QmpError, QmpProtocolError, type QmpClient } from '../lib/index.js';
import { QEMU, qemuUnavailable } from '../bench/testbed/qemu.js';
import { cleanupStack, describeNeeding } from './helpers/suite.js';
import { qmpQemu, type QmpQemu } from './helpers/qemu.js';

const defer = cleanupStack();

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mvt-qmp-'));
  defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A QEMU with no machine and a QMP socket; killed by pid after the test. */
const bareQemu = (): Promise<QmpQemu> => qmpQemu(defer, { machine: 'none' });

async function connect(sock: string): Promise<QmpClient> {
  const qmp = await connectQmp(sock);
  defer(() => qmp.close());
  return qmp;
}

/** QEMU's open fds: number → link target. */
function fdTable(pid: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      m.set(fd, readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // Closed meanwhile.
    }
  }
  return m;
}

/** A Unix socket server of our own that writes `greeting` (if any) to every client. */
function fakeServer(dir: string, greeting: string | null): Promise<string> {
  const path = join(dir, 'fake.sock');
  const server: Server = createServer((c) => {
    c.on('error', () => undefined);
    if (greeting !== null) c.write(greeting);
  });
  defer(() => new Promise<void>((r) => server.close(() => r())));
  return new Promise((r) => server.listen(path, () => r(path)));
}

describeNeeding('QMP client', qemuUnavailable(), () => {
  it('greets with QEMU\'s version, negotiates, runs commands, and QEMU\'s refusals become QmpError with class and desc', async () => {
    const { sock } = await bareQemu();
    const qmp = await connect(sock);
    const banner = spawnSync(QEMU, ['--version'], { encoding: 'utf8' }).stdout;
    const [, major, minor, micro] = /version (\d+)\.(\d+)\.(\d+)/.exec(banner)!;
    expect(qmp.greeting.version).toEqual({ major: Number(major), minor: Number(minor), micro: Number(micro) });
    expect(banner).toContain(qmp.greeting.package);
    expect(await qmp.execute('query-status')).toMatchObject({ status: 'running', running: true });
    // Several commands in flight at once: each reply reaches its own caller (ids).
    const [a, b] = await Promise.all([qmp.execute('query-name'), qmp.execute('query-version')]);
    expect(a).toEqual({});
    expect(b).toMatchObject({ qemu: qmp.greeting.version });
    const err = await qmp.execute('no-such-command').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect(err).toMatchObject({ code: 'ERR_QMP_COMMAND', class: 'CommandNotFound', command: 'no-such-command' });
    expect((err as QmpError).desc).toMatch(/no-such-command/);
    await expect(qmp.execute('closefd', { fdname: 'never-added' })).rejects.toMatchObject({ class: 'GenericError' });
    // The session survives a refusal.
    expect(await qmp.execute('query-status')).toMatchObject({ status: 'running' });
  });

  it('sends an fd with getfd over SCM_RIGHTS: QEMU\'s fd table gains that file, closefd removes it, ours stays open', async () => {
    const { pid, sock, dir } = await bareQemu();
    const qmp = await connect(sock);
    const file = join(dir, 'marker-file');
    writeFileSync(file, 'x');
    const fd = openSync(file, 'r');
    defer(() => closeSync(fd));
    const before = fdTable(pid);
    expect([...before.values()]).not.toContain(file);
    expect(await qmp.execute('getfd', { fdname: 'marker' }, { fds: [fd] })).toEqual({});
    const during = fdTable(pid);
    expect([...during.values()].filter((t) => t === file)).toHaveLength(1);
    expect(during.size).toBe(before.size + 1);
    // Without an fd QEMU refuses getfd: what our fd-less writes look like to it.
    await expect(qmp.execute('getfd', { fdname: 'none' })).rejects.toMatchObject({ class: 'GenericError', desc: expect.stringMatching(/SCM_RIGHTS/) });
    await qmp.execute('closefd', { fdname: 'marker' });
    expect(fdTable(pid)).toEqual(before);
    expect(readlinkSync(`/proc/self/fd/${fd}`)).toBe(file);
  });

  it('events: waitEvent resolves on the matching event only, emits by name, times out, and aborts', async () => {
    const { sock } = await bareQemu();
    const qmp = await connect(sock);
    const seen: string[] = [];
    qmp.on('event', (e: { event: string }) => seen.push(e.event));
    const named: unknown[] = [];
    qmp.on('STOP', (e) => named.push(e));
    // A predicate that never holds must not be satisfied by the event, a plain one must.
    const never = qmp.waitEvent('STOP', () => false, 300);
    const stop = qmp.waitEvent('STOP', (d) => typeof d === 'object', 5000);
    await qmp.execute('stop');
    const ev = await stop;
    expect(ev).toMatchObject({ event: 'STOP', data: {} });
    expect(ev.timestamp.seconds).toBeGreaterThan(1_600_000_000);
    await expect(never).rejects.toMatchObject({ code: 'ERR_QMP_TIMEOUT' });
    expect(named).toHaveLength(1);
    const resume = qmp.waitEvent('RESUME', undefined, { timeoutMs: 5000 });
    await qmp.execute('cont');
    await resume;
    expect(seen).toEqual(['STOP', 'RESUME']);
    const ac = new AbortController();
    const aborted = qmp.waitEvent('SHUTDOWN', undefined, { signal: ac.signal });
    ac.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('a reply that does not come in time is ERR_QMP_TIMEOUT; the late reply is dropped and the session goes on', async () => {
    const { pid, sock } = await bareQemu();
    const qmp = await connect(sock);
    process.kill(pid, 'SIGSTOP');
    const t0 = performance.now();
    await expect(qmp.execute('query-status', undefined, { timeoutMs: 200 })).rejects.toMatchObject({ code: 'ERR_QMP_TIMEOUT', command: 'query-status' });
    expect(performance.now() - t0).toBeLessThan(2000);
    process.kill(pid, 'SIGCONT');
    expect(await qmp.execute('query-name')).toEqual({});
  });

  it('QEMU dying with a call and an event wait pending rejects both with ERR_QMP_CLOSED (no hang), and emits close', async () => {
    const { pid, sock, child } = await bareQemu();
    const qmp = await connect(sock);
    const closed = new Promise((r) => qmp.once('close', r));
    // Stopped, QEMU cannot answer: the call is really pending when it dies.
    process.kill(pid, 'SIGSTOP');
    const call = qmp.execute('query-status', undefined, { timeoutMs: 60_000 });
    const wait = qmp.waitEvent('DEVICE_DELETED', undefined, 60_000);
    await new Promise((r) => setTimeout(r, 100));
    process.kill(pid, 'SIGKILL');
    const t0 = performance.now();
    await expect(call).rejects.toMatchObject({ name: 'QmpProtocolError', code: 'ERR_QMP_CLOSED', command: 'query-status' });
    await expect(wait).rejects.toMatchObject({ code: 'ERR_QMP_CLOSED' });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(await closed).toMatchObject({ code: 'ERR_QMP_CLOSED' });
    expect(qmp.closed).toBe(true);
    await expect(qmp.execute('query-status')).rejects.toMatchObject({ code: 'ERR_QMP_CLOSED' });
    await new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
  });

  it('close() rejects pending calls, is idempotent, and leaves QEMU serving the next client', async () => {
    const { pid, sock } = await bareQemu();
    const qmp = await connectQmp(sock);
    process.kill(pid, 'SIGSTOP');
    const call = expect(qmp.execute('query-status')).rejects.toMatchObject({ code: 'ERR_QMP_CLOSED' });
    await qmp.close();
    await qmp.close();
    await call;
    process.kill(pid, 'SIGCONT');
    const again = await connect(sock);
    expect(await again.execute('query-status')).toMatchObject({ running: true });
  });

  it('a second client while one is connected gets no greeting: ERR_QMP_NOT_QMP after the timeout', async () => {
    const { sock } = await bareQemu();
    await connect(sock);
    await expect(connectQmp(sock, { timeoutMs: 300 })).rejects.toMatchObject({ name: 'QmpProtocolError', code: 'ERR_QMP_NOT_QMP', message: expect.stringMatching(/another client/) });
  });

  it('a socket that is not QMP, or an old or versionless QEMU greeting, is a typed error before any command', async () => {
    const dir = tempDir();
    await expect(connectQmp(await fakeServer(dir, 'SSH-2.0-OpenSSH_9.2\r\n'))).rejects.toMatchObject({ code: 'ERR_QMP_NOT_QMP' });
    rmSync(join(dir, 'fake.sock'), { force: true });
    await expect(connectQmp(await fakeServer(dir, '{"hello": 1}\n'))).rejects.toMatchObject({ code: 'ERR_QMP_NOT_QMP' });
    rmSync(join(dir, 'fake.sock'), { force: true });
    const old = JSON.stringify({ QMP: { version: { qemu: { micro: 0, minor: 11, major: 2 }, package: '' }, capabilities: [] } });
    await expect(connectQmp(await fakeServer(dir, old + '\r\n'))).rejects.toMatchObject({ code: 'ERR_QMP_UNSUPPORTED', message: expect.stringMatching(/2\.11\.0 is older than 4\.2/) });
    rmSync(join(dir, 'fake.sock'), { force: true });
    await expect(connectQmp(await fakeServer(dir, '{"QMP": {"capabilities": []}}\n'))).rejects.toMatchObject({ code: 'ERR_QMP_UNSUPPORTED' });
    rmSync(join(dir, 'fake.sock'), { force: true });
    await expect(connectQmp(await fakeServer(dir, null), { timeoutMs: 200 })).rejects.toMatchObject({ code: 'ERR_QMP_NOT_QMP' });
    await expect(connectQmp(join(dir, 'absent.sock'))).rejects.toMatchObject({ code: 'ENOENT', syscall: 'connect' });
  });

  it('refuses bad input before anything is sent', async () => {
    const { sock } = await bareQemu();
    const qmp = await connect(sock);
    await expect(qmp.execute('bad name')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(qmp.execute('query-status', [] as never)).rejects.toThrow(TypeError);
    await expect(qmp.execute('query-status', undefined, { timeout: 5 } as never)).rejects.toThrow(/timeout/);
    await expect(qmp.execute('getfd', { fdname: 'x' }, { fds: [] })).rejects.toThrow(/fds/);
    await expect(qmp.waitEvent('STOP', undefined, { later: true } as never)).rejects.toThrow(/later/);
    // Nothing of that reached QEMU: the session is intact.
    expect(await qmp.execute('query-status')).toMatchObject({ running: true });
    await expect(connectQmp(sock, { wait: 1 } as never)).rejects.toThrow(/wait/);
    await expect(connectQmp('')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(QmpProtocolError).toBeTypeOf('function');
  });
});

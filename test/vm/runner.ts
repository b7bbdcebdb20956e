/**
 * `node test/vm/run.mjs [options] [--] [vitest args…]`: runs the project's tests (or any command) as root on a second
 * kernel — Debian's generic 6.1 LTS — in a QEMU TCG guest whose userland is the host's own root filesystem (read-only
 * over virtio-9p, under a tmpfs overlay), with the project directory shared read-write. The command's output streams
 * to stdout; the runner exits with the command's exit status.
 *
 * Exit statuses of its own: 2 bad usage, 3 the guest cannot be had (no QEMU, no kernel package, no built project),
 * 4 the guest never reported a status (boot failure, crash), 124 timeout (the guest's watchdog, which first prints
 * what every task is doing, or ours), 130 interrupted.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildInitramfs } from './initramfs.js';
import { type PreparedKernel, kernelPackage, prepareKernel } from './kernel.js';

/** The project directory, shared read-write into the guest at the same path. */
export const projectDir = resolve(import.meta.dirname, '..', '..');

/** What one invocation asks for. */
export interface VmOptions {
  /** Whole run (fetch, boot, command), seconds. */
  timeout: number;
  /** A `linux-image-*` package; default: what `linux-image-amd64` depends on. */
  kernel?: string;
  /** A shell command line run in the project directory instead of vitest. */
  cmd?: string;
  /** Extra `KEY=VALUE` for the command's environment (on top of `CI=true`, `HOME`, `PATH`, `LANG`, `NO_COLOR`/`TERM`). */
  env: string[];
  memoryMiB: number;
  cpus: number;
  /** Arguments for `vitest run` (ignored with `cmd`). */
  vitestArgs: string[];
}

const usage = `usage: node test/vm/run.mjs [--timeout SEC] [--kernel PKG] [--env KEY=VALUE]… [--memory MIB] [--smp N]
                           [--cmd 'COMMAND LINE' | [--] VITEST_ARGS…]
Runs 'vitest run VITEST_ARGS' (or COMMAND LINE, with bash, in ${projectDir}) as root in a QEMU guest booting Debian's
generic 6.1 kernel on this machine's own root filesystem. Default timeout 1500 s, memory 2048 MiB, 2 vCPUs.`;

class UsageError extends Error {}

/** Parses the command line: its own options, anything else (files, `--reporter=…`, everything after `--`) goes to vitest. */
export function parseArgs(argv: string[]): VmOptions {
  const o: VmOptions = { timeout: 1500, env: [], memoryMiB: 2048, cpus: 2, vitestArgs: [] };
  const num = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} needs an integer ≥ ${min}, got ${v ?? 'nothing'}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--') {
      o.vitestArgs.push(...argv.slice(i + 1));
      break;
    } else if (a === '--timeout') o.timeout = num(a, value(), 1);
    else if (a === '--kernel') o.kernel = value();
    else if (a === '--cmd') o.cmd = value();
    else if (a === '--env') {
      const kv = value();
      if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(kv)) throw new UsageError(`--env needs KEY=VALUE, got ${kv}`);
      o.env.push(kv);
    } else if (a === '--memory') o.memoryMiB = num(a, value(), 512);
    else if (a === '--smp') o.cpus = num(a, value(), 1);
    else if (a === '-h' || a === '--help') throw new UsageError('');
    else o.vitestArgs.push(a);
  }
  if (o.cmd !== undefined && o.vitestArgs.length > 0) throw new UsageError('--cmd and vitest arguments exclude each other');
  return o;
}

/** Single-quotes for bash. */
function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `qemu-system-x86_64`'s path, or an explanation of how to get it. */
function findQemu(): string {
  const r = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (r.status !== 0 || !path) throw new SetupError('qemu-system-x86_64 not found: apt-get install --no-install-recommends qemu-system-x86');
  return path;
}

class SetupError extends Error {}

/** The argument vector for QEMU: TCG, PVH boot of vmlinux, three 9p shares, hvc0 and ttyS0 to files. */
export function qemuArgs(k: PreparedKernel, initrd: string, ctl: string, o: VmOptions): string[] {
  const share = (id: string, path: string, readonly: boolean): string[] => [
    '-fsdev',
    `local,id=${id},path=${path},security_model=none,multidevs=remap${readonly ? ',readonly=on' : ''}`,
    '-device',
    `virtio-9p-pci,fsdev=${id},mount_tag=${id}`,
  ];
  return [
    '-accel', 'tcg', '-cpu', 'max', '-smp', String(o.cpus), '-m', String(o.memoryMiB),
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    '-kernel', k.vmlinux, '-initrd', initrd,
    // pci=noacpi: the PCI devices are found without walking ACPI tables (slow under TCG). Arguments after `--`
    // are init's: the project, the module tree to bind-mount, the kernel version.
    '-append', `console=ttyS0 loglevel=4 pci=noacpi tsc=reliable mitigations=off panic=-1 -- ${projectDir} ${k.modules} ${k.version}`,
    '-serial', `file:${join(ctl, 'serial.log')}`,
    '-chardev', `file,id=hvc,path=${join(ctl, 'console.log')}`,
    '-device', 'virtio-serial-pci', '-device', 'virtconsole,chardev=hvc',
    ...share('hostroot', '/', true),
    ...share('project', projectDir, false),
    ...share('vmctl', join(ctl, 'share'), false),
    '-nic', 'none',
  ];
}

/** Runs one guest; resolves to the process exit status. Prints progress and timings on stderr. */
export async function runVm(o: VmOptions): Promise<number> {
  const t0 = Date.now();
  const deadline = t0 + o.timeout * 1000;
  const say = (msg: string): void => void process.stderr.write(`mvt-vm: ${msg}\n`);

  const qemu = findQemu();
  if (/\s/.test(projectDir)) throw new SetupError(`whitespace in ${projectDir}: the kernel command line cannot carry it`);
  // The guest loads whatever node-gyp-build finds here: a local build, else the prebuild.
  const addon = [join('build', 'Release', 'macvtap.node'), join('prebuilds', 'linux-x64', 'macvtap.node')];
  if (!existsSync(join(projectDir, 'dist', 'lib', 'index.js')) || !addon.some((a) => existsSync(join(projectDir, a)))) {
    throw new SetupError(`the project is not built (dist/lib/index.js, and ${addon.join(' or ')}): run npm run compile first`);
  }
  let kernel: PreparedKernel;
  let initrd: string;
  try {
    const pkg = kernelPackage(o.kernel);
    kernel = prepareKernel(pkg);
    initrd = buildInitramfs(kernel);
  } catch (e) {
    throw new SetupError(`cannot prepare the guest kernel: ${(e as Error).message}`);
  }
  say(`kernel ${kernel.version} (${kernel.pkg}) ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const ctl = mkdtempSync(join(tmpdir(), 'mvt-vm-'));
  const shareDir = join(ctl, 'share');
  const cleanup = (): void => rmSync(ctl, { recursive: true, force: true });
  try {
    mkdirSync(shareDir);
    const env = ['CI=true', 'HOME=/root', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8'];
    // The guest's hvc0 is a terminal; colours and cursor codes only make sense when ours is one too. Otherwise the
    // guest pipes the command's output (MVT_VM_PIPE, read by guest.sh), so it sees what it would see here.
    env.push(...(process.stdout.isTTY ? ['TERM=xterm-256color'] : ['NO_COLOR=1', 'MVT_VM_PIPE=1']), ...o.env);
    // The guest's own watchdog (guest.sh) fires before ours, so a hang reports what every task was doing and the
    // guest still writes its status; the margin covers boot, the dump and power-off.
    env.push(`MVT_VM_WATCHDOG=${Math.max(10, o.timeout - (o.timeout > 300 ? 90 : 60))}`);
    writeFileSync(join(shareDir, 'env'), env.map((kv) => `${kv.slice(0, kv.indexOf('='))}=${shq(kv.slice(kv.indexOf('=') + 1))}`).join('\n') + '\n');
    const command = o.cmd ?? ['exec', './node_modules/.bin/vitest', 'run', ...o.vitestArgs.map(shq)].join(' ');
    writeFileSync(join(shareDir, 'cmd.sh'), `${command}\n`);
    writeFileSync(join(ctl, 'console.log'), '');
    writeFileSync(join(ctl, 'serial.log'), '');

    const bootT = Date.now();
    const vm = spawn(qemu, qemuArgs(kernel, initrd, ctl, o), { stdio: ['ignore', 'ignore', 'pipe'] });
    let qemuErr = '';
    vm.stderr!.on('data', (d: Buffer) => void (qemuErr += d.toString()));
    // tail follows the console file until QEMU is gone, then prints what is left and exits.
    const tail = spawn('tail', ['-c', '+1', '-f', `--pid=${vm.pid}`, join(ctl, 'console.log')], { stdio: ['ignore', 'inherit', 'inherit'] });

    // Set from the timer or a signal handler while the run is awaited.
    let verdict = 'done' as 'done' | 'timeout' | 'interrupted';
    const stop = (why: 'timeout' | 'interrupted'): void => {
      if (verdict !== 'done' || vm.exitCode !== null) return;
      verdict = why;
      say(why === 'timeout' ? `timeout after ${o.timeout} s: stopping QEMU (pid ${vm.pid})` : `interrupted: stopping QEMU (pid ${vm.pid})`);
      killByPid(vm, 'SIGTERM');
      setTimeout(() => killByPid(vm, 'SIGKILL'), 3000).unref();
    };
    const timer = setTimeout(() => stop('timeout'), Math.max(0, deadline - Date.now()));
    const onSignal = (): void => stop('interrupted');
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // Last resort should this process die some other way: QEMU must not outlive it.
    const onExit = (): void => killByPid(vm, 'SIGKILL');
    process.once('exit', onExit);
    let qemuEnd = 0;
    const [qemuStatus] = await Promise.all([exited(vm).finally(() => (qemuEnd = Date.now())), exited(tail)]);
    process.off('exit', onExit);
    clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);

    if (verdict === 'timeout') {
      const serial = readFileSync(join(ctl, 'serial.log'), 'utf8').trim().split('\n').slice(-60).join('\n');
      if (serial) say(`last kernel/init console lines:\n${serial}`);
      return 124;
    }
    if (verdict === 'interrupted') return 130;
    const codeFile = join(shareDir, 'exit-code');
    if (!existsSync(codeFile)) {
      say(`the guest never reported an exit status (QEMU exit ${qemuStatus})`);
      if (qemuErr.trim()) say(`QEMU said: ${qemuErr.trim()}`);
      const serial = readFileSync(join(ctl, 'serial.log'), 'utf8').trim().split('\n').slice(-40).join('\n');
      say(`last kernel/init console lines:\n${serial}`);
      return 4;
    }
    const rc = Number(readFileSync(codeFile, 'utf8').trim());
    // Guest uptimes (the guest clock runs at wall speed under TCG; 9p mtimes do not help: loose-cache writes reach
    // the host late). Boot = kernel start → command start.
    const uptime = (f: string): number => Number(readFileSync(join(shareDir, f), 'utf8'));
    const boot = uptime('started');
    say(
      `kernel ${kernel.version}: boot ${boot.toFixed(1)} s (guest uptime at command start), command ${(uptime('finished') - boot).toFixed(1)} s, ` +
        `QEMU ran ${((qemuEnd - bootT) / 1000).toFixed(1)} s, total ${((Date.now() - t0) / 1000).toFixed(1)} s, exit ${rc}`,
    );
    return Number.isInteger(rc) ? rc : 4;
  } finally {
    cleanup();
  }
}

/** Signals one process we started, by its PID, if it is still ours to signal. */
function killByPid(p: ChildProcess, sig: NodeJS.Signals): void {
  if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
  try {
    process.kill(p.pid, sig);
  } catch {
    // Already gone between the check and the kill.
  }
}

function exited(p: ChildProcess): Promise<number> {
  return new Promise((res) => {
    if (p.exitCode !== null) return res(p.exitCode);
    p.once('error', () => res(-1));
    p.once('exit', (code, sig) => res(code ?? (sig ? 128 : -1)));
  });
}

/** The CLI: parse, run, exit with the command's status (or the runner's own, documented above). */
export async function main(argv: string[]): Promise<number> {
  let o: VmOptions;
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message ? `mvt-vm: ${e.message}\n` : ''}${usage}\n`);
      return e.message ? 2 : 0;
    }
    throw e;
  }
  try {
    return await runVm(o);
  } catch (e) {
    if (e instanceof SetupError) {
      process.stderr.write(`mvt-vm: ${e.message}\n`);
      return 3;
    }
    throw e;
  }
}

/**
 * Fault injection in the native netlink layer, through vitest: builds and runs native/fuzz/mvt-faults
 * (`npm run test:native`), which feeds NetlinkSocket crafted replies over the Transport seam — truncated messages,
 * wrong sequence numbers and port ids, ENOBUFS, EINTR (also from real signals on a real socket), interrupted dumps,
 * an error inside a multipart reply, MSG_TRUNC, extended acks — and real kernel replies recorded just before (in a
 * throwaway namespace mvt-fuzz-*), each case in its own child process bounded in time. Needs clang-14 (libFuzzer's
 * runtime comes with the fuzz build) and cmake: skipped loudly without them, an error in CI.
 */
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeNeeding } from './helpers/suite.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cxx = process.env.MACVTAP_FUZZ_CXX ?? 'clang++-14';

const missing = (() => {
  if (spawnSync(cxx, ['--version']).status !== 0) {
    return `${cxx} is not installed (apt-get install clang-14 libclang-rt-14-dev)`;
  }
  if (spawnSync('cmake', ['--version']).status !== 0) return 'cmake is not installed';
  return null;
})();

describeNeeding('native fault injection (mvt-faults over the Transport seam)', missing, () => {
  it('every case ends in the right error or a correct retry: no crash, no hang, no wrong answer', () => {
    const r = spawnSync(process.execPath, ['native/fuzz/run.mjs', '--faults'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 10 * 60 * 1000,
    });
    const lines = r.stdout.split('\n');
    const failed = lines.filter((l) => l.startsWith('not ok '));
    const passed = lines.filter((l) => l.startsWith('ok '));
    expect(failed, r.stderr.slice(-4000)).toEqual([]);
    expect(r.status, r.stderr.slice(-4000)).toBe(0);
    const summary = lines.find((l) => l.startsWith('# ') && l.includes(' cases, '));
    expect(summary).toBe(`# ${passed.length} cases, 0 failed`);
    // The cases the fault-injection program was written for must all have run; as root also the real-socket cases and the replay of replies that
    // run.mjs recorded for this run in a throwaway namespace.
    for (const name of [
      'truncated message', 'wrong sequence number', 'wrong port id', 'ENOBUFS on receive', 'EINTR from the transport',
      'EAGAIN after kDumpRetries', 'NLMSG_ERROR inside a multipart reply', 'MSG_TRUNC', 'ack with extack',
      'real socket: recv interrupted by signals', 'recorded dump', 'recorded create with NLM_F_ECHO',
      'recorded refusals', 'one decoding',
    ]) {
      expect(passed.some((l) => l.includes(name)), name).toBe(true);
    }
  }, 10 * 60 * 1000);
});

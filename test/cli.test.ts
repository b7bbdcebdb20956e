/** The `macvtap` command, run as a user would: the compiled CLI in a child process, checked against `ip`. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describePrivileged } from './helpers/suite.js';
import { makeTestbed, type Testbed } from '../bench/testbed/netns.js';

const cli = resolve(import.meta.dirname, '..', 'dist', 'cli', 'macvtap.js');

function macvtap(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

it('is built (npm run build:ts) before these tests run', () => {
  expect(existsSync(cli)).toBe(true);
});

it('prints usage and exits 2 on an unknown command', () => {
  const r = macvtap(['frobnicate']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/unknown command "frobnicate"/);
  expect(r.stderr).toMatch(/Usage: macvtap/);
});

it('rejects bad input with the option named, exit 1, before touching the kernel', () => {
  const r = macvtap(['create', '--lower', 'x', '--name', 'a/b']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/"name" option/);
});

it('bench guest refuses bad counts with usage (exit 2) before building anything', () => {
  const r = macvtap(['bench', 'guest', '--boots', '0']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/--boots takes a positive integer/);
  expect(macvtap(['bench', 'guest', '--help']).stdout).toMatch(/TCG guest/);
});

describePrivileged('macvtap CLI', () => {
  let tb: Testbed;
  beforeEach(() => { tb = makeTestbed(7); });
  afterEach(() => tb.destroy());

  it('create → list → show → delete, as ip sees it', () => {
    const ns = tb.host.name;
    const created = macvtap(['create', '--netns', ns, '--lower', tb.lower, '--name', 'mvtcli%d', '--mode', 'vepa', '--mac', '02:aa:00:00:00:01', '--mtu', '1400', '--up', '--group', '42', '--alias', 'cli test', '--json']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const info = JSON.parse(created.stdout) as { name: string; ifindex: number; macvlan: { mode: string } };
    expect(info.name).toMatch(/^mvtcli\d+$/);
    const ip = tb.host.ipLink(info.name);
    expect(ip.ifindex).toBe(info.ifindex);
    expect(ip.linkinfo?.info_kind).toBe('macvtap');
    expect(ip.linkinfo?.info_data?.mode).toBe('vepa');
    expect(ip.address).toBe('02:aa:00:00:00:01');
    expect(ip.mtu).toBe(1400);
    expect(ip.group).toBe('42');
    expect(ip.ifalias).toBe('cli test');

    const list = macvtap(['list', '--netns', ns]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^${info.ifindex}\\s+${info.name}\\s+macvtap\\s+vepa\\s+${tb.lower}\\s+02:aa:00:00:00:01\\s+1400`, 'm'));
    const all = JSON.parse(macvtap(['list', '--all', '--netns', ns, '--json']).stdout) as { name: string }[];
    expect(all.map((l) => l.name).sort()).toEqual(['lo', tb.lower, info.name].sort());

    const show = macvtap(['show', info.name, '--netns', ns]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/mode vepa/);
    expect(show.stdout).toMatch(/alias "cli test"/);

    expect(macvtap(['delete', info.name, '--netns', ns]).code).toBe(0);
    expect(tb.host.ipLinks().some((l) => l.ifname === info.name)).toBe(false);
    const again = macvtap(['delete', info.name, '--netns', ns]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/ENODEV/);
  });

  it('delete --group removes the group and nothing else', () => {
    const ns = tb.host.name;
    for (let i = 0; i < 3; i++) expect(macvtap(['create', '--netns', ns, '--lower', tb.lower, '--name', `mvtg${i}`, '--group', '9']).code).toBe(0);
    expect(macvtap(['create', '--netns', ns, '--lower', tb.lower, '--name', 'mvtkeep']).code).toBe(0);
    expect(macvtap(['delete', '--group', '9', '--netns', ns]).code).toBe(0);
    expect(tb.host.ipLinks().map((l) => l.ifname).sort()).toEqual(['lo', tb.lower, 'mvtkeep'].sort());
  });

  it('exec opens N queues and hands exactly those fds to the command, {fds} substituted', () => {
    const ns = tb.host.name;
    expect(macvtap(['create', '--netns', ns, '--lower', tb.lower, '--name', 'mvtexec', '--up']).code).toBe(0);
    const { ifindex } = tb.host.ipLink('mvtexec');
    const devNo = tb.host.exec('cat', [`/sys/class/net/mvtexec/macvtap/tap${ifindex}/dev`]).trim();
    // The child lists its fds and the device numbers behind the ones it was given.
    const script = 'echo "ARGS $1"; for f in $(echo "$1" | tr ":" " "); do stat -L -c "%t:%T %F" /proc/self/fd/$f; done; ls /proc/self/fd | wc -l';
    const r = macvtap(['exec', '--netns', ns, '--dev', 'mvtexec', '--queues', '3', '--', 'sh', '-c', script, 'sh', '{fds}']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const fds = (lines[0] ?? '').replace('ARGS ', '').split(':').map(Number);
    expect(fds).toHaveLength(3);
    const [major, minor] = devNo.split(':').map(Number) as [number, number];
    for (let i = 0; i < 3; i++) expect(lines[1 + i]).toBe(`${major.toString(16)}:${minor.toString(16)} character special file`);
    // Exactly the three queues more than a shell spawned directly from here sees (which inherits whatever the test
    // runner itself inherited): no netlink socket, sysfs mount or other fd of ours leaked across the exec.
    const baseline = Number(execFileSync('sh', ['-c', 'ls /proc/self/fd | wc -l'], { encoding: 'utf8' }).trim());
    expect(Number(lines[4])).toBe(baseline + 3);
  });

  it('exec fails cleanly when the command does not exist', () => {
    const ns = tb.host.name;
    expect(macvtap(['create', '--netns', ns, '--lower', tb.lower, '--name', 'mvtexec2']).code).toBe(0);
    const r = macvtap(['exec', '--netns', ns, '--dev', 'mvtexec2', '--', '/nonexistent/qemu']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ENOENT/);
  });
});

it('ip is available for the cross-checks', () => {
  expect(execFileSync('ip', ['-V'], { encoding: 'utf8' })).toMatch(/iproute2/);
});

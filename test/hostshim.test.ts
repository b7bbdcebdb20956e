/**
 * Host access to macvtap guests: from the lower device's namespace a guest on a macvtap is unreachable (the lower's
 * own stack is outside macvlan's switch), and reachable through {@link createHostShim}'s macvlan. The guest is a tap
 * queue of a real macvtap answering ARP and UDP itself (frames built and checked here); the host side is real sockets
 * in the namespace (a datagram to the guest, and a listener for the guest's answer). (No `ping` on these machines.) The shim is checked with `ip -d -j` and carries the owner tag gc reads.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, expect, test } from 'vitest';
import { createHostShim, createMacvtap, gc, openTap, type TapQueue } from '../lib/index.js';
import { parseOwnerTag } from '../lib/owner.js';
import { destroyAll, TestNetns } from '../bench/testbed/netns.js';
import { buildArp, buildUdpFrame, parseFrame } from '../bench/testbed/frames.js';
import { sendUdp, UdpListener } from '../bench/testbed/peer.js';
import { describePrivileged } from './helpers/suite.js';

const GUEST_MAC = '02:00:00:00:0b:0a';
const GUEST_IP = '10.9.0.10';
const GUEST_PORT = 42_100;
const REPLY_PORT = 42_101;

const spaces: TestNetns[] = [];
const queues: TapQueue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
  for (const s of spaces.splice(0)) s.destroy();
});
afterAll(() => destroyAll());

/**
 * Answers ARP requests for GUEST_IP, and every UDP datagram to GUEST_IP:GUEST_PORT with `pong:<payload>` to the
 * sender's address on REPLY_PORT, on raw frames, until `stop()`. Counts what reached it.
 */
function guest(q: TapQueue): { seen: { arp: number; udp: number }; stop: () => Promise<void> } {
  const seen = { arp: 0, udp: 0 };
  let running = true;
  const loop = (async () => {
    while (running) {
      const f = await q.read({ timeout: 50 });
      if (f === null) continue;
      const p = parseFrame(f);
      if (p.arp && p.arp.op === 1 && p.arp.targetIp === GUEST_IP) {
        seen.arp++;
        q.write(buildArp({ op: 2, senderMac: GUEST_MAC, senderIp: GUEST_IP, targetMac: p.arp.senderMac, targetIp: p.arp.senderIp }));
      } else if (p.udp && p.udp.dstIp === GUEST_IP && p.udp.dstPort === GUEST_PORT) {
        seen.udp++;
        q.write(buildUdpFrame({
          srcMac: GUEST_MAC, dstMac: p.srcMac, srcIp: GUEST_IP, dstIp: p.udp.srcIp, srcPort: GUEST_PORT, dstPort: REPLY_PORT,
          payload: Buffer.concat([Buffer.from('pong:'), p.udp.payload]),
        }));
      }
    }
  })();
  return { seen, stop: async () => { running = false; await loop; } };
}

/** The host namespace's neighbour state for the guest (`INCOMPLETE`, `FAILED`, `REACHABLE`, …), or `null`. */
function neighState(ns: TestNetns): string | null {
  const all = JSON.parse(ns.ip('-j', 'neigh', 'show', 'to', GUEST_IP)) as Array<{ state?: string[] }>;
  return all[0]?.state?.[0] ?? null;
}

describePrivileged('host shim', () => {
  test('the lower\'s namespace cannot reach a macvtap guest; with the shim it can; the shim is tagged and bridge-mode', async () => {
    const host = TestNetns.create();
    const wire = TestNetns.create();
    spaces.push(host, wire);
    host.veth('l0', 'w0', wire);
    host.ip('addr', 'add', '10.9.0.1/24', 'dev', 'l0');
    await createMacvtap({ lower: 'l0', name: 'mvg', mac: GUEST_MAC, up: true, ipv6: false, netns: host.path });
    const [q] = await openTap('mvg', { vnetHdr: false, netns: host.path });
    queues.push(q!);
    const g = guest(q!);
    const replies = await UdpListener.start(host, REPLY_PORT, { lifetimeMs: 30_000 });
    try {
      // Without the shim: the ARP request leaves through l0 onto the wire and never reaches the guest; the host's
      // neighbour entry stays unresolved (the kernel retries for ~3 s; 1 s of it is enough to see nothing arrive).
      sendUdp(host, GUEST_IP, GUEST_PORT, Buffer.from('no shim'));
      await sleep(1000);
      expect(g.seen).toEqual({ arp: 0, udp: 0 });
      expect(['INCOMPLETE', 'FAILED']).toContain(neighState(host));
      expect(replies.received).toEqual([]);

      // The host's address moves to the shim, as the usual work-around does.
      host.ip('addr', 'del', '10.9.0.1/24', 'dev', 'l0');
      host.ip('neigh', 'flush', 'all');
      const shim = await createHostShim({ lower: 'l0', name: 'mvshim', addresses: ['10.9.0.1/24'], netns: host.path });
      sendUdp(host, GUEST_IP, GUEST_PORT, Buffer.from('via shim'));
      const got = await replies.waitFor((d) => d.data.toString() === 'pong:via shim', 20_000);
      expect(got.from).toBe(GUEST_IP);
      expect(g.seen.arp).toBeGreaterThanOrEqual(1);
      expect(g.seen.udp).toBe(1);
      expect(neighState(host)).toBe('REACHABLE');

      const ip = host.ipLink('mvshim') as unknown as { flags: string[]; ifalias?: string; linkinfo: { info_kind: string; info_data: { mode: string } }; link: string };
      expect(ip.linkinfo.info_kind).toBe('macvlan');
      expect(ip.linkinfo.info_data.mode).toBe('bridge');
      expect(ip.link).toBe('l0');
      expect(ip.flags).toContain('UP');
      const addrs = JSON.parse(host.ip('-4', '-j', 'addr', 'show', 'dev', 'mvshim')) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>;
      expect(addrs[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(['10.9.0.1/24']);
      expect(parseOwnerTag(ip.ifalias ?? null)).toMatchObject({ owner: 'macvtap', pid: process.pid });
      expect(shim.alias).toBe(ip.ifalias);
      const r = await gc({ dryRun: true, netns: host.path });
      expect(r.kept.map((l) => l.name)).toContain('mvshim');
    } finally {
      replies.stop();
      await g.stop();
    }
  });

  test.each([
    [{ lower: 'l0' }, 'ERR_INVALID_ARG_VALUE'],
    [{ lower: 'l0', addresses: [] }, 'ERR_INVALID_ARG_VALUE'],
    [{ lower: 'l0', addresses: '10.0.0.1/24' }, 'ERR_INVALID_ARG_VALUE'],
    [{ lower: 'l0', addresses: ['10.0.0.1'] }, 'ERR_INVALID_ARG_VALUE'],
    [{ lower: 'l0', addresses: ['10.0.0.1/33'] }, 'ERR_OUT_OF_RANGE'],
    [{ lower: 'l0', addresses: [7] }, 'ERR_INVALID_ARG_TYPE'],
    [{ addresses: ['10.0.0.1/24'] }, 'ERR_INVALID_ARG_VALUE'],
    [{ lower: 'l0', addresses: ['10.0.0.1/24'], mode: 'vepa' }, 'ERR_INVALID_ARG_VALUE'],
    [{ lower: 'l0', addresses: ['10.0.0.1/24'], name: 'a/b' }, 'ERR_INVALID_ARG_VALUE'],
    [{ lower: 'l0', addresses: ['10.0.0.1/24'], mac: '01:00:00:00:00:01' }, 'ERR_INVALID_ARG_VALUE'],
  ])('createHostShim(%j) is refused before anything is created (%s)', async (opts, code) => {
    const host = TestNetns.create();
    spaces.push(host);
    host.veth('l0', 'l1');
    const before = host.ipLinks().length;
    await expect(createHostShim({ ...opts, netns: host.path } as never)).rejects.toMatchObject({ code });
    expect(host.ipLinks().length).toBe(before);
  });

  test('an address the kernel refuses deletes the shim it had made', async () => {
    const host = TestNetns.create();
    spaces.push(host);
    host.veth('l0', 'l1');
    const before = host.ipLinks().length;
    // The same address twice: the second RTM_NEWADDR is EEXIST.
    await expect(createHostShim({ lower: 'l0', name: 'mvshim', addresses: ['10.9.0.1/24', '10.9.0.1/24'], netns: host.path }))
      .rejects.toMatchObject({ code: 'EEXIST' });
    expect(host.ipLinks().length).toBe(before);
  });
});

/**
 * The link settings the CNI plugin's config needs, as library calls: `allmulti` (setLink), `numQueues`
 * (createMacvtap) and `setLinkIpv6`, each checked with `ip -d -j` or the namespace's own sysctl file.
 */
import { expect, test } from 'vitest';
import { addAddress, addRoute, createMacvtap, getLink, setLink, setLinkIpv6 } from '../lib/index.js';
import type { TestNetns } from '../bench/testbed/netns.js';
import { describePrivileged } from './helpers/suite.js';
import { vethHostFixture } from './helpers/hostns.js';

const { host } = vethHostFixture();

const ipLink = (ns: TestNetns, dev: string): Record<string, unknown> => JSON.parse(ns.ip('-d', '-j', 'link', 'show', 'dev', dev))[0] as Record<string, unknown>;

describePrivileged('link extras', () => {
  test('allmulti on and off, as ip link set allmulticast does (counted once)', async () => {
    const ns = host();
    await createMacvtap({ lower: 'l0', name: 'mv0', netns: ns.path });
    await setLink('mv0', { allmulti: true }, { netns: ns.path });
    await setLink('mv0', { allmulti: true }, { netns: ns.path });
    expect(ipLink(ns, 'mv0')).toMatchObject({ allmulti: 1, flags: expect.arrayContaining(['ALLMULTI']) });
    await setLink('mv0', { allmulti: false }, { netns: ns.path });
    expect(ipLink(ns, 'mv0').flags).not.toContain('ALLMULTI');
    await expect(setLink('mv0', { allmulti: 'yes' as never }, { netns: ns.path })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });

  test('numQueues sets the device\'s tx and rx queue counts; out of range is refused before the kernel', async () => {
    const ns = host();
    const link = await createMacvtap({ lower: 'l0', name: 'mv0', numQueues: 8, netns: ns.path });
    expect([link.numTxQueues, link.numRxQueues]).toEqual([8, 8]);
    expect(ipLink(ns, 'mv0')).toMatchObject({ num_tx_queues: 8, num_rx_queues: 8 });
    await expect(createMacvtap({ lower: 'l0', name: 'mv1', numQueues: 0, netns: ns.path })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(createMacvtap({ lower: 'l0', name: 'mv1', numQueues: 257, netns: ns.path })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect(ns.ipLinks().map((l) => l.ifname).sort()).toEqual(['l0', 'l1', 'lo', 'mv0']);
  });

  test('addRoute: via a gateway and on the link, as ip route shows them; bad input refused before the kernel', async () => {
    const ns = host();
    await addAddress('l0', '10.78.0.2/24', { netns: ns.path });
    await addRoute('l0', { dst: '0.0.0.0/0', gateway: '10.78.0.1' }, { netns: ns.path });
    await addRoute('l0', { dst: '198.51.100.0/24' }, { netns: ns.path });
    await addRoute('l0', { dst: '2001:db8:1::/64' }, { netns: ns.path });
    const v4 = JSON.parse(ns.ip('-j', '-4', 'route', 'show')) as Array<Record<string, unknown>>;
    expect(v4).toEqual(expect.arrayContaining([
      expect.objectContaining({ dst: 'default', gateway: '10.78.0.1', dev: 'l0' }),
      expect.objectContaining({ dst: '198.51.100.0/24', dev: 'l0', scope: 'link' }),
    ]));
    expect(JSON.parse(ns.ip('-j', '-6', 'route', 'show', '2001:db8:1::/64'))[0]).toMatchObject({ dst: '2001:db8:1::/64', dev: 'l0' });
    await expect(addRoute('l0', { dst: '0.0.0.0/0', gateway: '10.78.0.1' }, { netns: ns.path })).rejects.toMatchObject({ name: 'MacvtapError', code: 'EEXIST' });
    await expect(addRoute('l0', { dst: '203.0.113.0/24', gateway: '192.0.2.1' }, { netns: ns.path })).rejects.toMatchObject({ name: 'MacvtapError', code: 'ENETUNREACH' });
    for (const bad of [{ dst: '10.0.0.1/24' }, { dst: '10.0.0.0' }, { dst: '10.0.0.0/33' }, { dst: '0.0.0.0/0', gateway: 'fe80::1' }, { dst: '::/0', via: '::1' }]) {
      await expect(addRoute('l0', bad as never, { netns: ns.path })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    }
  });

  test('setLinkIpv6 writes disable_ipv6 as the link\'s own namespace sees it; a missing link is ENOENT', async () => {
    const ns = host();
    await setLinkIpv6('l0', false, { netns: ns.path });
    expect(ns.exec('cat', ['/proc/sys/net/ipv6/conf/l0/disable_ipv6']).trim()).toBe('1');
    expect(ns.exec('cat', ['/proc/sys/net/ipv6/conf/l1/disable_ipv6']).trim()).toBe('0');
    expect((await getLink('l0', { netns: ns.path })).up).toBe(true);
    expect(JSON.parse(ns.ip('-j', '-6', 'addr', 'show', 'dev', 'l0'))[0]?.addr_info ?? []).toEqual([]);
    await setLinkIpv6('l0', true, { netns: ns.path });
    expect(ns.exec('cat', ['/proc/sys/net/ipv6/conf/l0/disable_ipv6']).trim()).toBe('0');
    await expect(setLinkIpv6('nope0', false, { netns: ns.path })).rejects.toMatchObject({ name: 'MacvtapError', code: 'ENOENT', syscall: 'open' });
    await expect(setLinkIpv6('a/b', false, { netns: ns.path })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });
});

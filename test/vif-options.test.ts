/**
 * Every options object of `macvtap/vif` refuses keys it does not take, naming the key, as the core's options do: a
 * guessed option name (`{ ethernet: true, target: 'x' }`) must fail, never render a default form silently. All of these
 * fail before the host is touched, so none needs root.
 */
import { describe, expect, test } from 'vitest';
import {
  InvalidVifError,
  VifError,
  checkInterfaceConfig,
  interfaceToXml,
  novaInterfaceXml,
  parseVif,
  plug,
  plugSelfManaged,
  removeVlan,
  toDomainXml,
  toInterfaceXml,
  unplug,
  unplugSelfManaged,
  type InterfaceConfig,
} from '../lib/vif/index.js';
import { catchErr, novaVif } from './helpers/libvirt.js';

async function rejected(p: Promise<unknown>): Promise<VifError> {
  const e = await p.then(() => { throw new Error('expected a rejection'); }, (err: unknown) => err);
  expect(e).toBeInstanceOf(VifError);
  return e as VifError;
}

const paths = (e: VifError): string[] => e.issues.map((i) => i.path);

describe('toInterfaceXml / interfaceFromVif options', () => {
  test("the issue's example: { ethernet: true, target: 'x' } is refused naming both keys, not rendered as direct", () => {
    const e = catchErr(() => toInterfaceXml(novaVif(), { ethernet: true, target: 'x' } as never));
    expect(e).toBeInstanceOf(InvalidVifError);
    expect(paths(e)).toStrictEqual(['ethernet', 'target']);
    expect(e.issues[0]!.message).toMatch(/^is not a known option \(known: form, targetDev, model, vcpus/);
    expect(e.message).toMatch(/ethernet: is not a known option/);
  });

  test.each<[string, Record<string, unknown>, string]>([
    ['a typo of a top-level key', { vcpu: 4 }, 'vcpu'],
    ['a key inside hostOffloads', { hostOffloads: { tso: false } }, 'hostOffloads.tso'],
    ['a key inside guestOffloads', { guestOffloads: { gso: false } }, 'guestOffloads.gso'],
    ['a key inside bandwidth', { bandwidth: { in: { average: 1 } } }, 'bandwidth.in'],
    ['a key inside bandwidth.inbound', { bandwidth: { inbound: { average: 1, avg: 2 } } }, 'bandwidth.inbound.avg'],
    ['a key inside virtualport', { virtualport: { type: '802.1Qbh', profile: 'p' } }, 'virtualport.profile'],
    ['a key inside virtualport.parameters', { virtualport: { type: '802.1Qbg', parameters: { managerid: 1, typeId: 2 } } }, 'virtualport.parameters.typeId'],
  ])('%s', (_label, options, path) => {
    const e = catchErr(() => toInterfaceXml(novaVif(), options as never));
    expect(paths(e)).toContain(path);
    expect(e.issues.find((i) => i.path === path)!.message).toMatch(/^is not a known option \(known: /);
  });

  test('every known key is still accepted', () => {
    const xml = toInterfaceXml(novaVif(), {
      form: 'direct', targetDev: 'tap6c1b3d0e-2f', model: 'virtio', vcpus: 2, maxTapQueues: 8, driverName: 'vhost',
      rxQueueSize: 512, txQueueSize: 256, hostOffloads: { csum: true }, guestOffloads: { tso4: false },
      bandwidth: { inbound: { average: 10 } }, quota: { 'quota:vif_outbound_average': '20' }, mtu: null, linkState: 'up',
      trustGuestRxFilters: false, virtualport: null, bootOrder: 1, alias: 'ua-net0',
    });
    expect(xml).toContain('tx_queue_size="256"');
  });
});

describe('InterfaceConfig given to interfaceToXml / checkInterfaceConfig', () => {
  const good: InterfaceConfig = { type: 'direct', mac: 'fa:16:3e:00:00:01', source: { dev: 'eth0', mode: 'bridge' } };
  test.each<[string, Record<string, unknown>, string]>([
    ['top level', { ...good, queues: 4 }, 'queues'],
    ['source', { ...good, source: { dev: 'eth0', mode: 'bridge', type: 'x' } }, 'source.type'],
    ['driver', { ...good, driver: { name: 'vhost', rx_queue_size: 512 } }, 'driver.rx_queue_size'],
    ['driver.host', { ...good, driver: { host: { mrg_rxbuf: false } } }, 'driver.host.mrg_rxbuf'],
    ['bandwidth', { ...good, bandwidth: { inbound: { average: 1 }, both: {} } }, 'bandwidth.both'],
  ])('an unknown key in %s is refused', (_label, config, path) => {
    for (const fn of [() => interfaceToXml(config as never), () => checkInterfaceConfig(config)]) {
      const e = catchErr(fn);
      expect(paths(e)).toContain(path);
    }
  });
});

describe('the other options objects', () => {
  test('toDomainXml options: an unknown key and an unknown domain type', () => {
    const e = catchErr(() => toDomainXml([], { vcpu: 2, type: 'xen' } as never));
    expect(paths(e)).toStrictEqual(['vcpu', 'type']);
  });

  test('novaInterfaceXml options and its conf', () => {
    const a = catchErr(() => novaInterfaceXml(novaVif(), { vcpus: 2, flavor_extra_specs: {} } as never));
    expect(paths(a)).toStrictEqual(['flavor_extra_specs']);
    const b = catchErr(() => novaInterfaceXml(novaVif(), { vcpus: 2, conf: { max_queues: 4, rx_queue_size: 512, virt_type: 'kvm' } } as never));
    expect(paths(b)).toStrictEqual(['conf.virt_type']);
  });

  test('unplug, removeVlan, unplugSelfManaged, plug, plugSelfManaged (and its xml): before the host is touched', async () => {
    // A namespace that does not exist: had any of these reached the kernel it would have failed differently.
    const netns = '/run/netns/mvt-does-not-exist';
    expect(paths(await rejected(unplug(novaVif(), { netns, ns: 1 } as never)))).toStrictEqual(['ns']);
    expect(paths(await rejected(removeVlan(novaVif(), { netns, force: true } as never)))).toStrictEqual(['force']);
    expect(paths(await rejected(unplugSelfManaged(novaVif(), { netns, device: 'x' } as never)))).toStrictEqual(['device']);
    expect(paths(await rejected(plug(novaVif(), { netns, mtu: 1500 } as never)))).toStrictEqual(['mtu']);
    expect(paths(await rejected(plugSelfManaged(novaVif(), { netns, queue: 2 } as never)))).toStrictEqual(['queue']);
    const x = await rejected(plugSelfManaged(novaVif(), { netns, xml: { form: 'direct', model: 'virtio', vcpu: 2 } } as never));
    expect(paths(x)).toStrictEqual(['xml.form', 'xml.vcpu']);
  });

  test('the vif dict itself still accepts the extra keys Nova sends (it is data, not options)', () => {
    expect(parseVif(novaVif({ ovs_interfaceid: null, profile: {}, preserve_on_delete: false })).id).toBe('6c1b3d0e-2f4a-4b8e-9a51-0d3c2b1a0f9e');
  });
});

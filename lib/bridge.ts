/**
 * Linux bridges, for testbeds and "external switch" setups (a VEPA macvtap needs a hairpin port to reach its
 * siblings): create one, set a port's switches. Ports are enslaved with `setLink(port, { master: bridge })`.
 */
import { binding } from './binding.js';
import { callNative, invalidValue } from './errors.js';
import { createLink } from './link.js';
import type { CreateBridgeOptions, LinkInfo, LinkRef, NetnsOption, SetBridgePortOptions } from './types.js';
import { createOwnership } from './owner.js';
import * as v from './validate.js';

/**
 * Creates a Linux bridge and returns its info.
 *
 * Equivalent to: `ip link add NAME type bridge [mtu N]` (+ `ip link set NAME up` with `up: true`, in the same request).
 *
 * @example
 * ```ts
 * const br = await createBridge({ name: 'br0', up: true, netns: '/run/netns/lab' });
 * await setLink('veth0', { master: 'br0' }, { netns: '/run/netns/lab' });
 * ```
 * @throws TypeError/RangeError for bad options, before anything is sent.
 * @throws {@link MacvtapError} `EEXIST` (name taken), `EPERM` (no `CAP_NET_ADMIN`).
 */
export async function createBridge(options: CreateBridgeOptions): Promise<LinkInfo> {
  const opts = v.options('options', options);
  v.knownKeys('options', opts, ['name', 'up', 'mtu', 'netns', 'owner', 'signal']);
  if (opts.name === undefined) throw invalidValue('name', 'is required', undefined);
  const name = v.linkName('name', opts.name);
  const up = opts.up === undefined ? false : v.bool('up', opts.up);
  const req: Parameters<typeof binding.linkCreate>[0] = { kind: 'bridge', name, up };
  if (opts.mtu !== undefined) req.mtu = v.mtu('mtu', opts.mtu);
  Object.assign(req, createOwnership(opts, undefined, undefined));
  return createLink(req, v.nsOf(opts), v.signal(opts));
}

/**
 * Sets a bridge port's switches; the ones not given stay as they are. The link must already be enslaved to a bridge
 * (`setLink(link, { master: 'br0' })`). Read them back from {@link LinkInfo.bridgePort}.
 *
 * Equivalent to: `ip link set dev LINK type bridge_slave [hairpin on|off] [learning on|off] [flood on|off]`.
 *
 * @throws {@link MacvtapError} `ENODEV` (no such link), `EOPNOTSUPP`/`EINVAL` (the link is not a bridge port).
 */
export async function setBridgePort(link: LinkRef, port: SetBridgePortOptions, options?: NetnsOption): Promise<void> {
  const key = v.linkRef('link', link);
  const p = v.options('port', port);
  v.knownKeys('port', p, ['hairpin', 'learning', 'flood']);
  const req: SetBridgePortOptions = {};
  if (p.hairpin !== undefined) req.hairpin = v.bool('hairpin', p.hairpin);
  if (p.learning !== undefined) req.learning = v.bool('learning', p.learning);
  if (p.flood !== undefined) req.flood = v.bool('flood', p.flood);
  if (Object.keys(req).length === 0) throw invalidValue('port', 'must set at least one of hairpin, learning, flood', port);
  const ns = v.netnsOnly(options);
  await callNative(() => binding.linkSetBridgePort(key, req, ns));
}

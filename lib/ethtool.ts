/** Offload switches (`SIOCETHTOOL`), e.g. tx checksumming off on veths behind OVS's userspace datapath. */
import { binding } from './binding.js';
import { callNative, invalidValue } from './errors.js';
import type { LinkRef, NetnsOption, OffloadOptions } from './types.js';
import * as v from './validate.js';

const OFFLOAD_KEYS = ['tx', 'rx', 'sg', 'tso', 'gso', 'gro'] as const;

/**
 * Turns offloads of a link on or off; the ones not given stay as they are. Checksumming and scatter-gather are set
 * before the segmentation offloads that depend on them; the kernel itself turns TSO off with tx checksumming.
 *
 * Equivalent to: `ethtool -K LINK [tx on|off] [rx on|off] [sg on|off] [tso on|off] [gso on|off] [gro on|off]`.
 *
 * @example
 * ```ts
 * await setOffloads('veth0', { tx: false }, { netns: '/run/netns/lab' }); // OVS netdev datapath: no partial csums
 * ```
 * @throws {@link MacvtapError} `ENODEV` (no such link), `EOPNOTSUPP` (the driver cannot change it).
 */
export async function setOffloads(link: LinkRef, offloads: OffloadOptions, options?: NetnsOption): Promise<void> {
  const key = v.linkRef('link', link);
  const o = v.options('offloads', offloads);
  v.knownKeys('offloads', o, OFFLOAD_KEYS);
  const req: OffloadOptions = {};
  for (const k of OFFLOAD_KEYS) if (o[k] !== undefined) req[k] = v.bool(k, o[k]);
  if (Object.keys(req).length === 0) throw invalidValue('offloads', `must set at least one of ${OFFLOAD_KEYS.join(', ')}`, offloads);
  const ns = v.netnsOnly(options);
  await callNative(() => binding.ethtoolSetOffloads(key, req, ns));
}

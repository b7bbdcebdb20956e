/** Per-link network sysctls (`/proc/sys/net/...`), written as a link's own namespace sees them. */
import { binding } from './binding.js';
import { callNative } from './errors.js';
import type { NetnsOption } from './types.js';
import * as v from './validate.js';

/**
 * Turns IPv6 on or off on one link (`disable_ipv6`): off, the link has no IPv6 address at all, not even a link-local
 * one, and sends no router or neighbour solicitations. Written from inside `netns` (a `/proc/sys/net` file belongs to
 * the namespace of whoever opens it), so a link in a container's namespace can be set from outside it.
 *
 * Equivalent to: `ip netns exec NS sysctl -w net.ipv6.conf.LINK.disable_ipv6=0|1`.
 *
 * @example
 * ```ts
 * await setLinkIpv6('eth0', false, { netns: '/run/netns/pod1' });
 * ```
 * @throws TypeError for a bad name; {@link MacvtapError} `ENOENT` (syscall `'open'`) when there is no such link (or
 *   the kernel has no IPv6).
 */
export async function setLinkIpv6(link: string, enabled: boolean, options?: NetnsOption): Promise<void> {
  const name = v.linkName('link', link);
  const on = v.bool('enabled', enabled);
  const ns = v.netnsOnly(options);
  await callNative(() => binding.sysctlWrite(`net/ipv6/conf/${name}/disable_ipv6`, on ? '0' : '1', ns));
}

/** Routes (`RTM_NEWROUTE`): what an attachment's IPAM result asks for, typically its default route. */
import { binding } from './binding.js';
import { callNative, invalidType, invalidValue } from './errors.js';
import { familyOf, parsePrefix } from './portsec/addr.js';
import type { AddRouteOptions, LinkRef, NetnsOption } from './types.js';
import * as v from './validate.js';

/**
 * Adds a route through a link in the main table: to `dst` (a prefix, `'0.0.0.0/0'` or `'::/0'` for the default
 * route), via `gateway` when given (it must be reachable through the link: the link up, with an address in the
 * gateway's subnet), else directly on the link (scope link).
 *
 * Equivalent to: `ip route add DST [via GATEWAY] dev LINK`.
 *
 * @example
 * ```ts
 * await addRoute('eth0', { dst: '0.0.0.0/0', gateway: '10.77.0.1' }, { netns: '/run/netns/pod1' });
 * ```
 * @throws TypeError for a malformed prefix (host bits set included) or a gateway of another family, before anything
 *   is sent; {@link MacvtapError} `EEXIST` (already there), `ENETUNREACH` (gateway not reachable through the link),
 *   `ENODEV` (no such link), `EPERM`.
 */
export async function addRoute(link: LinkRef, route: AddRouteOptions, options?: NetnsOption): Promise<void> {
  const key = v.linkRef('link', link);
  const r = v.options('route', route);
  v.knownKeys('route', r, ['dst', 'gateway']);
  if (typeof r.dst !== 'string') throw invalidType('dst', "a prefix such as '0.0.0.0/0' or '2001:db8::/64'", r.dst);
  const slash = r.dst.indexOf('/');
  const fam = familyOf(r.dst);
  if (fam === null || slash < 0) throw invalidValue('dst', 'must be an IPv4 or IPv6 prefix ADDRESS/LEN', r.dst);
  const parsed = parsePrefix(r.dst, fam);
  if ('error' in parsed) throw invalidValue('dst', parsed.error, r.dst);
  const req: { family: 4 | 6; dst: string; dstLen: number; gateway?: string } = { family: fam.v6 ? 6 : 4, dst: r.dst.slice(0, slash), dstLen: Number(r.dst.slice(slash + 1)) };
  if (r.gateway !== undefined) {
    if (typeof r.gateway !== 'string' || r.gateway.includes('/') || familyOf(r.gateway) !== fam) {
      throw invalidValue('gateway', `must be an IPv${req.family} address (the family of dst)`, r.gateway);
    }
    req.gateway = r.gateway;
  }
  const ns = v.netnsOnly(options);
  await callNative(() => binding.routeAdd(key, req, ns));
}

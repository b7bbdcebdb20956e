/**
 * Garbage collection of links whose creating process is gone: the owner tag (`lib/owner.ts`) names a pid and its start
 * time; a link is garbage when that pid no longer exists or now belongs to another process (different start time).
 */
import { binding } from './binding.js';
import { callNative, invalidValue } from './errors.js';
import { constructionPid, ownerOption, parseOwnerTag, processStartTime } from './owner.js';
import { portSecurityGarbage, removePortSecurity } from './portsec/index.js';
import { removeTapNodes, tapNodeGarbage } from './tapnode.js';
import type { GcOptions, GcResult, LinkInfo } from './types.js';
import * as v from './validate.js';

/** Up to this many links are deleted one by one (a grace period each); more are deleted as one group (one in all). */
const ONE_BY_ONE_MAX = 3;

function isNoDevice(e: unknown): boolean {
  return (e as { code?: string } | null)?.code === 'ENODEV';
}

/**
 * Removes the links whose owner process is gone, in one namespace. Only links carrying an owner tag
 * (`macvtap:<owner>:<pid>:<starttime>`, see {@link OwnerOption.owner}) are considered; a link without one
 * is never touched. A tagged link is garbage when `/proc/<pid>/stat` is gone or shows another start time (the pid
 * was reused). A link whose creator was killed between the create and the tag carries no alias but the construction
 * marker group of its creator's pid (lib/owner.ts): it is garbage when that pid is gone, whatever `owner` says. Run it
 * in the pid namespace of the processes that create links (it reads this `/proc`).
 *
 * Up to 3 links are deleted one by one; more are moved to a fresh random `IFLA_GROUP` (one that no link of the
 * namespace has) and deleted with one `RTM_DELLINK` of that group: one RCU grace period for all of them. Deleting a
 * veth also removes its peer, and deleting a lower device removes the macvtaps on it (as the kernel always does).
 *
 * Port-security tables ({@link applyPortSecurity}) go the same way once their device is gone: a table whose device
 * no longer exists, or now has another ifindex (a new device of the same name), is deleted after the links. Kernels
 * from about 6.16 keep such a table's chains and bind them to the next device of that name, so this matters beyond
 * tidiness. Untagged tables (not made by this package) are never touched.
 *
 * Tap nodes ({@link createTapNode}) recorded for this namespace (by `owner`, when given) go when their link is gone (or removed now), is
 * another device now (other `major:minor`), or their recorded namespace path no longer names their namespace.
 *
 * Equivalent to: `ip link del group G` after `ip link set dev X group G` for each dead owner's link, then
 * `nft delete table netdev mvtps-DEV` for each table whose device is gone, then `rm` of each stale tap node.
 *
 * @example
 * ```ts
 * const { removed } = await gc({ owner: 'nova', netns: netnsPath('lab') });
 * ```
 * @returns `removed`: the garbage links (with `dryRun`, the ones that would be removed); `kept`: tagged links (of
 *   `owner`, when given) whose process is alive.
 * @throws TypeError/RangeError for bad options; {@link MacvtapError} from the dump or a delete (`ENODEV` of a link
 *   that vanished meanwhile is not an error).
 */
export async function gc(options?: GcOptions): Promise<GcResult> {
  const opts = v.options('options', options);
  v.knownKeys('options', opts, ['owner', 'netns', 'dryRun']);
  const owner = opts.owner === undefined ? undefined : ownerOption(opts.owner);
  if (owner === false) throw invalidValue('owner', 'must be an owner name (gc only looks at tagged links)', false);
  const dryRun = opts.dryRun === undefined ? false : v.bool('dryRun', opts.dryRun);
  const ns = v.nsOf(opts);

  const all = await callNative(() => binding.linkList(null, ns));
  const removed: LinkInfo[] = [];
  const kept: LinkInfo[] = [];
  for (const link of all) {
    const tag = parseOwnerTag(link.alias);
    if (tag) {
      if (owner !== undefined && tag.owner !== owner) continue;
      if (processStartTime(tag.pid) === tag.starttime) kept.push(link);
      else removed.push(link);
      continue;
    }
    // Half-made: created with the construction marker group, its creator gone before the tag was set. It names no
    // owner, so any gc takes it; a live creator (still between its two requests) keeps it. Only the pid is known here
    // (no start time fits the group), so a reused pid keeps it until that process is gone too.
    const pid = link.alias === null ? constructionPid(link.group) : null;
    if (pid === null) continue;
    if (pid !== 0 && processStartTime(pid) !== null) kept.push(link);
    else removed.push(link);
  }
  // Port-security tables whose device is gone: judged against the links that stay (the removed ones' tables go too).
  const gone = new Set(removed);
  const staying = all.filter((l) => !gone.has(l));
  const tables = await portSecurityGarbage(staying, ns, owner);
  // Tap nodes go with their link (a node of a gone device would open the next one of its numbers), of `owner` if given.
  const nodes = tapNodeGarbage(staying, ns, owner);
  const tapNodes = nodes.map((n) => n.rec.path);
  if (dryRun) return { removed, kept, portSecurity: tables, tapNodes };
  await removeLinks(removed, all, ns);
  for (const device of tables) await removePortSecurity(device, ns === null ? undefined : { netns: ns });
  removeTapNodes(nodes);
  return { removed, kept, portSecurity: tables, tapNodes };
}

async function removeLinks(removed: LinkInfo[], all: LinkInfo[], ns: ReturnType<typeof v.nsOf>): Promise<void> {
  if (removed.length === 0) return;
  if (removed.length <= ONE_BY_ONE_MAX) {
    for (const link of removed) {
      try {
        await callNative(() => binding.linkDelete({ index: link.ifindex }, ns));
      } catch (e) {
        if (!isNoDevice(e)) throw e; // gone with its lower device or its veth peer
      }
    }
    return;
  }
  const used = new Set(all.map((l) => l.group));
  let group: number;
  // Any unused group will do (the loop checks), so Math.random: node:crypto would load ~30 internal modules (streams,
  // ciphers) with the package, the largest part of what import('macvtap') cost.
  do group = 1 + Math.floor(Math.random() * 0xffff_fffe); while (used.has(group) || constructionPid(group) !== null);
  await Promise.all(removed.map(async (link) => {
    try {
      await callNative(() => binding.linkSet({ index: link.ifindex }, { group }, ns));
    } catch (e) {
      if (!isNoDevice(e)) throw e;
    }
  }));
  await callNative(() => binding.linkDeleteGroup(group, ns));
}

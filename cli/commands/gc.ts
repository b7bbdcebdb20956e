/** `macvtap gc`: removes the links whose owner process is gone (see the library's `gc`). */
import { parseArgs } from 'node:util';
import { gc, type LinkInfo } from '../../lib/index.js';
import { constructionPid, parseOwnerTag } from '../../lib/owner.js';
import { netnsArg, printTable } from '../args.js';

function row(status: string, l: LinkInfo): string[] {
  const tag = parseOwnerTag(l.alias);
  // A half-made link (creator killed before its tag) names no owner: its pid comes from the construction marker.
  const pid = tag ? tag.pid : constructionPid(l.group);
  return [status, String(l.ifindex), l.name, l.kind ?? '-', tag?.owner ?? (pid !== null ? '(half-made)' : '-'), pid !== null ? String(pid) : '-'];
}

/**
 * `macvtap gc [--owner O] [--netns NS] [--dry-run] [--json]`: prints a table of the links it removed (with
 * `--dry-run`, would remove) and those it kept because their owner is alive, then the port-security tables whose
 * device is gone and the tap nodes whose link is gone, or `{ removed, kept, portSecurity, tapNodes }` as JSON.
 */
export async function gcCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { owner: { type: 'string' }, netns: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
  });
  const result = await gc({
    ...(values.owner !== undefined && { owner: values.owner }),
    ...(values.netns !== undefined && { netns: netnsArg(values.netns) as string }),
    ...(values['dry-run'] !== undefined && { dryRun: values['dry-run'] }),
  });
  if (values.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return 0;
  }
  const gone = values['dry-run'] ? 'would remove' : 'removed';
  printTable(['STATUS', 'IFINDEX', 'NAME', 'KIND', 'OWNER', 'PID'], [
    ...result.removed.map((l) => row(gone, l)),
    ...result.kept.map((l) => row('kept', l)),
  ]);
  process.stdout.write(`${result.removed.length} ${gone}, ${result.kept.length} kept (owner alive); untagged links are never touched\n`);
  if (result.portSecurity.length > 0) {
    process.stdout.write(`port security: ${gone} the tables of ${result.portSecurity.join(', ')} (device gone or replaced)\n`);
  }
  if (result.tapNodes.length > 0) {
    process.stdout.write(`tap nodes: ${gone} ${result.tapNodes.join(', ')} (link gone or replaced)\n`);
  }
  return 0;
}

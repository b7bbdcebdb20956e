/** `macvtap node`: a tap node of one macvtap for an unprivileged VMM (see the library's `createTapNode`). */
import { parseArgs } from 'node:util';
import { createTapNode, removeTapNode } from '../../lib/index.js';
import { intArg, linkArg, netnsArg, UsageError } from '../args.js';

/** `--mode` in octal, as chmod takes it: `600`, `0660`. */
function modeArg(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^0?[0-7]{1,4}$/.test(v)) throw new UsageError(`--mode takes octal permission bits like 0600, not ${JSON.stringify(v)}`);
  return parseInt(v, 8);
}

/**
 * `macvtap node DEV --uid U --gid G --mode M [--path P] [--netns NS] [--json]`: makes the node and prints its path
 * (or `{ path, major, minor, device, ifindex }` as JSON). It stays after the command exits: `macvtap gc` removes it
 * once its link is gone, `macvtap node --remove PATH` before that.
 */
export async function nodeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      uid: { type: 'string' }, gid: { type: 'string' }, mode: { type: 'string' }, path: { type: 'string' },
      netns: { type: 'string' }, remove: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  if (values.remove !== undefined) {
    if (positionals.length > 0 || values.uid !== undefined || values.gid !== undefined || values.mode !== undefined) {
      throw new UsageError('node --remove PATH takes nothing else');
    }
    const had = await removeTapNode(values.remove);
    process.stdout.write(had ? `removed ${values.remove}\n` : `no tap node recorded at ${values.remove}\n`);
    return had ? 0 : 1;
  }
  if (positionals.length !== 1) throw new UsageError('node takes one device: macvtap node DEV --uid U --gid G --mode M');
  for (const k of ['uid', 'gid', 'mode'] as const) if (values[k] === undefined) throw new UsageError(`node needs --${k}`);
  const node = await createTapNode(linkArg(positionals[0]!), {
    uid: intArg('uid', values.uid)!,
    gid: intArg('gid', values.gid)!,
    mode: modeArg(values.mode)!,
    ...(values.path !== undefined && { path: values.path }),
    ...(values.netns !== undefined && { netns: netnsArg(values.netns) as string }),
  });
  if (values.json) {
    const { path, major, minor, device, ifindex } = node;
    process.stdout.write(JSON.stringify({ path, major, minor, device, ifindex }, null, 2) + '\n');
  } else {
    process.stdout.write(`${node.path}\n`);
  }
  return 0;
}

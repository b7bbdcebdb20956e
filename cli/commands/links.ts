/** `macvtap create | list | show | delete`: the link lifecycle from the shell. */
import { parseArgs } from 'node:util';
import { createMacvtap, deleteGroup, deleteLink, getLink, listLinks, type LinkInfo, type MacvtapMode } from '../../lib/index.js';
import { intArg, linkArg, netnsArg, printTable, UsageError } from '../args.js';

function show(info: LinkInfo): string {
  const lines = [
    `${info.ifindex}: ${info.name}${info.lower ? `@${info.lower.name ?? `if${info.lower.ifindex}`}` : ''}: ${info.up ? 'UP' : 'DOWN'} operstate ${info.operstate} mtu ${info.mtu} txqlen ${info.txqlen} group ${info.group}`,
    `    kind ${info.kind ?? '-'} mac ${info.mac ?? '-'}${info.promisc ? ' promisc' : ''}${info.carrier ? ' carrier' : ''}`,
  ];
  if (info.macvlan) lines.push(`    mode ${info.macvlan.mode}${info.macvlan.nopromisc ? ' nopromisc' : ''}${info.macvlan.sourceMacs.length ? ` source ${info.macvlan.sourceMacs.join(',')}` : ''}`);
  if (info.vlan) lines.push(`    vlan id ${info.vlan.id} protocol ${info.vlan.protocol}`);
  if (info.tap) lines.push(`    tap ${info.tap.major}:${info.tap.minor} ${info.tap.path}`);
  if (info.alias) lines.push(`    alias ${JSON.stringify(info.alias)}`);
  return lines.join('\n') + '\n';
}

/** `macvtap create --lower DEV [--name N|TEMPLATE] [--mode M] …` */
export async function createCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      lower: { type: 'string' }, name: { type: 'string' }, mode: { type: 'string' }, mac: { type: 'string' },
      mtu: { type: 'string' }, txqlen: { type: 'string' }, up: { type: 'boolean' }, group: { type: 'string' },
      alias: { type: 'string' }, ifindex: { type: 'string' }, nopromisc: { type: 'boolean' },
      'source-mac': { type: 'string', multiple: true }, netns: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  if (!values.lower) throw new UsageError('create needs --lower DEV');
  const info = await createMacvtap({
    lower: linkArg(values.lower),
    ...(values.name !== undefined && { name: values.name }),
    ...(values.mode !== undefined && { mode: values.mode as MacvtapMode }),
    ...(values.mac !== undefined && { mac: values.mac }),
    ...(values.mtu !== undefined && { mtu: intArg('mtu', values.mtu) }),
    ...(values.txqlen !== undefined && { txqlen: intArg('txqlen', values.txqlen) }),
    ...(values.up !== undefined && { up: values.up }),
    ...(values.group !== undefined && { group: intArg('group', values.group) }),
    ...(values.alias !== undefined && { alias: values.alias }),
    ...(values.ifindex !== undefined && { ifindex: intArg('ifindex', values.ifindex) }),
    ...(values.nopromisc !== undefined && { nopromisc: values.nopromisc }),
    ...(values['source-mac'] !== undefined && { sourceMacs: values['source-mac'] }),
    ...(values.netns !== undefined && { netns: netnsArg(values.netns) }),
  });
  process.stdout.write(values.json ? JSON.stringify(info, null, 2) + '\n' : show(info));
  return 0;
}

/** `macvtap list [--all | --kind K] [--netns NS] [--json]`: macvtaps by default. */
export async function listCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { all: { type: 'boolean' }, kind: { type: 'string' }, netns: { type: 'string' }, json: { type: 'boolean' } },
  });
  const kind = values.all ? undefined : (values.kind ?? 'macvtap');
  const links = await listLinks({ ...(kind && { kind }), ...(values.netns !== undefined && { netns: netnsArg(values.netns) }) });
  if (values.json) {
    process.stdout.write(JSON.stringify(links, null, 2) + '\n');
    return 0;
  }
  printTable(
    ['IFINDEX', 'NAME', 'KIND', 'MODE', 'LOWER', 'MAC', 'MTU', 'STATE', 'TAP'],
    links.map((l) => [
      String(l.ifindex), l.name, l.kind ?? '-', l.macvlan?.mode ?? '-', l.lower ? (l.lower.name ?? `if${l.lower.ifindex}`) : '-',
      l.mac ?? '-', String(l.mtu), `${l.up ? 'UP' : 'DOWN'}/${l.operstate}`, l.tap ? `${l.tap.major}:${l.tap.minor}` : '-',
    ]),
  );
  return 0;
}

/** `macvtap show DEV [--netns NS] [--json]` */
export async function showCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, options: { netns: { type: 'string' }, json: { type: 'boolean' } },
  });
  if (positionals.length !== 1) throw new UsageError('show takes one DEV (name or ifindex)');
  const info = await getLink(linkArg(positionals[0] as string), { ...(values.netns !== undefined && { netns: netnsArg(values.netns) }) });
  process.stdout.write(values.json ? JSON.stringify(info, null, 2) + '\n' : show(info));
  return 0;
}

/** `macvtap delete DEV… | --group G [--netns NS]` */
export async function deleteCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, options: { netns: { type: 'string' }, group: { type: 'string' } },
  });
  const opts = { ...(values.netns !== undefined && { netns: netnsArg(values.netns) }) };
  if (values.group !== undefined) {
    if (positionals.length) throw new UsageError('delete takes either DEV… or --group G, not both');
    await deleteGroup(intArg('group', values.group) as number, opts);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('delete needs DEV… or --group G');
  for (const dev of positionals) await deleteLink(linkArg(dev), opts);
  return 0;
}

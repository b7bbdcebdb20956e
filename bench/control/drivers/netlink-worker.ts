/**
 * Runs inside the benchmark namespace (started as `ip netns exec NS node netlink-worker.js`) and does the rtnetlink
 * work with the npm `netlink` package (mildsunrise/node_netlink: a native socket, messages encoded in TypeScript).
 * A netlink socket belongs to the namespace it was created in, and that package has no namespace option, so it has to
 * live in a process that is already in the namespace. Timing is taken here, in-process, so the process start and
 * the JSON round trip to the harness are not counted, as for this package's own in-process calls.
 *
 * Protocol: one JSON object per line. First line out is `{ready: true}` or `{ready: false, reason}`. Requests
 * `{id, op, ...}` are answered `{id, ok: true, timing}` or `{id, ok: false, error}`.
 */
import { createInterface } from 'node:readline';
import { timeEach, timeInFlight, timeOnce } from '../driver.js';

type NetlinkModule = typeof import('netlink');

/** One request from the harness. */
type Request =
  | { id: number; op: 'create'; lower: number; specs: { name: string; group: number }[] }
  | { id: number; op: 'delete'; names: string[] }
  | { id: number; op: 'deleteGroup'; group: number }
  | { id: number; op: 'getLinkLoop'; count: number }
  | { id: number; op: 'getLinkParallel'; count: number; depth: number };

function send(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function load(): Promise<NetlinkModule> {
  const mod = (await import('netlink')) as NetlinkModule & { default?: NetlinkModule };
  // CommonJS package: its exports object is the default export under ESM.
  return mod.default ?? mod;
}

async function main(): Promise<void> {
  let nl: NetlinkModule;
  let sock: ReturnType<NetlinkModule['createRtNetlink']>;
  try {
    nl = await load();
    sock = nl.createRtNetlink();
  } catch (e) {
    send({ ready: false, reason: `the npm 'netlink' package does not load here: ${(e as Error).message}` });
    return;
  }

  const toBuf = (data: Parameters<InstanceType<NetlinkModule['AttrStream']>['emit']>[0]): Buffer => {
    const s = new nl.AttrStream();
    s.emit(data);
    return Buffer.concat(s.bufs);
  };
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  // IFLA_LINKINFO { IFLA_INFO_KIND "macvtap", IFLA_INFO_DATA { IFLA_MACVLAN_MODE bridge } }, built with the
  // package's own encoders, as its users would.
  const linkinfo = toBuf(nl.ifla.formatInfo({ kind: 'macvtap', data: toBuf(nl.ifla.formatMacvlan({ mode: 4 })) }));
  const createFlags = nl.FlagsNew.CREATE | nl.FlagsNew.EXCL;

  const handle = async (req: Request): Promise<unknown> => {
    switch (req.op) {
      case 'create':
        return timeEach(req.specs, (s) =>
          sock.newLink(
            { index: 0, flags: { up: true }, change: { up: true } },
            { ifname: s.name, link: u32(req.lower), group: s.group, linkinfo },
            { flags: createFlags },
          ),
        );
      case 'delete':
        return timeEach(req.names, (name) => sock.delLink({ index: 0 }, { ifname: name }));
      case 'deleteGroup':
        return timeOnce(() => sock.delLink({ index: 0 }, { group: req.group }));
      case 'getLinkLoop':
        return timeEach(new Array<number>(req.count).fill(0), async () => {
          const [m] = await sock.getLink({ index: 0 }, { ifname: 'lo' });
          if (m?.attrs.ifname !== 'lo') throw new Error('RTM_GETLINK lo: unexpected answer');
        });
      case 'getLinkParallel':
        // `depth` requests in flight at any time: throughput, not latency.
        return timeInFlight(req.count, req.depth, () => sock.getLink({ index: 0 }, { ifname: 'lo' }));
    }
  };

  send({ ready: true });
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const req = JSON.parse(line) as Request;
    try {
      send({ id: req.id, ok: true, timing: await handle(req) });
    } catch (e) {
      const err = e as Error & { code?: string };
      send({ id: req.id, ok: false, error: `${err.code ? err.code + ': ' : ''}${err.message}` });
    }
  }
  sock.socket.close();
}

main().catch((e: unknown) => {
  process.stderr.write(`netlink-worker: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});

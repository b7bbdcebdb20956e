#!/usr/bin/env node
/**
 * The `macvtap` command. It sits above the library and the benchmark harness: the link commands use `lib/`; `bench`
 * loads the separate `macvtap-bench` package only when asked, and says how to get it when it is not installed.
 */
import { MacvtapError, QmpError, QmpProtocolError } from '../lib/index.js';
import { UsageError } from './args.js';
import { createCommand, deleteCommand, listCommand, showCommand } from './commands/links.js';
import { execCommand } from './commands/exec.js';
import { gcCommand } from './commands/gc.js';
import { secureCommand } from './commands/secure.js';
import { bandwidthCommand } from './commands/bandwidth.js';
import { nodeCommand } from './commands/node.js';
import { qmpCommand } from './commands/qmp.js';

const USAGE = `Usage: macvtap <command> [options]

Links (equivalent to ip link add/show/del, over rtnetlink directly; --netns takes a name from 'ip netns add' or a path):
  create --lower DEV [--name NAME|TEMPLATE%d] [--mode bridge|vepa|private|passthru|source] [--mac MAC]
         [--mtu N] [--txqlen N] [--up] [--group G] [--alias TEXT] [--ifindex N] [--nopromisc]
         [--source-mac MAC]… [--netns NS] [--json]
  list   [--all | --kind KIND] [--netns NS] [--json]        macvtaps by default
  show   DEV [--netns NS] [--json]
  delete DEV… | --group G [--netns NS]
  gc     [--owner O] [--netns NS] [--dry-run] [--json]      delete links whose owner process is gone (owner tags)

Port security (nftables netdev chains on the device, as Neutron's port security and stateless security groups):
  secure DEV --mac MAC [--ip ADDR]… [--pair IP[,MAC]]… [--rules FILE|-] [--owner O] [--netns NS] [--json]
         replaces the device's filter; --ip: fixed IPs (addresses or prefixes); --rules: a JSON array of Neutron
         security group rules or a Neutron response {"security_group_rules": […]}, '-' reads stdin
  secure --show DEV [--netns NS] [--json]                  sets and drop counters by reason
  secure --remove DEV [--netns NS]                         idempotent: says whether there was one

Bandwidth (libvirt's <bandwidth>: inbound = to the guest, outbound = from it; KB/s and KB):
  bandwidth DEV [--inbound AVG[,PEAK,BURST]] [--outbound AVG[,PEAK,BURST]] [--clear] [--netns NS] [--json]
         sets exactly the directions given (the other is not limited), --clear removes ours, none shows them

Queues:
  exec   --dev DEV [--queues N] [--no-vnet-hdr] [--nonblock] [--vhost] [--netns NS] -- CMD ARGS…
         opens N queues and execs CMD with them inherited; {fds} in ARGS becomes "fd:fd:…", {fd} the first,
         e.g.  macvtap exec --dev mvtap0 --queues 4 -- qemu-system-x86_64 -netdev tap,id=n0,fds={fds} …
         --vhost: also one /dev/vhost-net fd per queue, inherited as {vhostfds} ("fd:fd:…") / {vhostfd},
         e.g.  … -netdev tap,id=n0,fds={fds},vhost=on,vhostfds={vhostfds}
  node   DEV --uid U --gid G --mode M [--path P] [--netns NS] [--json]
         a char node of DEV's own device for an unprivileged VMM (default /dev/macvtap/ID), printed; it stays
         until 'macvtap node --remove PATH', or 'macvtap gc' once DEV is gone

QEMU hot-plug (over QMP: -qmp unix:PATH,server=on,wait=off; the NIC gets the macvtap's MAC):
  qmp attach --socket PATH --dev DEV [--queues N] [--id ID] [--netns NS] [--bus BUS] [--mtu N] [--vhost] [--json]
  qmp detach --socket PATH (--id ID | --dev DEV) [--timeout MS] [--json]
         --id defaults to mvt-DEV; detach waits for the guest to release the NIC (DEVICE_DELETED)

libvirt / Nova:
  xml    --vif vif.json [--vcpus N] [--ethernet] [--json]   the <interface> for a Nova macvtap vif

Benchmark (the separate package macvtap-bench, loaded when installed; the same as its macvtap-bench command):
  bench  [datapath options] | bench control|security|guest [options]   run 'macvtap bench --help'
         every subcommand takes --json FILE, --html FILE, --quiet
`;

/** The harness's package: a separate install (a driver that depends on `macvtap` never gets it). */
const HARNESS = 'macvtap-bench';

/** `macvtap bench …`: runs the harness's `benchMain`, loaded lazily; one line on how to get it when it is missing. */
async function benchCommand(argv: string[]): Promise<number> {
  let harness: { benchMain(argv: string[]): Promise<number> };
  try {
    // A variable specifier: the library is built without the harness's types, and nothing may bundle it in.
    const specifier: string = HARNESS;
    harness = (await import(specifier)) as typeof harness;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    if (err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(`'${HARNESS}'`)) {
      process.stderr.write(`macvtap bench: the benchmark harness is not installed: npm install ${HARNESS} (then run macvtap-bench or macvtap bench)\n`);
      return 1;
    }
    throw e;
  }
  return harness.benchMain(argv);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'create': return createCommand(rest);
    case 'list': return listCommand(rest);
    case 'show': return showCommand(rest);
    case 'delete': return deleteCommand(rest);
    case 'exec': return execCommand(rest);
    case 'gc': return gcCommand(rest);
    case 'node': return nodeCommand(rest);
    case 'secure': return secureCommand(rest);
    case 'bandwidth': return bandwidthCommand(rest);
    case 'qmp': return qmpCommand(rest);
    case 'xml': {
      const { xmlCommand } = await import('./commands/xml.js');
      return xmlCommand(rest);
    }
    case 'bench': return benchCommand(rest);
    case undefined: case 'help': case '--help': case '-h':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    if (e instanceof UsageError || (e instanceof TypeError && /^ERR_PARSE_ARGS/.test(String((e as { code?: string }).code)))) {
      process.stderr.write(`macvtap: ${e.message}\n\n${USAGE}`);
      process.exitCode = 2;
    } else if (e instanceof MacvtapError || e instanceof QmpError || e instanceof QmpProtocolError || e instanceof TypeError || e instanceof RangeError ||
      (e instanceof Error && (e as { syscall?: string }).syscall === 'connect')) {
      process.stderr.write(`macvtap: ${e.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`macvtap: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    }
  },
);

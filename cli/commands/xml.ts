/**
 * `macvtap xml --vif vif.json [options]`: the libvirt `<interface>` for a Nova macvtap vif, or with `--json` its
 * parsed (typed) form. Pure: reads the vif file, touches no link.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  VifError,
  interfaceFromVif,
  interfaceToXml,
  parseVif,
  toDomainXml,
  type InterfaceOptions,
} from '../../lib/vif/index.js';
import { intArg, UsageError } from '../args.js';

/** Usage of `macvtap xml`. */
export const XML_USAGE = `Usage: macvtap xml --vif FILE|- [options]

Prints the libvirt <interface> for a Nova macvtap vif (JSON, as Nova/Neutron hand it over; '-' reads stdin).
  --vcpus N                multiqueue: <driver name='vhost' queues='min(N, max-tap-queues)'>
  --max-tap-queues N       ceiling for the queue count (default 256)
  --ethernet               the unmanaged form <interface type='ethernet'><target dev managed='no'> (needs --target-dev)
  --target-dev NAME        <target dev>
  --model TYPE             <model type> (default virtio)
  --driver vhost|qemu      <driver name>
  --rx-queue-size N        <driver rx_queue_size> (256, 512, 1024)
  --mtu N                  <mtu size> (ethernet form; default network.meta.mtu there)
  --link-state up|down     <link state>
  --trust-guest-rx-filters trustGuestRxFilters='yes' (direct form)
  --boot-order N           <boot order>
  --alias ua-NAME          <alias name>
  --quota KEY=VALUE        a flavor extra spec, e.g. quota:vif_inbound_average=1000 (repeatable)
  --domain                 wrap the interface in a minimal <domain> (for virt-xml-validate)
  --json                   print the parsed interface as JSON instead of XML
`;

/** Where {@link xmlCommand} reads and writes; the process's streams by default (tests pass their own). */
export interface XmlCommandIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  /** Reads all of stdin (for `--vif -`). */
  readStdin(): string;
}

const processIo: XmlCommandIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  readStdin: () => readFileSync(0, 'utf8'),
};

function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${name} takes ${allowed.join(' or ')}, not ${JSON.stringify(v)}`);
  return v as T;
}

/**
 * Runs `macvtap xml ARGS…`. Returns the exit code: 0 on success, 1 when the vif (or its file) is refused, 2 on a
 * usage error; messages go to stderr.
 */
export async function xmlCommand(argv: string[], io: XmlCommandIo = processIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        vif: { type: 'string' },
        vcpus: { type: 'string' },
        'max-tap-queues': { type: 'string' },
        ethernet: { type: 'boolean' },
        'target-dev': { type: 'string' },
        model: { type: 'string' },
        driver: { type: 'string' },
        'rx-queue-size': { type: 'string' },
        mtu: { type: 'string' },
        'link-state': { type: 'string' },
        'trust-guest-rx-filters': { type: 'boolean' },
        'boot-order': { type: 'string' },
        alias: { type: 'string' },
        quota: { type: 'string', multiple: true },
        domain: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    io.stderr.write(`macvtap xml: ${(e as Error).message}\n\n${XML_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(XML_USAGE);
    return 0;
  }

  let options: InterfaceOptions;
  try {
    if (values.vif === undefined) throw new UsageError('--vif FILE is required');
    const quota: Record<string, string> = {};
    for (const kv of values.quota ?? []) {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new UsageError(`--quota takes KEY=VALUE, not ${JSON.stringify(kv)}`);
      quota[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    options = {
      ...(values.ethernet && { form: 'ethernet' as const }),
      ...(values['target-dev'] !== undefined && { targetDev: values['target-dev'] }),
      ...(values.model !== undefined && { model: values.model as InterfaceOptions['model'] }),
      ...(values.driver !== undefined && { driverName: oneOf('driver', values.driver, ['vhost', 'qemu'] as const) }),
      ...(values.vcpus !== undefined && { vcpus: intArg('vcpus', values.vcpus) }),
      ...(values['max-tap-queues'] !== undefined && { maxTapQueues: intArg('max-tap-queues', values['max-tap-queues']) }),
      ...(values['rx-queue-size'] !== undefined && { rxQueueSize: intArg('rx-queue-size', values['rx-queue-size']) }),
      ...(values.mtu !== undefined && { mtu: intArg('mtu', values.mtu) }),
      ...(values['link-state'] !== undefined && { linkState: oneOf('link-state', values['link-state'], ['up', 'down'] as const) }),
      ...(values['trust-guest-rx-filters'] && { trustGuestRxFilters: true }),
      ...(values['boot-order'] !== undefined && { bootOrder: intArg('boot-order', values['boot-order']) }),
      ...(values.alias !== undefined && { alias: values.alias }),
      ...(Object.keys(quota).length > 0 && { quota }),
    };
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr.write(`macvtap xml: ${e.message}\n\n${XML_USAGE}`);
    return 2;
  }

  let text: string;
  try {
    text = values.vif === '-' ? io.readStdin() : readFileSync(values.vif!, 'utf8');
  } catch (e) {
    io.stderr.write(`macvtap xml: cannot read ${values.vif}: ${(e as Error).message}\n`);
    return 1;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    io.stderr.write(`macvtap xml: ${values.vif} is not JSON: ${(e as Error).message}\n`);
    return 1;
  }

  try {
    const vif = parseVif(json);
    const config = interfaceFromVif(vif, options);
    if (values.json) io.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    else if (values.domain) io.stdout.write(`${toDomainXml([config], { name: `vif-${vif.id}` })}\n`);
    else io.stdout.write(`${interfaceToXml(config)}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof VifError)) throw e;
    io.stderr.write(`macvtap xml: ${e.message}\n`);
    for (const i of e.issues) io.stderr.write(`  ${i.path || '(vif)'}: ${i.message}\n`);
    return 1;
  }
}

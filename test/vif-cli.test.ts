/**
 * `macvtap xml`: in process (xmlCommand with captured streams) for every flag and error path, and once as a user runs
 * it (the compiled CLI in a child process), its output checked by libvirt.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { xmlCommand, type XmlCommandIo } from '../cli/commands/xml.js';
import { parseDomainInterfaces, parseInterfaceXml } from '../lib/vif/index.js';
import { describeLibvirt, novaVif, validateDomain } from './helpers/libvirt.js';

const dir = mkdtempSync(join(tmpdir(), 'mvt-vif-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function vifFile(name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

async function run(argv: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: XmlCommandIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    readStdin: () => stdin,
  };
  const code = await xmlCommand(argv, io);
  return { code, stdout, stderr };
}

const good = vifFile('good.json', novaVif());

describe('macvtap xml (in process)', () => {
  test('prints the direct <interface> for a vif file', async () => {
    const r = await run(['--vif', good]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(parseInterfaceXml(r.stdout)).toStrictEqual({
      type: 'direct',
      mac: 'fa:16:3e:12:34:56',
      source: { dev: 'eth0.100', mode: 'bridge' },
      model: 'virtio',
    });
  });

  test('every flag lands in the XML', async () => {
    const r = await run([
      '--vif', good, '--vcpus', '16', '--max-tap-queues', '4', '--target-dev', 'macvtap9', '--model', 'virtio',
      '--driver', 'vhost', '--rx-queue-size', '512', '--link-state', 'down', '--trust-guest-rx-filters',
      '--boot-order', '2', '--alias', 'ua-nic0', '--quota', 'quota:vif_inbound_average=100', '--quota', 'quota:vif_inbound_burst=10',
    ]);
    expect(r.code).toBe(0);
    expect(parseInterfaceXml(r.stdout)).toStrictEqual({
      type: 'direct',
      trustGuestRxFilters: true,
      mac: 'fa:16:3e:12:34:56',
      source: { dev: 'eth0.100', mode: 'bridge' },
      target: { dev: 'macvtap9' },
      model: 'virtio',
      driver: { name: 'vhost', queues: 4, rxQueueSize: 512 },
      bandwidth: { inbound: { average: 100, burst: 10 } },
      linkState: 'down',
      bootOrder: 2,
      alias: 'ua-nic0',
    });
  });

  test('--ethernet with --target-dev and --mtu; --json prints the parsed form', async () => {
    const r = await run(['--vif', good, '--ethernet', '--target-dev', 'mvt0', '--mtu', '1400', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toStrictEqual({
      type: 'ethernet',
      mac: 'fa:16:3e:12:34:56',
      target: { dev: 'mvt0', managed: false },
      model: 'virtio',
      mtu: 1400,
    });
  });

  test('--vif - reads stdin; --domain wraps the interface in a domain', async () => {
    const r = await run(['--vif', '-', '--domain'], JSON.stringify(novaVif()));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^<domain type="qemu">/);
    expect(parseDomainInterfaces(r.stdout)).toHaveLength(1);
  });

  test('--help prints usage, exit 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: macvtap xml --vif/);
  });

  test.each([
    [[], /--vif FILE is required/],
    [['--vif'], /argument missing|--vif/],
    [['--vif', good, '--bogus'], /Unknown option '--bogus'/],
    [['--vif', good, 'extra'], /positional/i],
    [['--vif', good, '--vcpus', 'four'], /--vcpus takes a non-negative integer/],
    [['--vif', good, '--link-state', 'sideways'], /--link-state takes up or down/],
    [['--vif', good, '--quota', 'novalue'], /--quota takes KEY=VALUE/],
  ])('usage error %j → exit 2 with usage', async (argv, message) => {
    const r = await run(argv as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/Usage: macvtap xml/);
    expect(r.stdout).toBe('');
  });

  test('a vif missing macvtap details → exit 1, the missing keys named, no XML', async () => {
    const p = vifFile('missing.json', novaVif({ details: { macvtap_mode: 'bridge' } }));
    const r = await run(['--vif', p]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Parameters macvtap_source, physical_interface not present/);
    expect(r.stderr).toMatch(/details\.macvtap_source: required/);
    expect(r.stdout).toBe('');
  });

  test('bad values → exit 1 with every issue on its own line', async () => {
    const p = vifFile('bad.json', novaVif({ address: '01:00:5e:00:00:01', details: { macvtap_source: 'eth0.5000', macvtap_mode: 'bridged', physical_interface: 'eth0', vlan: 5000 } }));
    const r = await run(['--vif', p]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ {2}address: must be a unicast MAC address/m);
    expect(r.stderr).toMatch(/^ {2}details\.macvtap_mode: unknown macvtap mode "bridged"/m);
    expect(r.stderr).toMatch(/^ {2}details\.vlan: VLAN id must be in 1–4094/m);
  });

  test('options libvirt would refuse → exit 1 (mtu on direct, floor, hostile target)', async () => {
    expect((await run(['--vif', good, '--mtu', '1400'])).stderr).toMatch(/mtu: libvirt refuses <mtu> on type "direct"/);
    expect((await run(['--vif', good, '--quota', 'vif_inbound_floor=5', '--quota', 'vif_inbound_average=5'])).code).toBe(1);
    const r = await run(['--vif', good, '--target-dev', 'x"/><evil/>']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
  });

  test('unreadable file and non-JSON → exit 1', async () => {
    expect((await run(['--vif', join(dir, 'nope.json')])).stderr).toMatch(/cannot read .*nope\.json/);
    expect((await run(['--vif', vifFile('text.json', 'not json')])).stderr).toMatch(/is not JSON/);
  });
});

const cli = resolve(import.meta.dirname, '..', 'dist', 'cli', 'macvtap.js');
const cliMissing = existsSync(cli) ? null : 'dist/cli/macvtap.js is not built (npm run build:ts)';
if (cliMissing && process.env.CI === 'true') throw new Error(`vif-cli: ${cliMissing}, and CI must run it`);

describeLibvirt('macvtap xml (the compiled CLI)', () => {
  test.skipIf(cliMissing !== null)(`runs as a user would and libvirt accepts its output${cliMissing ? ` [SKIPPED: ${cliMissing}]` : ''}`, async () => {
    const r = spawnSync(process.execPath, [cli, 'xml', '--vif', good, '--vcpus', '4', '--domain'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect((await validateDomain(r.stdout)).output).toMatch(/validates/);
    const bad = spawnSync(process.execPath, [cli, 'xml', '--vif', vifFile('bad2.json', novaVif({ type: 'ovs' }))], { encoding: 'utf8', timeout: 30_000 });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/vif type must be "macvtap", not "ovs"/);
  });
});

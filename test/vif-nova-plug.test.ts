/**
 * `plug` against Nova's own `LibvirtGenericVIFDriver.plug()` (python3-nova 26, Zed). Nova's commands are recorded by
 * `test/nova/oracle.py` (one Python process for every case; `device_exists` answers from the namespace's real links)
 * and then replayed with the real `ip` in one throwaway namespace, with Nova's own acceptance rule (the exit code must
 * be in the command's `check_exit_code`); ours runs in a twin namespace. The resulting devices are compared as
 * `ip -d -j link show` sees them: name, lower device, VLAN id, up-state.
 *
 * VLAN cases need 802.1Q: on a kernel without it they skip with the reason (they run in the 6.1-kernel VM).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { VifPlugError, plug, type VifInput } from '../lib/vif/index.js';
import { destroyAll, TestNetns, vlanUnsupported as vlanUnsupportedProbe, type IpLinkJson } from '../bench/testbed/netns.js';
import { spawnSync } from 'node:child_process';
import { describeNovaPrivileged, novaUnavailable, runOracle, type NovaCommand } from './helpers/nova.js';
import { isRoot } from './helpers/suite.js';

const vlanUnsupported = isRoot && novaUnavailable === null ? vlanUnsupportedProbe() : 'not run';

/** One plug scenario: the vif (its details as Neutron binds them), and how the host looks before the plug. */
interface Scenario {
  label: string;
  phys: string;
  vlan?: number;
  source: string;
  physDown?: boolean;
  /** The VLAN device exists already (made with `ip`, left down). */
  vlanExists?: boolean;
  /** The flat source device is down before the plug. */
  sourceDown?: boolean;
}

const scenarios: Scenario[] = [
  { label: 'VLAN 100 on eth0, fresh', phys: 'eth0', vlan: 100, source: 'eth0.100' },
  // Neutron's hashed name for a long interface (bind_port in test/vif-nova.test.ts gives exactly these).
  { label: 'VLAN 1 on a 13-byte interface (hashed name)', phys: 'enp129s0f1np1', vlan: 1, source: 'enp19cb088.1' },
  { label: 'VLAN 4094 on a 15-byte interface (hashed name)', phys: 'longphysname015', vlan: 4094, source: 'long4e6e5d.4094' },
  { label: 'VLAN 100 already there, down', phys: 'eth0', vlan: 100, source: 'eth0.100', vlanExists: true },
  { label: 'VLAN 100, physical interface down', phys: 'eth0', vlan: 100, source: 'eth0.100', physDown: true },
  { label: 'flat, source up', phys: 'eth0', source: 'eth0' },
  { label: 'flat, source down', phys: 'eth0', source: 'eth0', sourceDown: true },
];

function vifOf(s: Scenario, i: number): VifInput {
  return {
    id: `00000000-0000-4000-8000-00000000100${i}`,
    address: `fa:16:3e:bb:00:0${i}`,
    type: 'macvtap',
    vnic_type: 'normal',
    network: { id: 'net-1', bridge: null, label: 'n', meta: {}, subnets: [] },
    details: {
      connectivity: 'l2', port_filter: false, physical_interface: s.phys, macvtap_source: s.source, macvtap_mode: 'bridge',
      ...(s.vlan === undefined ? {} : { vlan: s.vlan }),
    },
  } as VifInput;
}

/** A namespace set up as the scenario says: veth `phys` ↔ `peer0`, and the VLAN device when it already exists. */
function hostFor(s: Scenario): TestNetns {
  const ns = TestNetns.create();
  ns.veth(s.phys, 'peer0');
  if (s.physDown || s.sourceDown) ns.ip('link', 'set', s.phys, 'down');
  if (s.vlanExists) ns.ip('link', 'add', 'link', s.phys, 'name', s.source, 'type', 'vlan', 'id', String(s.vlan));
  return ns;
}

/** What the comparison looks at: the device's name, lower, VLAN id and whether it is up. */
function device(ns: TestNetns, name: string): { name: string; lower: string | undefined; id: number | undefined; up: boolean } | null {
  const l = ns.ipLinks().find((x: IpLinkJson) => x.ifname === name);
  if (!l) return null;
  return { name: l.ifname, lower: l.link, id: l.linkinfo?.info_data?.id, up: l.flags.includes('UP') };
}

/** Replays Nova's commands in `ns` as Nova's processutils.execute would judge them: an exit code outside check_exit_code raises. */
function replay(ns: TestNetns, commands: NovaCommand[]): { ok: boolean; exits: number[] } {
  const exits: number[] = [];
  for (const c of commands) {
    expect(c.argv[0]).toBe('ip');
    const r = spawnSync('ip', ['-n', ns.name, ...c.argv.slice(1)], { encoding: 'utf8' });
    exits.push(r.status ?? -1);
    if (!c.check_exit_code.includes(r.status ?? -1)) return { ok: false, exits };
  }
  return { ok: true, exits };
}



afterAll(() => destroyAll());

describeNovaPrivileged("plug against Nova's own plug (commands replayed with ip)", () => {
  // Each scenario: Nova's namespace and ours, built alike; Nova's commands recorded in one oracle run.
  let nova: Array<{ commands: NovaCommand[] } | { error: string }> = [];
  const hosts: Array<{ novaNs: TestNetns; oursNs: TestNetns } | null> = [];
  beforeAll(() => {
    const cases: Array<{ vif: Record<string, unknown>; existing: string[] }> = [];
    scenarios.forEach((s, i) => {
      if (s.vlan !== undefined && vlanUnsupported !== null) return void hosts.push(null);
      const novaNs = hostFor(s);
      const oursNs = hostFor(s);
      hosts.push({ novaNs, oursNs });
      cases.push({ vif: vifOf(s, i) as unknown as Record<string, unknown>, existing: novaNs.ipLinks().map((l) => l.ifname) });
    });
    const out = cases.length ? runOracle({ plug: cases }).plug : [];
    let k = 0;
    nova = hosts.map((h) => (h === null ? { commands: [] } : (out[k++] as { commands: NovaCommand[] })));
  }, 300_000);
  afterAll(() => { for (const h of hosts) { h?.novaNs.destroy(); h?.oursNs.destroy(); } });

  scenarios.forEach((s, i) => {
    const skip = s.vlan !== undefined && vlanUnsupported !== null ? ` [skipped: ${vlanUnsupported}]` : '';
    test(`${s.label}${skip}`, async (ctx) => {
      if (skip) ctx.skip(String(vlanUnsupported));
      const h = hosts[i]!;
      const n = nova[i]!;
      expect(n).toHaveProperty('commands');
      const { commands } = n as { commands: NovaCommand[] };
      const novaRun = replay(h.novaNs, commands);
      expect(novaRun.ok).toBe(true);
      const novaDev = device(h.novaNs, s.source);

      if (s.vlan !== undefined && !s.vlanExists) {
        // Nova (Zed) creates and ups the VLAN and sets no MTU (plug_macvtap passes none to ensure_vlan).
        expect(commands.map((c) => c.argv.join(' '))).toStrictEqual([
          `ip link add link ${s.phys} name ${s.source} type vlan id ${s.vlan}`,
          `ip link set ${s.source} up`,
        ]);
      } else {
        // An existing VLAN device, or a flat network: Nova runs nothing at all.
        expect(commands).toStrictEqual([]);
      }

      if (s.physDown) {
        // Nova: "ip link set … up" fails (exit 2, ENETDOWN) and is accepted: the plug succeeds with the VLAN down.
        expect(novaRun.exits).toStrictEqual([0, 2]);
        expect(novaDev).toStrictEqual({ name: s.source, lower: s.phys, id: s.vlan, up: false });
        // Ours refuses with ENETDOWN as the cause and leaves nothing half-made: no VLAN device remains.
        const before = h.oursNs.ipLinks().map((l) => l.ifname).sort();
        const e = await plug(vifOf(s, i), { netns: h.oursNs.path }).then(() => null, (err: unknown) => err);
        expect(e).toBeInstanceOf(VifPlugError);
        expect((e as VifPlugError).code).toBe('ERR_VIF_PLUG_FAILED');
        expect((e as VifPlugError).cause).toMatchObject({ code: 'ENETDOWN' });
        expect(h.oursNs.ipLinks().map((l) => l.ifname).sort()).toStrictEqual(before);
        return;
      }

      await plug(vifOf(s, i), { netns: h.oursNs.path });
      const oursDev = device(h.oursNs, s.source);
      if (s.vlanExists || s.sourceDown) {
        // Nova leaves the device as it found it (down); ours brings it up, since a down source carries no traffic.
        expect(novaDev).toMatchObject({ name: s.source, up: false });
        expect(oursDev).toStrictEqual({ ...novaDev, up: true });
      } else {
        expect(oursDev).toStrictEqual(novaDev);
        expect(oursDev!.up).toBe(true);
      }
      if (s.vlan !== undefined) expect(oursDev).toMatchObject({ lower: s.phys, id: s.vlan });
    });
  });
});

/**
 * libvirt's own judgement of our XML: `virt-xml-validate FILE domain` (Debian `libvirt-clients`, which needs
 * `xmllint` from `libxml2-utils`) checks a document against libvirt's RelaxNG schema. It is the independent view:
 * the schema is libvirt's, not ours.
 *
 * Validation is batched: many documents are written to one temporary directory and validated with a few parallel
 * processes, so a suite can check hundreds of interfaces without paying a process per test.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { VifError, type VifInput } from '../../lib/vif/index.js';

/** Why libvirt validation cannot run here, or `null` when it can. */
export const libvirtValidateUnavailable: string | null = (() => {
  for (const tool of ['virt-xml-validate', 'xmllint']) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    if (r.status !== 0) return `${tool} is not installed (apt-get install libvirt-clients libxml2-utils)`;
  }
  return null;
})();

/**
 * `describe` for suites that need `virt-xml-validate`. Skipped loudly with the reason when the tools are missing;
 * in CI (`CI=true`) a missing tool is an error, so libvirt validation can never silently disappear there.
 */
export function describeLibvirt(name: string, fn: () => void): void {
  if (libvirtValidateUnavailable) {
    if (process.env.CI === 'true') throw new Error(`${name}: ${libvirtValidateUnavailable}, and CI must run it`);
    describe.skip(`${name} [SKIPPED: ${libvirtValidateUnavailable}]`, fn);
    return;
  }
  describe(name, fn);
}

/** The outcome of validating one document. */
export interface ValidationResult {
  ok: boolean;
  /** virt-xml-validate's combined output (the RelaxNG errors when `ok` is false). */
  output: string;
  /** The document that was validated. */
  xml: string;
}

/** Number of validations done by this process, so suites can report (and keep bounded) how many they ran. */
export let validationCount = 0;

function validateFile(path: string): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile('virt-xml-validate', [path, 'domain'], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ ok: err === null, output: `${stdout}${stderr}`.trim() });
    });
  });
}

/**
 * Validates each document as a libvirt `domain` with `virt-xml-validate`, at most `parallel` processes at a time.
 * Results are in input order.
 */
export async function validateDomains(xmls: string[], parallel = 2): Promise<ValidationResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'mvt-virt-xml-'));
  try {
    const paths = xmls.map((xml, i) => {
      const p = join(dir, `domain-${i}.xml`);
      writeFileSync(p, xml);
      return p;
    });
    const results: ValidationResult[] = new Array(xmls.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= paths.length) return;
        const r = await validateFile(paths[i]!);
        validationCount++;
        results[i] = { ...r, xml: xmls[i]! };
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, xmls.length)) }, worker));
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Validates one domain document. */
export async function validateDomain(xml: string): Promise<ValidationResult> {
  const [r] = await validateDomains([xml], 1);
  return r!;
}


/** A vif as Nova's network model serializes it for a Neutron macvtap port on VLAN 100. */
export function novaVif(over: Record<string, unknown> = {}): VifInput {
  // Cast: tests pass deliberately malformed overrides through here too.
  return {
    id: '6c1b3d0e-2f4a-4b8e-9a51-0d3c2b1a0f9e',
    address: 'fa:16:3e:12:34:56',
    type: 'macvtap',
    vnic_type: 'normal',
    devname: 'tap6c1b3d0e-2f',
    network: { id: 'a1b2', bridge: null, label: 'private', meta: { mtu: 1450, injected: false }, subnets: [] },
    details: { macvtap_source: 'eth0.100', macvtap_mode: 'bridge', physical_interface: 'eth0', vlan: 100, port_filter: false },
    ovs_interfaceid: null,
    qbh_params: null,
    qbg_params: null,
    active: true,
    preserve_on_delete: false,
    profile: {},
    ...over,
  } as VifInput;
}

/** The `VifError` a call throws; fails the test when it throws something else or nothing. */
export function catchErr(fn: () => unknown): VifError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(VifError);
    return e as VifError;
  }
  throw new Error('expected a VifError, nothing was thrown');
}

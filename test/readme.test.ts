/** README examples that can run anywhere are run, and their printed output must be what the README shows. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { TestNetns } from '../bench/testbed/netns.js';
import { nftUnavailable } from './helpers/nft.js';
import { describeNeeding } from './helpers/suite.js';

const root = resolve(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const work = mkdtempSync(join(tmpdir(), 'mvt-readme-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The code block after `<!-- readme-example: NAME -->` and the first block after it that shows its output. */
function example(name: string): { code: string; output: string } {
  const at = readme.indexOf(`<!-- readme-example: ${name} -->`);
  if (at < 0) throw new Error(`README has no example ${name}`);
  const blocks = [...readme.slice(at).matchAll(/```(\w+)\n([\s\S]*?)```/g)];
  const [code, output] = blocks;
  if (!code?.[2] || !output?.[2]) throw new Error(`README example ${name} needs a code block and an output block`);
  return { code: code[2], output: output[2] };
}

describe('README examples', () => {
  it('vif → <interface> prints exactly what the README shows', () => {
    const dist = join(root, 'dist', 'lib', 'vif', 'index.js');
    expect(existsSync(dist), 'dist/ is built by npm run build:ts (pretest)').toBe(true);
    const { code, output } = example('vif');
    const file = join(work, 'vif.mjs');
    writeFileSync(file, code.replace(`from 'macvtap/vif'`, `from ${JSON.stringify(pathToFileURL(dist).href)}`));
    expect(execFileSync(process.execPath, [file], { encoding: 'utf8' })).toBe(output);
  });

  it('qemuNetdevArgs → the QEMU arguments the README shows', () => {
    const dist = join(root, 'dist', 'lib', 'index.js');
    const { code, output } = example('qemu-args');
    const file = join(work, 'qemu-args.mjs');
    writeFileSync(file, code.replace(`from 'macvtap'`, `from ${JSON.stringify(pathToFileURL(dist).href)}`));
    expect(execFileSync(process.execPath, [file], { encoding: 'utf8' })).toBe(output);
  });

  it("novaInterfaceXml → Nova's decisions and its error, as the README shows", () => {
    const dist = join(root, 'dist', 'lib', 'vif', 'index.js');
    const { code, output } = example('vif-nova');
    const file = join(work, 'vif-nova.mjs');
    writeFileSync(file, code.replace(`from 'macvtap/vif'`, `from ${JSON.stringify(pathToFileURL(dist).href)}`));
    expect(execFileSync(process.execPath, [file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).toBe(output);
  });

  it('vif port security → the policy and the refusal the README shows', () => {
    const dist = join(root, 'dist', 'lib', 'vif', 'index.js');
    const { code, output } = example('vif-portsec');
    const file = join(work, 'vif-portsec.mjs');
    writeFileSync(file, code.replace(`from 'macvtap/vif'`, `from ${JSON.stringify(pathToFileURL(dist).href)}`));
    expect(execFileSync(process.execPath, [file], { encoding: 'utf8' })).toBe(output);
  });
});

describeNeeding('README examples that need root', nftUnavailable, () => {
  it('macvtap secure: the shell example prints what the README shows, in a throwaway namespace for guest0', () => {
    const ns = TestNetns.create();
    try {
      ns.veth('l0', 'l1');
      ns.ip('link', 'add', 'link', 'l0', 'name', 'mvtap0', 'address', 'fa:16:3e:12:34:56', 'type', 'macvtap');
      const { code, output } = example('secure-cli');
      const cli = join(root, 'dist', 'cli', 'macvtap.js');
      const script = `macvtap() { ${JSON.stringify(process.execPath)} ${JSON.stringify(cli)} "$@"; }\nset -e\n${code.replaceAll('guest0', ns.name)}`;
      expect(execFileSync('sh', ['-c', script], { encoding: 'utf8' })).toBe(output);
    } finally {
      ns.destroy();
    }
  });
});

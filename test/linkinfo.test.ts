/**
 * The link factory's argument list, held to one order in three places: the addon's table (`MACVTAP_LINK_FACTORY_ARGS`
 * in native/link.cc, whose names `setLinkFactory` returns), `NativeLinkFactory` in binding.d.ts, and `linkFromNative`
 * in lib/linkinfo.ts. TypeScript checks the factory against the type only by types: two swapped parameters of the same
 * type (`mtu`/`txqlen`, `numTxQueues`/`numRxQueues`) would compile and silently misreport both fields. The names are
 * read from the sources with the TypeScript compiler, so a renamed or reordered parameter anywhere fails here.
 * Needs no privileges (the privileged field-by-field check against `ip` is in links.test.ts).
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { binding } from '../lib/binding.js';
import { linkFromNative } from '../lib/linkinfo.js';

function source(rel: string): ts.SourceFile {
  const file = fileURLToPath(new URL(rel, import.meta.url));
  return ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
}

function paramNames(params: ts.NodeArray<ts.ParameterDeclaration>): string[] {
  return params.map((p) => p.name.getText());
}

/** The parameter names of `type NativeLinkFactory = (…) => LinkInfo` in binding.d.ts. */
function declaredNames(): string[] {
  let names: string[] | null = null;
  source('../binding.d.ts').forEachChild((node) => {
    if (ts.isTypeAliasDeclaration(node) && node.name.text === 'NativeLinkFactory' && ts.isFunctionTypeNode(node.type)) {
      names = paramNames(node.type.parameters);
    }
  });
  if (!names) throw new Error('binding.d.ts: no function type NativeLinkFactory');
  return names;
}

/** The parameter names of `export const linkFromNative: NativeLinkFactory = (…) => …` in lib/linkinfo.ts. */
function implementedNames(): string[] {
  let names: string[] | null = null;
  const visit = (node: ts.Node): void => {
    if (ts.isVariableDeclaration(node) && node.name.getText() === 'linkFromNative' && node.initializer &&
      (ts.isArrowFunction(node.initializer) || ts.isFunctionExpression(node.initializer))) {
      names = paramNames(node.initializer.parameters);
    }
    node.forEachChild(visit);
  };
  visit(source('../lib/linkinfo.ts'));
  if (!names) throw new Error('lib/linkinfo.ts: no function linkFromNative');
  return names;
}

describe('the link factory argument list', () => {
  const native = binding.setLinkFactory(linkFromNative);

  it('the addon passes its arguments in the order binding.d.ts declares them', () => {
    expect(native.length).toBeGreaterThan(20);
    expect(new Set(native).size).toBe(native.length);
    expect(native).toEqual(declaredNames());
  });

  it('linkFromNative takes them in that order, under the same names', () => {
    expect(implementedNames()).toEqual(native);
    expect(linkFromNative.length).toBe(native.length);
  });

  it('setLinkFactory refuses a factory with another number of parameters (and keeps the registered one)', () => {
    const short = (...args: unknown[]): unknown => args;
    expect(() => binding.setLinkFactory(short as never)).toThrow(TypeError);
    const dropped = (a: unknown, b: unknown): unknown => [a, b];
    expect(() => binding.setLinkFactory(dropped as never)).toThrow(/must declare \d+ parameters/);
    expect(binding.linkGetSync({ index: 1 }, null).ifindex).toBe(1);
  });
});

/**
 * A Node module hook that lets the VM runner (plain `node`, Node 20, no type stripping) load the project's TypeScript
 * helpers in place: `.ts` files are transpiled with the project's own `typescript` (types dropped, nothing checked —
 * `npm run typecheck` does that), and a `./x.js` import that has no file behind it resolves to `./x.ts`, as the
 * NodeNext sources are written. Registered by `run.mjs` only; the library and the tests never go through it.
 */
import { readFile } from 'node:fs/promises';
import ts from 'typescript';

/** Retries a missing `*.js` relative import as `*.ts`. */
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (e) {
    if (e?.code === 'ERR_MODULE_NOT_FOUND' && specifier.startsWith('.') && specifier.endsWith('.js')) {
      return nextResolve(specifier.slice(0, -3) + '.ts', context);
    }
    throw e;
  }
}

/** Transpiles `.ts` to an ES module; everything else goes to the next loader. */
export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const source = await readFile(new URL(url), 'utf8');
  const out = ts.transpileModule(source, {
    fileName: new URL(url).pathname,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false, inlineSourceMap: true },
  });
  return { format: 'module', source: out.outputText, shortCircuit: true };
}

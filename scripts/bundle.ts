/**
 * `make bundle`: the CLI (every role: coordinator, agent, gateway, status, doctor) built ahead of
 * time into plain JavaScript under dist/, as the images and `make run` run it. One entry point
 * with code splitting: a role loads its own chunk and the chunks it shares with others, never
 * another role's code. The lab (test/lab) is not part of it: `lab` in a bundle says so.
 *
 * What it saves, measured on the development machine (RSS after importing the agent's code):
 * TypeScript sources 167 MiB, this bundle about 100 MiB (docs/benchmarks.md).
 *
 * Usage: node scripts/bundle.ts [outdir]   (default dist/)
 */
import { build, type Plugin } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = resolve(process.argv[2] ?? join(root, 'dist'));

/** The lab is a development tool: replaced by a module whose labMain explains it is not here. */
const noLab: Plugin = {
  name: 'no-lab',
  setup(b) {
    b.onResolve({ filter: /\/test\/lab\/cli\.ts$/ }, (args) => ({ path: args.path, namespace: 'no-lab' }));
    b.onLoad({ filter: /.*/, namespace: 'no-lab' }, () => ({
      loader: 'js',
      contents: `export async function labMain() {
        console.error('chorus-kube-router: the lab is not part of this build; run it from a clone of the repository (make run)');
        return 2;
      }`,
    }));
  },
};

/**
 * fastify's schema compilers (ajv, fast-json-stringify: about 500 KiB of the bundle) are built when
 * a fastify instance is created, unless it is given its own. Our probe servers declare no schemas
 * and give their own (shared/health.ts), so these modules never run: left out, they cost no
 * decoding or compiling at start. A fastify created without compilers fails at once, saying why.
 */
const noSchemaCompilers: Plugin = {
  name: 'no-schema-compilers',
  setup(b) {
    b.onResolve({ filter: /^@fastify\/(ajv-compiler|fast-json-stringify-compiler)$/ }, (args) => ({ path: args.path, namespace: 'no-schema-compilers' }));
    b.onLoad({ filter: /.*/, namespace: 'no-schema-compilers' }, (args) => ({
      loader: 'js',
      contents: `module.exports = function () {
        throw new Error(${JSON.stringify(`${args.path} is not part of this build: create fastify servers through shared/health.ts (no schemas)`)});
      };`,
    }));
  },
};

const BUILTINS = new Set(builtinModules);

/**
 * Node's own modules reached through require(), never through `import`. An ESM import of a builtin
 * builds its ESM facade, which reads every export once, and that runs the lazy getters behind them:
 * `import http from 'node:http'` loads Node's internal copy of undici (for http.WebSocket), 50 ms
 * here against 9 ms for require('node:http'); crypto, fs and util load their promise and web APIs
 * the same way (13, 8 and 8 ms against under 1). The bundled ESM code (client-node, execa, ours)
 * gets each builtin's module.exports instead, as CommonJS code does.
 */
const builtinsThroughRequire: Plugin = {
  name: 'builtins-through-require',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z0-9_/]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (args.namespace === 'builtin' || !BUILTINS.has(name)) return undefined;
      return { path: name, namespace: 'builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({ loader: 'js', contents: `module.exports = require('node:${args.path}');` }));
  },
};

const started = performance.now();
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: { 'chorus-kube-router': join(root, 'bin/cli.ts') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minify: true,
  // stack traces keep our function names
  keepNames: true,
  chunkNames: 'chunks/[name]-[hash]',
  // the native addon stays a package (npm ci --omit=dev installs it)
  external: ['netlink'],
  // bundled CommonJS dependencies call require(): give each ESM chunk one
  banner: { js: "import { createRequire as __chorusCreateRequire } from 'node:module'; const require = __chorusCreateRequire(import.meta.url);" },
  plugins: [noLab, noSchemaCompilers, builtinsThroughRequire],
  metafile: true,
  logLevel: 'warning',
});
// ESM: dist/ may be copied without the repository's package.json
writeFileSync(join(outdir, 'package.json'), JSON.stringify({ type: 'module', private: true }) + '\n');
const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
console.log(`bundle: ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 2 ** 20).toFixed(1)} MiB in ${outdir} (${Math.round(performance.now() - started)} ms)`);

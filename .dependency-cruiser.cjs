// The layering rule (README "Layers"), checked by dependency-cruiser in npm test
// (tests/layering.test.ts) and by `npm run lint:deps`. Every import points down:
//
//   model  <-  generators, targets  <-  harness  <-  golden  <-  suites, reports  <-  cli, bench
//
// base/ (schema validators, package root, error classes) is a leaf any layer but model may use.
// LAYERS says, for each top-level folder, which other folders it may import; anything else of
// ours is an upward or sideways arrow. Imports inside a folder are free, except circles.

/** folder -> the folders below it that it may import */
const LAYERS = {
  base: [],
  model: [],
  generators: ['model', 'base'],
  targets: ['model', 'base'],
  harness: ['model', 'base', 'generators', 'targets'],
  golden: ['model', 'base', 'generators', 'targets', 'harness'],
  suites: ['model', 'base', 'generators', 'targets', 'harness', 'golden'],
  reports: ['model', 'base', 'generators', 'targets', 'harness', 'golden'],
  cli: ['model', 'base', 'generators', 'targets', 'harness', 'golden', 'suites', 'reports'],
  bench: ['model', 'base', 'generators', 'targets', 'harness', 'golden', 'suites', 'reports', 'cli'],
};

// npm packages and node built-ins: any layer but model may use them
const EXTERNAL = ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-bundled', 'npm-no-pkg', 'npm-unknown'];

const layerRules = Object.entries(LAYERS).map(([folder, below]) => ({
  name: `layer-${folder}`,
  severity: 'error',
  comment: `${folder}/ imports only ${below.length ? below.join(', ') : 'itself'}${folder === 'model' ? '' : ' (and npm packages, node built-ins)'}`,
  from: { path: `^${folder}/` },
  to: {
    pathNot: `^(${[folder, ...below].join('|')})/`,
    // model/ is pure: not even node built-ins or npm packages
    ...(folder === 'model' ? {} : { dependencyTypesNot: EXTERNAL }),
  },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'no import circles, type-only imports included',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'an import that resolves to nothing cannot be judged',
      from: { path: `^(${Object.keys(LAYERS).join('|')})/` },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    // type-only imports are arrows too (they vanish from the JavaScript, not from the design)
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|coverage)/' },
  },
};
// not a dependency-cruiser key: tests/layering.test.ts reads it (non-enumerable, so the config stays valid)
Object.defineProperty(module.exports, 'LAYERS', { value: LAYERS });

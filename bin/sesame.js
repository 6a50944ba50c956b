#!/usr/bin/env node
// `sesame` runs the TypeScript CLI through tsx (a runtime dependency): no
// build step. (`npm start` compiles the server first; see scripts/build.mjs.)
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/index.ts');
await main();

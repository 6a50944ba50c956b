#!/usr/bin/env node
// `sesame` runs the TypeScript CLI through tsx (a runtime dependency), as
// `npm start` runs the server: there is no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/index.ts');
await main();

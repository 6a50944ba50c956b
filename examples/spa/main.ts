/**
 * Runs the SPA example: SPA_CLIENT_ID=… npx tsx examples/spa/main.ts
 */
import { createSpaServer } from './app.ts';

const clientId = process.env.SPA_CLIENT_ID;
if (!clientId) {
  console.error('Set SPA_CLIENT_ID (see examples/spa/README.md).');
  process.exit(1);
}
const port = Number(process.env.PORT ?? 3004);
const sesameUrl = process.env.SESAME_URL ?? 'http://localhost:3001';
createSpaServer({ sesameUrl, clientId }).listen(port, () => console.log(`SPA example on http://localhost:${port} (Sesame: ${sesameUrl})`));

/** Runs the Logto SDK example: LOGTO_APP_ID=… LOGTO_APP_SECRET=… npx tsx examples/logto-sdk/main.ts */
import { createApp } from './app.ts';

const port = Number(process.env.PORT ?? 3002);
const appId = process.env.LOGTO_APP_ID;
const appSecret = process.env.LOGTO_APP_SECRET;
if (!appId || !appSecret) {
  console.error('Set LOGTO_APP_ID and LOGTO_APP_SECRET (a Traditional application of Sesame).');
  process.exit(1);
}
const baseUrl = process.env.APP_BASE_URL ?? `http://localhost:${port}`;
createApp({ endpoint: process.env.SESAME_ENDPOINT ?? 'http://localhost:3001', appId, appSecret, baseUrl }).listen(port, () => {
  console.log(`Logto SDK example on ${baseUrl} (magic links go to ${baseUrl}/landing?token=…&email=…)`);
});

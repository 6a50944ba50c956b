/**
 * Runs the invite backend:
 * M2M_ID=… M2M_SECRET=… APP_ID=… APP_SECRET=… SMTP_URL=smtp://… COOKIE_KEY=… npx tsx examples/invite-backend/main.ts
 */
import { createInviteBackend } from './app.ts';

const required = (name: string) => {
  const value = process.env[name];
  if (!value) {
    console.error(`Set ${name} (see examples/invite-backend/README.md).`);
    process.exit(1);
  }
  return value;
};

const port = Number(process.env.PORT ?? 3003);
const baseUrl = process.env.APP_BASE_URL ?? `http://localhost:${port}`;
const backend = await createInviteBackend({
  sesameUrl: process.env.SESAME_URL ?? 'http://localhost:3001',
  m2m: { id: required('M2M_ID'), secret: required('M2M_SECRET') },
  app: { id: required('APP_ID'), secret: required('APP_SECRET') },
  baseUrl,
  smtpUrl: required('SMTP_URL'),
  mailFrom: process.env.MAIL_FROM,
  cookieKeys: [required('COOKIE_KEY')],
});
backend.app.listen(port, () => console.log(`Invite backend on ${baseUrl}: POST ${baseUrl}/invite {"email","organizationId"}`));

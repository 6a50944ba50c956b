import { createApplicationRepository, createApplicationService } from './applications/index.ts';
import { createAuditLog } from './audit/index.ts';
import type { Config } from './config.ts';
import type { Database } from './db/index.ts';
import { withoutInvalidation, type InvalidationChannel } from './db/invalidation.ts';
import { createEventBus } from './events/index.ts';
import { createHooks } from './hooks/index.ts';
import { createInvitationRepository, createInvitationService } from './invitations/index.ts';
import { deriveKey } from './lib/crypto.ts';
import type { Logger } from './logger.ts';
import { createDevOutbox, createMailer } from './mail/index.ts';
import { createSessionStore } from './oidc/sessions.ts';
import { createOrganizationRepository, createOrganizationService } from './organizations/index.ts';
import { createMfaService } from './mfa/index.ts';
import { createSettingsService } from './settings/index.ts';
import { createSignInCodeRepository } from './signin/codes.ts';
import { createEmailSignIn } from './signin/email.ts';
import { createSignInService } from './signin/index.ts';
import { createTokenRepository, createTokenService } from './tokens/index.ts';
import { createUserRepository } from './users/index.ts';
import { createAccountCache, forgettingWrites } from './users/account-cache.ts';
import { createModelCache } from './oidc/model-cache.ts';
import { createUserService } from './users/service.ts';

export type Core = ReturnType<typeof createCore>;

/**
 * The domain services over one database, without HTTP: the server
 * (src/main.ts) and the CLI (src/cli/) build the same graph from here.
 */
export function createCore(deps: {
  config: Config;
  db: Database;
  logger: Logger;
  clock?: () => Date;
  /** What tells the caches of other writers' changes; without one (the CLI) nothing is served from memory. */
  invalidation?: InvalidationChannel;
}) {
  const { config, db, logger } = deps;
  const clock = deps.clock ?? (() => new Date());
  const invalidation = deps.invalidation ?? withoutInvalidation();
  // Security events: every one is written to the audit log; some are queued for webhooks (sent by the server's worker).
  const events = createEventBus({ logger, clock });
  const audit = createAuditLog({ db, events, clock });
  const hooks = createHooks({ db, events, sealKey: deriveKey(config.secret, 'hook-secrets'), clock, logger, delivery: config.hooks, invalidation });
  const applications = createApplicationService({
    repository: createApplicationRepository(db),
    sealKey: deriveKey(config.secret, 'application-secrets'),
    invalidation,
  });
  const userRows = createUserRepository(db);
  // findAccount's rows; every write through `users` drops the row it changed.
  const accounts = createAccountCache({ users: userRows, invalidation });
  const users = forgettingWrites(userRows, accounts);
  // oidc-provider's grants and access tokens (src/oidc/adapter.ts); one cache for every provider the key rotation builds.
  const models = createModelCache({ invalidation });
  const organizations = createOrganizationRepository(db);
  const organizationService = createOrganizationService({ db, organizations, users, events });
  const userService = createUserService({ users, organizations, sessions: createSessionStore(db, { models }), clock, events });
  const tokens = createTokenService({
    repository: createTokenRepository(db),
    clock,
    events,
    limits: config.oneTimeTokens,
    unknownOrganizationIds: (ids) => organizations.unknownIds(ids),
  });
  // Without SMTP_URL, mail is kept in the dev outbox (never in production).
  const outbox = !config.smtpUrl && config.devPages ? createDevOutbox() : undefined;
  const mailer = createMailer({ smtpUrl: config.smtpUrl, from: config.emailFrom, logger, outbox });
  const invitations = createInvitationService({
    invitations: createInvitationRepository(db),
    tokens,
    organizations: organizationService,
    mailer,
    clock,
  });
  const settings = createSettingsService({ db, invalidation });
  const mfa = createMfaService({
    db,
    clock,
    sealKey: deriveKey(config.secret, 'mfa-secrets'),
    hashKey: deriveKey(config.secret, 'backup-codes'),
    issuer: new URL(config.baseUrl).host,
    invalidation,
  });
  const signIn = createSignInService({ tokens, users, organizations: organizationService, invitations, settings, mfa, clock });
  const emailSignIn = createEmailSignIn({
    codes: createSignInCodeRepository(db),
    users,
    settings,
    mailer,
    clock,
    codeKey: deriveKey(config.secret, 'sign-in-codes'),
    baseUrl: config.baseUrl,
    logger,
    // Webhooks may deliver the link themselves (AuthFort's magic_link_requested); the audit log never keeps it.
    onSent: async ({ record, link, mailed }) => {
      if (!mailed) return;
      const subject = { email: record.email, applicationId: record.clientId };
      if (record.purpose === 'magic_link' && link) {
        await events.publish('MagicLink.Requested', { ...subject, link, expiresAt: record.expiresAt.toISOString(), tokenId: record.id });
      } else {
        await events.publish('EmailCode.Sent', { ...subject, purpose: record.purpose });
      }
    },
  });
  return {
    clock,
    events,
    audit,
    hooks,
    applications,
    users,
    accounts,
    models,
    userService,
    organizations,
    organizationService,
    tokens,
    outbox,
    mailer,
    invitations,
    settings,
    mfa,
    signIn,
    emailSignIn,
  };
}

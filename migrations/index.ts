import type { Knex } from 'knex';
import * as foundation from './20261127000000_foundation.ts';
import * as organizations from './20261127010000_organizations.ts';
import * as cookieKeys from './20261127020000_cookie_keys.ts';
import * as signIn from './20261127025000_sign_in.ts';
import * as mfa from './20261127026000_mfa.ts';
import * as abuse from './20261127030000_abuse.ts';
import * as audit from './20261127040000_audit.ts';
import * as performance from './20261127050000_performance.ts';
import * as invalidation from './20261127060000_invalidation.ts';
import * as modelMfaInvalidation from './20261127070000_model_mfa_invalidation.ts';
import * as modelRowsHot from './20261128000000_model_rows_hot.ts';
import * as settingsBansInvalidation from './20261128010000_settings_bans_invalidation.ts';
import * as tokenExpiryIndex from './20261128020000_token_expiry_index.ts';

type Migration = { name: string; up: (knex: Knex) => Promise<void>; down: (knex: Knex) => Promise<void> };

/** Every migration, in order. Add new files here; knex records them by name. */
export const migrations: Migration[] = [
  { name: '20261127000000_foundation', ...foundation },
  { name: '20261127010000_organizations', ...organizations },
  { name: '20261127020000_cookie_keys', ...cookieKeys },
  { name: '20261127025000_sign_in', ...signIn },
  { name: '20261127026000_mfa', ...mfa },
  { name: '20261127030000_abuse', ...abuse },
  { name: '20261127040000_audit', ...audit },
  { name: '20261127050000_performance', ...performance },
  { name: '20261127060000_invalidation', ...invalidation },
  { name: '20261127070000_model_mfa_invalidation', ...modelMfaInvalidation },
  { name: '20261128000000_model_rows_hot', ...modelRowsHot },
  { name: '20261128010000_settings_bans_invalidation', ...settingsBansInvalidation },
  { name: '20261128020000_token_expiry_index', ...tokenExpiryIndex },
];

export const migrationSource: Knex.MigrationSource<Migration> = {
  getMigrations: async () => migrations,
  getMigrationName: (migration) => migration.name,
  getMigration: async (migration) => migration,
};

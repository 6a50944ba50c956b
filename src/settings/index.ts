import { z } from 'zod';
import type { Database } from '../db/index.ts';
import { invalidatedCache, withoutInvalidation, type InvalidationChannel } from '../db/invalidation.ts';

export const SUPPORTED_LANGUAGES = ['en', 'de', 'ja'] as const;
export type Language = (typeof SUPPORTED_LANGUAGES)[number];

const hexColor = z.string().regex(/^#[0-9a-fA-F]{6}$/, 'must be a colour like #3b5bdb');
const httpsUrl = z
  .url({ protocol: /^https$/, message: 'must be an https URL' })
  .max(2048);

/**
 * What the hosted sign-in offers. Stored as one JSON row; every field has a
 * default, so an empty row (a fresh install) is a complete configuration.
 */
export const signInSettingsSchema = z.strictObject({
  methods: z
    .strictObject({
      /** A mail with a link and a 6-digit code. */
      magicLink: z.boolean().default(true),
      /** A mail with a 6-digit code only. */
      emailCode: z.boolean().default(true),
      password: z.boolean().default(false),
    })
    .default({ magicLink: true, emailCode: true, password: false }),
  /** Password registration on the hosted pages (needs the password method). */
  registration: z.boolean().default(false),
  /** Magic links and codes create an account for an unknown email. */
  passwordlessSignUp: z.boolean().default(false),
  /** How long a self-serve link or code works, in seconds. */
  linkLifetimeSeconds: z.number().int().min(60).max(86_400).default(600),
  /** The one-time-token landing submits itself (with JavaScript) instead of waiting for a click. */
  autoContinueOneTimeToken: z.boolean().default(false),
  branding: z
    .strictObject({
      name: z.string().trim().min(1).max(80).default('Sesame'),
      logoUrl: httpsUrl.nullable().default(null),
      primaryColor: hexColor.default('#3b5bdb'),
    })
    .default({ name: 'Sesame', logoUrl: null, primaryColor: '#3b5bdb' }),
  defaultLanguage: z.enum(SUPPORTED_LANGUAGES).default('en'),
  mfa: z
    .strictObject({
      /** off: never asked unless enrolled; optional: enrolment offered once; required: enrolment inside the sign-in. */
      policy: z.enum(['off', 'optional', 'required']).default('off'),
      /** Email + authenticator code on one page, no mail (for users with an authenticator). */
      totpOnlySignIn: z.boolean().default(false),
      /**
       * A second step after an email first factor (magic link, email code, one-time token):
       * `email_otp` mails a code valid 5 minutes (the same mailbox again: not a second factor),
       * `totp` asks for the authenticator (set up inside the sign-in when there is none).
       */
      afterMagicLink: z.enum(['none', 'email_otp', 'totp']).default('none'),
    })
    .default({ policy: 'off', totpOnlySignIn: false, afterMagicLink: 'none' }),
});

export type SignInSettings = z.infer<typeof signInSettingsSchema>;

/** A PUT body: any subset of the settings (nested objects too); what is left out keeps its value. */
export const signInSettingsPatchSchema = z.strictObject({
  methods: z
    .strictObject({ magicLink: z.boolean(), emailCode: z.boolean(), password: z.boolean() })
    .partial()
    .optional(),
  registration: z.boolean().optional(),
  passwordlessSignUp: z.boolean().optional(),
  linkLifetimeSeconds: z.number().int().min(60).max(86_400).optional(),
  autoContinueOneTimeToken: z.boolean().optional(),
  branding: z
    .strictObject({ name: z.string().trim().min(1).max(80), logoUrl: httpsUrl.nullable(), primaryColor: hexColor })
    .partial()
    .optional(),
  defaultLanguage: z.enum(SUPPORTED_LANGUAGES).optional(),
  mfa: z
    .strictObject({ policy: z.enum(['off', 'optional', 'required']), totpOnlySignIn: z.boolean(), afterMagicLink: z.enum(['none', 'email_otp', 'totp']) })
    .partial()
    .optional(),
});

export type SignInSettingsPatch = z.infer<typeof signInSettingsPatchSchema>;

export const defaultSignInSettings = (): SignInSettings => signInSettingsSchema.parse({});

export type SettingsService = ReturnType<typeof createSettingsService>;

/** How long the copy of the settings is kept (changes made elsewhere arrive as notices). */
const SETTINGS_CACHE_MS = 60_000;
/** The one key of the settings' cache. */
const KEY = 'settings';

/**
 * The settings, one copy per process: every sign-in page reads them. Kept
 * like the other cached rows (`invalidatedCache`): for 60 s, dropped at once
 * when a change made anywhere (another instance, SQL by hand) is announced
 * (migration 20261128010000_settings_bans_invalidation), and read from the
 * database on every use while the invalidation channel is not live. A
 * change made through this process is visible to it at once.
 */
export function createSettingsService(deps: { db: Database; clock?: () => Date; invalidation?: InvalidationChannel }) {
  const { db } = deps;
  const cache = invalidatedCache<SignInSettings>(deps.invalidation ?? withoutInvalidation(), 'sign_in_settings', { ttlMs: SETTINGS_CACHE_MS, maxEntries: 1 });

  async function load(): Promise<SignInSettings> {
    const row = (await db('sign_in_settings').where({ id: 1 }).first('settings')) as { settings: unknown } | undefined;
    // A stored value from an older version may lack newer fields: defaults fill them in.
    const parsed = signInSettingsSchema.safeParse(row?.settings ?? {});
    return parsed.success ? parsed.data : defaultSignInSettings();
  }

  return {
    async get(): Promise<SignInSettings> {
      return (await cache.get(KEY, load))!;
    },

    /** Merges a patch into the stored settings (serialized by a row lock) and answers the result. */
    async update(patch: SignInSettingsPatch): Promise<SignInSettings> {
      const mark = cache.mark();
      const value = await db.transaction(async (trx) => {
        await trx('sign_in_settings').insert({ id: 1, settings: {} }).onConflict('id').ignore();
        const row = (await trx('sign_in_settings').where({ id: 1 }).forUpdate().first('settings')) as { settings: unknown };
        const current = signInSettingsSchema.safeParse(row.settings);
        const base = current.success ? current.data : defaultSignInSettings();
        const next = signInSettingsSchema.parse({
          ...base,
          ...patch,
          methods: { ...base.methods, ...patch.methods },
          branding: { ...base.branding, ...patch.branding },
          mfa: { ...base.mfa, ...patch.mfa },
        });
        await trx('sign_in_settings').where({ id: 1 }).update({ settings: next, updated_at: trx.fn.now() });
        return next;
      });
      cache.put(KEY, value, mark);
      return value;
    },
  };
}

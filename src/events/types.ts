/**
 * Every event Sesame publishes, by name, with its payload. Payloads never hold
 * a token, a code or a password. The one exception is by design:
 * `MagicLink.Requested.link` carries the sign-in link so an app can mail it
 * itself; webhooks deliver it, the audit log drops it (see SECRET_FIELDS).
 *
 * Common fields, when the event has them: `userId`, `email`, `applicationId`
 * (the application that asked for it: the Management API client, or the OIDC
 * client of a sign-in). The audit log stores them in their own columns.
 */
export type Subject = { userId?: string | null; email?: string | null; applicationId?: string | null };

/** Sign-in methods, as in `amr` where one exists. */
export type SignInMethod = 'one_time_token' | 'magic_link' | 'email_code' | 'password' | 'totp' | 'backup_code' | 'webauthn' | (string & {});

export type EventPayloads = {
  'OneTimeToken.Created': Subject & { tokenId: string; email: string; expiresAt: string; organizationIds?: string[] };
  'OneTimeToken.Consumed': Subject & { tokenId: string; email: string; source?: 'sign_in' | 'management_api' };
  'OneTimeToken.Revoked': Subject & { tokenId: string; email: string };
  /** `reason`: TOKEN_INVALID, TOKEN_EXPIRED or TOKEN_ALREADY_USED (the error code the caller got). */
  'OneTimeToken.Failed': Subject & { reason: string; tokenId?: string; source?: 'sign_in' | 'management_api' };
  /** A magic link was made for `email`: `link` is the full URL (it carries the token: webhooks only). */
  'MagicLink.Requested': Subject & { email: string; link: string; expiresAt: string; tokenId?: string };
  'EmailCode.Sent': Subject & { email: string; purpose?: string };
  'SignIn.Succeeded': Subject & { userId: string; method: SignInMethod; amr: string[]; newUser?: boolean };
  /** `code`: the error code the user got (TOKEN_EXPIRED, INVALID_CREDENTIALS, ACCOUNT_DISABLED, …). */
  'SignIn.Failed': Subject & { method: SignInMethod; code: string };
  'Mfa.Enrolled': Subject & { userId: string; factor: string };
  'Mfa.Removed': Subject & { userId: string; factor: string };
  /** An MFA challenge was presented (counted in the stats). */
  'Mfa.Challenged': Subject & { userId: string; factor: string };
  'Mfa.Failed': Subject & { userId: string; factor: string; code?: string };
  'Factor.Locked': Subject & { factor: string; until?: string };
  'Ip.Banned': Subject & { ip: string; reason: string; expiresAt?: string | null; manual?: boolean };
  /** A request was refused by a rate limit (`limit` names it, e.g. `magic_link_per_email`). */
  'RateLimit.Hit': Subject & { limit: string; ip?: string };
  'User.Created': Subject & { userId: string; email: string | null; source: 'management_api' | 'sign_in' | 'cli' | (string & {}) };
  'User.Suspended': Subject & { userId: string; isSuspended: boolean };
  'Organization.Membership.Updated': Subject & {
    organizationId: string;
    userId: string;
    change: 'added' | 'removed' | 'roles_changed';
    organizationRoleIds?: string[];
    source?: 'management_api' | 'invitation' | 'sign_in' | (string & {});
  };
  'ManagementApi.Write': Subject & { clientId: string; method: string; path: string; route: string; status: number };
};

export type EventName = keyof EventPayloads;

export const eventNames = [
  'OneTimeToken.Created',
  'OneTimeToken.Consumed',
  'OneTimeToken.Revoked',
  'OneTimeToken.Failed',
  'MagicLink.Requested',
  'EmailCode.Sent',
  'SignIn.Succeeded',
  'SignIn.Failed',
  'Mfa.Enrolled',
  'Mfa.Removed',
  'Mfa.Challenged',
  'Mfa.Failed',
  'Factor.Locked',
  'Ip.Banned',
  'RateLimit.Hit',
  'User.Created',
  'User.Suspended',
  'Organization.Membership.Updated',
  'ManagementApi.Write',
] as const satisfies readonly EventName[];

/** Where the event came from, when a request caused it. */
export type RequestContext = {
  ip?: string;
  userAgent?: string;
  /** A short hash of the user agent and accept headers: tells devices apart without storing more. */
  deviceFingerprint?: string;
  requestId?: string;
  /** The Management API client of the request, once its token is checked. */
  clientId?: string;
};

export type EventResult = 'success' | 'failure';

/** One published event, as subscribers receive it. */
export type SesameEvent<N extends EventName = EventName> = {
  [K in N]: { name: K; data: EventPayloads[K]; createdAt: Date; context: RequestContext; result: EventResult };
}[N];

/** Failures by their name; `ManagementApi.Write` by its status. */
export function defaultResult<N extends EventName>(name: N, data: EventPayloads[N]): EventResult {
  if (name === 'ManagementApi.Write') return (data as EventPayloads['ManagementApi.Write']).status < 400 ? 'success' : 'failure';
  return /\.(Failed|Locked|Banned|Hit)$/.test(name) ? 'failure' : 'success';
}

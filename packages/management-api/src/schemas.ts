import { z } from 'zod';
import { applicationTypes } from '../../../src/applications/index.ts';
import { canonicalIp } from '../../../src/http/client-ip.ts';
import { emailSchema, idSchema } from '../../../src/http/guard.ts';

export { emailSchema, idSchema };

export const isoDate = z
  .date()
  .transform((date) => date.toISOString())
  .pipe(z.iso.datetime());

const paginationQueryBase = z.strictObject({
  page: z.coerce.number().int().min(1).max(1_000_000).default(1),
  page_size: z.coerce.number().int().min(1).max(100).default(20),
});

export const oneTimeTokenContextSchema = z.strictObject({
  jitOrganizationIds: z.array(idSchema).max(100).optional(),
});

export const createOneTimeTokenSchema = z.strictObject({
  email: emailSchema,
  expiresIn: z.number().int().min(60, 'expiresIn must be at least 60 seconds').optional(),
  context: oneTimeTokenContextSchema.optional(),
  revokePrevious: z.boolean().optional(),
});

export const oneTimeTokenSchema = z.object({
  id: z.string(),
  email: z.string(),
  status: z.enum(['active', 'consumed', 'revoked', 'expired']),
  context: z.object({ jitOrganizationIds: z.array(z.string()).optional() }),
  expiresAt: isoDate,
  createdAt: isoDate,
  consumedAt: isoDate.nullable(),
  revokedAt: isoDate.nullable(),
});

export const createdOneTimeTokenSchema = oneTimeTokenSchema.extend({ token: z.string() });

const oidcClientMetadataInput = z.strictObject({
  redirectUris: z.array(z.string().min(1).max(2048)).max(50).optional(),
  postLogoutRedirectUris: z.array(z.string().min(1).max(2048)).max(50).optional(),
});

export const createApplicationSchema = z.strictObject({
  name: z.string().trim().min(1).max(256),
  type: z.enum(applicationTypes),
  description: z.string().max(2048).nullish(),
  oidcClientMetadata: oidcClientMetadataInput.optional(),
  managementApiAccess: z.boolean().optional(),
  /** Third-party applications ask the user for consent; first-party ones do not. */
  isThirdParty: z.boolean().optional(),
});

export const updateApplicationSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(256).optional(),
    description: z.string().max(2048).nullable().optional(),
    oidcClientMetadata: oidcClientMetadataInput.optional(),
    managementApiAccess: z.boolean().optional(),
    isThirdParty: z.boolean().optional(),
  })
  .refine((value) => Object.keys(value).length > 0, 'give at least one field to change');

export const listApplicationsQuery = paginationQueryBase.extend({ type: z.enum(applicationTypes).optional() });

export const applicationSchema = z.object({
  id: z.string(),
  name: z.string(),
  type: z.enum(applicationTypes),
  description: z.string().nullable(),
  oidcClientMetadata: z.object({ redirectUris: z.array(z.string()), postLogoutRedirectUris: z.array(z.string()) }),
  isThirdParty: z.boolean(),
  managementApiAccess: z.boolean(),
  createdAt: isoDate,
});

export const createdApplicationSchema = applicationSchema.extend({ secret: z.string().nullable() });

/** `page` (from 1) and `page_size` (1–100, default 20); the total goes in the Total-Number header. */
export const paginationQuery = paginationQueryBase;

export const toPage = (query: { page: number; page_size: number }) => ({ page: query.page, pageSize: query.page_size });

export const totalHeader = (total: number) => ({ 'Total-Number': String(total) });

export const tokenStatusSchema = z.enum(['active', 'consumed', 'revoked', 'expired']);

export const listOneTimeTokensQuery = paginationQuery.extend({
  email: z.string().trim().toLowerCase().max(254).optional(),
  status: tokenStatusSchema.optional(),
});

export const verifyOneTimeTokenSchema = z.strictObject({
  token: z.string().min(1).max(512),
  email: emailSchema,
});

// Users
const passwordSchema = z.string().min(8, 'password must be at least 8 characters').max(256);
const avatarSchema = z.url({ protocol: /^https?$/, message: 'avatar must be an http(s) URL' }).max(2048);

export const createUserSchema = z.strictObject({
  primaryEmail: emailSchema.nullish(),
  name: z.string().trim().min(1).max(256).nullish(),
  avatar: avatarSchema.nullish(),
  password: passwordSchema.optional(),
});

export const updateUserSchema = z
  .strictObject({
    primaryEmail: emailSchema.nullish(),
    name: z.string().trim().min(1).max(256).nullish(),
    avatar: avatarSchema.nullish(),
  })
  .refine((value) => Object.keys(value).length > 0, 'give at least one field to change');

export const userSchema = z.object({
  id: z.string(),
  primaryEmail: z.string().nullable(),
  emailVerified: z.boolean(),
  name: z.string().nullable(),
  avatar: z.string().nullable(),
  hasPassword: z.boolean(),
  isSuspended: z.boolean(),
  createdAt: isoDate,
  lastSignInAt: isoDate.nullable(),
});

export const listUsersQuery = paginationQuery.extend({ search: z.string().trim().min(1).max(256).optional() });

export const passwordBodySchema = z.strictObject({ password: passwordSchema });
export const suspendBodySchema = z.strictObject({ isSuspended: z.boolean() });

export const sessionSchema = z.object({
  uid: z.string(),
  loginAt: isoDate.nullable(),
  expiresAt: isoDate.nullable(),
  amr: z.array(z.string()),
  clientIds: z.array(z.string()),
});

// Organizations
export const organizationSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string().nullable(),
  customData: z.record(z.string(), z.unknown()),
  createdAt: isoDate,
});

export const organizationRoleSchema = z.object({ id: z.string(), name: z.string(), description: z.string().nullable(), createdAt: isoDate });
export const roleRefSchema = z.object({ id: z.string(), name: z.string() });

export const userOrganizationSchema = organizationSchema.extend({ organizationRoles: z.array(roleRefSchema) });

const customDataSchema = z.record(z.string(), z.unknown()).refine((value) => JSON.stringify(value).length <= 16_384, 'customData is too large');

export const createOrganizationSchema = z.strictObject({
  name: z.string().trim().min(1).max(256),
  description: z.string().max(2048).nullish(),
  customData: customDataSchema.optional(),
});

export const updateOrganizationSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(256).optional(),
    description: z.string().max(2048).nullable().optional(),
    customData: customDataSchema.optional(),
  })
  .refine((value) => Object.keys(value).length > 0, 'give at least one field to change');

export const listOrganizationsQuery = paginationQueryBase.extend({ q: z.string().trim().min(1).max(256).optional() });

export const createOrganizationRoleSchema = z.strictObject({
  name: z.string().trim().min(1).max(128),
  description: z.string().max(2048).nullish(),
});

export const updateOrganizationRoleSchema = z
  .strictObject({ name: z.string().trim().min(1).max(128).optional(), description: z.string().max(2048).nullable().optional() })
  .refine((value) => Object.keys(value).length > 0, 'give at least one field to change');

export const userIdsBodySchema = z.strictObject({ userIds: z.array(idSchema).min(1).max(100) });
export const roleIdsBodySchema = z.strictObject({ organizationRoleIds: z.array(idSchema).max(100) });

const emailDomainSchema = z
  .string()
  .trim()
  .toLowerCase()
  .max(253)
  .regex(/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'must be a domain such as example.com');
export const emailDomainsBodySchema = z.strictObject({ emailDomains: z.array(emailDomainSchema).max(100) });

export const memberSchema = userSchema.extend({ organizationRoles: z.array(roleRefSchema) });

// Invitations
export const invitationStatusSchema = z.enum(['Pending', 'Accepted', 'Expired', 'Revoked']);

export const createInvitationSchema = z.strictObject({
  email: emailSchema,
  organizationId: idSchema,
  roles: z.array(idSchema).max(100).optional(),
  expiresIn: z.number().int().min(60, 'expiresIn must be at least 60 seconds').optional(),
  landingUri: z.string().min(1).max(2048),
  sendEmail: z.boolean().optional(),
});

export const invitationSchema = z.object({
  id: z.string(),
  email: z.string(),
  organizationId: z.string(),
  roles: z.array(z.string()),
  status: invitationStatusSchema,
  landingUri: z.string(),
  expiresAt: isoDate,
  createdAt: isoDate,
  acceptedAt: isoDate.nullable(),
  acceptedUserId: z.string().nullable(),
});

export const createdInvitationSchema = invitationSchema.extend({ link: z.string(), token: z.string() });

export const listInvitationsQuery = paginationQueryBase.extend({
  organizationId: idSchema.optional(),
  email: z.string().trim().toLowerCase().max(254).optional(),
  status: invitationStatusSchema.optional(),
});

/** One IPv4 or IPv6 address, kept in canonical form (`2001:DB8::0001` → `2001:db8::1`, `::ffff:1.2.3.4` → `1.2.3.4`). */
export const ipSchema = z
  .string()
  .max(64)
  .transform((value, ctx) => {
    const ip = canonicalIp(value);
    if (ip) return ip;
    ctx.addIssue({ code: 'custom', message: 'must be one IPv4 or IPv6 address' });
    return z.NEVER;
  });

import { z } from 'zod';
import { applicationTypes } from '../../../src/applications/index.ts';
import { emailSchema, idSchema } from '../../../src/http/guard.ts';

export { emailSchema, idSchema };

const isoDate = z.date().transform((date) => date.toISOString());

export const oneTimeTokenContextSchema = z.strictObject({
  jitOrganizationIds: z.array(idSchema).max(100).optional(),
});

export const createOneTimeTokenSchema = z.strictObject({
  email: emailSchema,
  expiresIn: z.number().int().min(60, 'expiresIn must be at least 60 seconds').optional(),
  context: oneTimeTokenContextSchema.optional(),
});

export const oneTimeTokenSchema = z.object({
  id: z.string(),
  email: z.string(),
  status: z.enum(['active', 'consumed', 'revoked', 'expired']),
  context: z.object({ jitOrganizationIds: z.array(z.string()).optional() }),
  expiresAt: isoDate,
  createdAt: isoDate,
  consumedAt: isoDate.nullable(),
});

export const createdOneTimeTokenSchema = oneTimeTokenSchema.extend({ token: z.string() });

export const createApplicationSchema = z.strictObject({
  name: z.string().trim().min(1).max(256),
  type: z.enum(applicationTypes),
  description: z.string().max(2048).nullish(),
  oidcClientMetadata: z
    .strictObject({
      redirectUris: z.array(z.string().min(1).max(2048)).max(50).optional(),
      postLogoutRedirectUris: z.array(z.string().min(1).max(2048)).max(50).optional(),
    })
    .optional(),
});

export const applicationSchema = z.object({
  id: z.string(),
  name: z.string(),
  type: z.enum(applicationTypes),
  description: z.string().nullable(),
  oidcClientMetadata: z.object({ redirectUris: z.array(z.string()), postLogoutRedirectUris: z.array(z.string()) }),
  isThirdParty: z.boolean(),
  createdAt: isoDate,
});

export const createdApplicationSchema = applicationSchema.extend({ secret: z.string().nullable() });

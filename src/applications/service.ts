import { AppError } from '../errors.ts';
import { constantTimeEqual, randomToken, seal, unseal } from '../lib/crypto.ts';
import { generateId } from '../lib/ids.ts';
import { invalidatedCache, type InvalidationChannel } from '../db/invalidation.ts';
import { hasSecret, redirectUriProblem, toClientMetadata, type Application, type ApplicationType, type OidcClientMetadata } from './core.ts';
import type { ApplicationRepository } from './repository.ts';

export type ApplicationService = ReturnType<typeof createApplicationService>;

export type NewApplication = {
  id?: string;
  name: string;
  type: ApplicationType;
  description?: string | null;
  oidcClientMetadata?: Partial<OidcClientMetadata>;
  managementApiAccess?: boolean;
  isThirdParty?: boolean;
  secret?: string;
};

/** Client secrets are url-safe (base64url) so SDKs that do not URL-encode Basic auth still work. */
const newSecret = () => randomToken(32);

/** How long an instance keeps an application it read (see `cached` below). */
export const APPLICATION_CACHE_MS = 5_000;

export function createApplicationService(deps: {
  repository: ApplicationRepository;
  sealKey: Buffer;
  cacheTtlMs?: number;
  /** Announces changes made anywhere (`applications:<id>`); while it is down, nothing is kept. */
  invalidation: InvalidationChannel;
}) {
  const { repository, sealKey } = deps;
  /**
   * Every authorization, token and Management API request looks its client
   * up: the application and its unsealed secret are kept for a few seconds.
   * This instance's own changes drop the entry at once; another writer's
   * (another instance, the CLI) as soon as the database trigger's notice
   * arrives, milliseconds later. The TTL is a backstop.
   */
  const cached = invalidatedCache<{ application: Application; secret: string | undefined }>(deps.invalidation, 'applications', {
    ttlMs: deps.cacheTtlMs ?? APPLICATION_CACHE_MS,
  });

  function validateMetadata(type: ApplicationType, metadata: OidcClientMetadata): void {
    const problems: string[] = [];
    if (type === 'MachineToMachine' && (metadata.redirectUris.length > 0 || metadata.postLogoutRedirectUris.length > 0)) {
      problems.push('machine-to-machine applications take no redirect URIs');
    }
    for (const [field, uris] of [['redirectUris', metadata.redirectUris], ['postLogoutRedirectUris', metadata.postLogoutRedirectUris]] as const) {
      uris.forEach((uri, index) => {
        const problem = redirectUriProblem(uri, type);
        if (problem) problems.push(`oidcClientMetadata.${field}[${index}] ${problem}`);
      });
    }
    if (problems.length > 0) throw new AppError('INVALID_INPUT', `Invalid application: ${problems.join('; ')}.`);
  }

  async function create(input: NewApplication): Promise<{ application: Application; secret: string | undefined }> {
    const metadata: OidcClientMetadata = {
      redirectUris: input.oidcClientMetadata?.redirectUris ?? [],
      postLogoutRedirectUris: input.oidcClientMetadata?.postLogoutRedirectUris ?? [],
    };
    validateMetadata(input.type, metadata);
    if (input.managementApiAccess && input.type !== 'MachineToMachine') {
      throw new AppError('INVALID_INPUT', 'Only machine-to-machine applications can be given Management API access.');
    }
    const secret = hasSecret(input.type) ? (input.secret ?? newSecret()) : undefined;
    const application = await repository.insert({
      id: input.id ?? generateId(),
      name: input.name,
      type: input.type,
      description: input.description ?? null,
      oidcClientMetadata: metadata,
      isThirdParty: input.isThirdParty ?? false,
      managementApiAccess: input.managementApiAccess ?? false,
      secretSealed: secret ? seal(sealKey, secret) : null,
    });
    return { application, secret };
  }

  async function findWithSecret(id: string) {
    const found = await repository.findWithSealedSecret(id);
    if (!found) return undefined;
    const secret = found.secretSealed ? unseal(sealKey, found.secretSealed) : undefined;
    return { application: found.application, secret };
  }

  /** `findWithSecret` through the cache, for the hot paths that only read. */
  const findCached = (id: string) => cached.get(id, () => findWithSecret(id));

  async function mustExist(id: string): Promise<Application> {
    const found = await repository.findWithSealedSecret(id);
    if (!found) throw new AppError('NOT_FOUND', 'No application has this id.');
    return found.application;
  }

  return {
    create,
    findWithSecret,
    mustExist,

    list: (filter: { type?: ApplicationType }, page: { page: number; pageSize: number }) => repository.list(filter, page),

    async update(
      id: string,
      changes: {
        name?: string;
        description?: string | null;
        oidcClientMetadata?: Partial<OidcClientMetadata>;
        managementApiAccess?: boolean;
        isThirdParty?: boolean;
      },
    ): Promise<Application> {
      const current = await mustExist(id);
      const metadata: OidcClientMetadata = { ...current.oidcClientMetadata, ...changes.oidcClientMetadata };
      validateMetadata(current.type, metadata);
      if (changes.managementApiAccess && current.type !== 'MachineToMachine') {
        throw new AppError('INVALID_INPUT', 'Only machine-to-machine applications can be given Management API access.');
      }
      try {
        return (await repository.update(id, { ...changes, oidcClientMetadata: metadata }))!;
      } finally {
        cached.delete(id);
      }
    },

    async delete(id: string): Promise<void> {
      try {
        if (!(await repository.delete(id))) throw new AppError('NOT_FOUND', 'No application has this id.');
      } finally {
        cached.delete(id);
      }
    },

    /** A new secret replaces the old one at once; it is returned here only. */
    async rotateSecret(id: string): Promise<{ application: Application; secret: string }> {
      const current = await mustExist(id);
      if (!hasSecret(current.type)) throw new AppError('INVALID_INPUT', `${current.type} applications are public clients and have no secret.`);
      const secret = newSecret();
      try {
        const application = (await repository.update(id, { secretSealed: seal(sealKey, secret) }))!;
        return { application, secret };
      } finally {
        cached.delete(id);
      }
    },

    /** The application (cached for a few seconds: see `cached`). */
    async get(id: string) {
      return (await findCached(id))?.application;
    },

    /** oidc-provider client metadata for `id`, or undefined for an unknown client (cached for a few seconds). */
    async findClientMetadata(id: string) {
      const found = await findCached(id);
      return found ? toClientMetadata(found.application, found.secret) : undefined;
    },

    /**
     * Makes sure an application with this id exists and matches what start-up
     * wants (redirect URIs follow BASE_URL; a secret given by env wins).
     * Returns the secret only when it was generated now, so it is shown once.
     */
    async ensure(input: NewApplication & { id: string }): Promise<{ application: Application; generatedSecret?: string }> {
      const existing = await findWithSecret(input.id);
      if (!existing) {
        const { application, secret } = await create(input);
        return { application, generatedSecret: input.secret ? undefined : secret };
      }
      const wanted: OidcClientMetadata = {
        redirectUris: input.oidcClientMetadata?.redirectUris ?? existing.application.oidcClientMetadata.redirectUris,
        postLogoutRedirectUris: input.oidcClientMetadata?.postLogoutRedirectUris ?? existing.application.oidcClientMetadata.postLogoutRedirectUris,
      };
      validateMetadata(existing.application.type, wanted);
      const secretChanged = input.secret !== undefined && !(existing.secret && constantTimeEqual(existing.secret, input.secret));
      cached.delete(input.id);
      await repository.update(input.id, {
        oidcClientMetadata: wanted,
        ...(secretChanged && input.secret ? { secretSealed: seal(sealKey, input.secret) } : {}),
        ...(input.managementApiAccess === undefined ? {} : { managementApiAccess: input.managementApiAccess }),
      });
      return { application: { ...existing.application, oidcClientMetadata: wanted } };
    },
  };
}

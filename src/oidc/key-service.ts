import type { Database } from '../db/index.ts';
import { AppError } from '../errors.ts';
import type { ProviderHolder } from './holder.ts';
import { listSigningKeys, retireSigningKey, rotateCookieKeys, rotateSigningKeys } from './keys.ts';

export type KeyService = ReturnType<typeof createKeyService>;

/**
 * Key rotation for operators (Management API and CLI). After a change this
 * instance rebuilds its provider at once; other instances pick the change up
 * on their next poll of the key set.
 */
export function createKeyService(deps: { db: Database; secret: string; providers?: ProviderHolder }) {
  const { db, secret } = deps;
  const applied = async () => {
    await deps.providers?.refresh();
  };
  return {
    list: () => listSigningKeys(db),
    async rotateSigningKeys() {
      await rotateSigningKeys(db, secret);
      await applied();
      return listSigningKeys(db);
    },
    async rotateCookieKeys() {
      await rotateCookieKeys(db, secret);
      await applied();
    },
    async retire(kid: string) {
      const result = await retireSigningKey(db, kid);
      if (result === 'unknown') throw new AppError('NOT_FOUND', 'No signing key has this id.');
      if (result === 'current') throw new AppError('INVALID_INPUT', 'This key signs new tokens now; rotate first, then retire it.');
      await applied();
    },
  };
}

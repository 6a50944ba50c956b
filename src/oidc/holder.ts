import type Provider from 'oidc-provider';
import type { Logger } from '../logger.ts';
import type { KeySet } from './keys.ts';

/**
 * Holds the current provider. oidc-provider reads its keys once, at
 * construction, so a key rotation (here or on another instance) means building
 * a new provider: the holder polls the key set's version and swaps in a new
 * provider when it changed. Requests already running finish on the old one;
 * all state lives in the database, so nothing is lost in the swap.
 */
export function createProviderHolder(deps: {
  initial: KeySet;
  build: (keySet: KeySet) => Provider;
  loadKeySet: () => Promise<KeySet>;
  keySetVersion: () => Promise<string>;
  onSwap?: (keySet: KeySet) => void;
  logger: Logger;
  pollMs?: number;
}) {
  let keySet = deps.initial;
  let provider = deps.build(keySet);
  let timer: NodeJS.Timeout | undefined;
  let refreshing: Promise<boolean> | undefined;

  async function refreshNow(): Promise<boolean> {
    const version = await deps.keySetVersion();
    if (version === keySet.version) return false;
    const next = await deps.loadKeySet();
    provider = deps.build(next);
    keySet = next;
    deps.onSwap?.(next);
    deps.logger.info({ signingKeys: next.signing.length, cookieKeys: next.cookie.length }, 'key set changed: provider rebuilt');
    return true;
  }

  return {
    current: () => provider,
    keySet: () => keySet,
    /** Picks up a changed key set now; concurrent calls share one refresh. */
    refresh(): Promise<boolean> {
      refreshing ??= refreshNow().finally(() => {
        refreshing = undefined;
      });
      return refreshing;
    },
    start() {
      timer = setInterval(() => {
        this.refresh().catch((error: unknown) => deps.logger.warn({ err: error }, 'key set check failed'));
      }, deps.pollMs ?? 10_000);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}

export type ProviderHolder = ReturnType<typeof createProviderHolder>;

import { SUPPORTED_LANGUAGES, type Language } from '../settings/index.ts';
import { de } from './de.ts';
import { en, type MessageKey } from './en.ts';
import { ja } from './ja.ts';

export type { MessageKey } from './en.ts';
export type { Language } from '../settings/index.ts';

const catalogs: Record<Language, Record<MessageKey, string>> = { en, de, ja };

export type Translate = (key: MessageKey, vars?: Record<string, string | number>) => string;

/** The messages of one language; a `{name}` without a value stays as written. */
export function translator(language: Language): Translate {
  const catalog = catalogs[language];
  return (key, vars) =>
    (catalog[key] ?? en[key]).replace(/\{(\w+)\}/g, (whole, name: string) =>
      vars && name in vars ? String(vars[name]) : whole,
    );
}

/** Whether a translation exists for `key` (scope names and error codes are looked up dynamically). */
export const hasMessage = (key: string): key is MessageKey => key in en;

const isSupported = (tag: string): tag is Language => (SUPPORTED_LANGUAGES as readonly string[]).includes(tag);

/** `de-CH` → `de`; unsupported tags → undefined. */
function supported(tag: string): Language | undefined {
  const primary = tag.trim().toLowerCase().split('-')[0] ?? '';
  return isSupported(primary) ? primary : undefined;
}

/** Accept-Language tags in order of preference (q=0 excluded). */
function acceptLanguageTags(header: string): string[] {
  return header
    .split(',')
    .slice(0, 20)
    .map((part, index) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = params.map((param) => param.trim()).find((param) => param.startsWith('q='));
      const weight = q ? Number(q.slice(2)) : 1;
      return { tag: tag.trim(), weight: Number.isFinite(weight) ? weight : 0, index };
    })
    .filter((entry) => entry.tag && entry.weight > 0)
    .sort((a, b) => b.weight - a.weight || a.index - b.index)
    .map((entry) => entry.tag);
}

/**
 * The page language: the app's `ui_locales` (space-separated, in order), then
 * the browser's Accept-Language, then the configured default.
 */
export function negotiateLanguage(input: { uiLocales?: string; acceptLanguage?: string; fallback: Language }): Language {
  for (const tag of (input.uiLocales ?? '').split(/\s+/).slice(0, 20)) {
    const language = supported(tag);
    if (language) return language;
  }
  for (const tag of acceptLanguageTags(input.acceptLanguage ?? '')) {
    const language = supported(tag);
    if (language) return language;
  }
  return input.fallback;
}

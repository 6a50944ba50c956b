export { createTokenRepository, type TokenRepository } from './repository.ts';
export { createTokenService, type TokenService, type TokenLimits } from './service.ts';
export { effectiveStatus, normalizeEmail, type TokenRecord, type TokenStatus, type TokenContext } from './core.ts';

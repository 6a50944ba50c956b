export { createBanRepository, type BanRecord, type BanRepository, type BanSource } from './repository.ts';
export { createBanService, type BanService } from './service.ts';
export { refuseBannedIps } from './middleware.ts';

export { createApplicationRepository, type ApplicationRepository } from './repository.ts';
export { createApplicationService, type ApplicationService, type NewApplication } from './service.ts';
export { applicationTypes, MANAGEMENT_ACCESS_METADATA, THIRD_PARTY_METADATA, oidcClientMetadataSchema, redirectUriProblem, type Application, type ApplicationType } from './core.ts';

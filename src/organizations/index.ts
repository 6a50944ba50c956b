export {
  createOrganizationRepository,
  type Organization,
  type OrganizationRepository,
  type OrganizationRole,
  type Page,
} from './repository.ts';
export { createOrganizationService, type OrganizationService } from './service.ts';

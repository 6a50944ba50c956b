export {
  createOrganizationRepository,
  escapeLike,
  type Organization,
  type OrganizationRepository,
  type OrganizationRole,
  type Page,
} from './repository.ts';

export { createInvitationRepository, type Invitation, type InvitationRepository, type InvitationStatus } from './repository.ts';
export { createInvitationService, invitationLink, invitationStatus, type InvitationService } from './service.ts';

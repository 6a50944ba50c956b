import type { Database } from '../db/index.ts';
import type { Application, ApplicationType, OidcClientMetadata } from './core.ts';

type Row = {
  id: string;
  name: string;
  type: ApplicationType;
  description: string | null;
  secret_sealed: string | null;
  oidc_client_metadata: OidcClientMetadata;
  is_third_party: boolean;
  management_api_access: boolean;
  created_at: Date;
};

const toApplication = (row: Row): Application => ({
  id: row.id,
  name: row.name,
  type: row.type,
  description: row.description,
  oidcClientMetadata: {
    redirectUris: row.oidc_client_metadata?.redirectUris ?? [],
    postLogoutRedirectUris: row.oidc_client_metadata?.postLogoutRedirectUris ?? [],
  },
  isThirdParty: row.is_third_party,
  managementApiAccess: row.management_api_access,
  createdAt: new Date(row.created_at),
});

export type ApplicationRepository = ReturnType<typeof createApplicationRepository>;

export function createApplicationRepository(db: Database) {
  const table = () => db<Row>('applications');
  return {
    async insert(app: Omit<Application, 'createdAt'> & { secretSealed: string | null }) {
      const [row] = await table()
        .insert({
          id: app.id,
          name: app.name,
          type: app.type,
          description: app.description,
          secret_sealed: app.secretSealed,
          oidc_client_metadata: app.oidcClientMetadata,
          is_third_party: app.isThirdParty,
          management_api_access: app.managementApiAccess,
        })
        .returning('*');
      return toApplication(row as Row);
    },

    async findWithSealedSecret(id: string) {
      const row = await table().where({ id }).first();
      return row ? { application: toApplication(row), secretSealed: row.secret_sealed } : undefined;
    },

    async update(
      id: string,
      changes: {
        name?: string;
        description?: string | null;
        oidcClientMetadata?: OidcClientMetadata;
        secretSealed?: string;
        managementApiAccess?: boolean;
        isThirdParty?: boolean;
      },
    ) {
      const [row] = await table()
        .where({ id })
        .update({
          ...(changes.name === undefined ? {} : { name: changes.name }),
          ...(changes.description === undefined ? {} : { description: changes.description }),
          ...(changes.oidcClientMetadata ? { oidc_client_metadata: changes.oidcClientMetadata } : {}),
          ...(changes.secretSealed ? { secret_sealed: changes.secretSealed } : {}),
          ...(changes.managementApiAccess === undefined ? {} : { management_api_access: changes.managementApiAccess }),
          ...(changes.isThirdParty === undefined ? {} : { is_third_party: changes.isThirdParty }),
        })
        .returning('*');
      return row ? toApplication(row as Row) : undefined;
    },

    async list(filter: { type?: ApplicationType }, page: { page: number; pageSize: number }) {
      const base = table().modify((query) => {
        if (filter.type) query.where({ type: filter.type });
      });
      const [{ count }] = (await base.clone().count({ count: '*' })) as [{ count: number | string }];
      const rows = (await base
        .clone()
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(page.pageSize)
        .offset((page.page - 1) * page.pageSize)) as Row[];
      return { items: rows.map(toApplication), total: Number(count) };
    },

    async delete(id: string) {
      return (await table().where({ id }).delete()) > 0;
    },
  };
}

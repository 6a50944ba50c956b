import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseKind, uniqueEmail } from '../helpers/db.ts';
import { api, managementToken, startTestSesame, type TestSesame } from '../helpers/server.ts';

type Ref = { id: string; name: string };

const tag = () => randomBytes(5).toString('hex');

describe(`organizations in the Management API (${databaseKind})`, () => {
  let t: TestSesame;
  let token: string;

  beforeAll(async () => {
    t = await startTestSesame();
    token = await managementToken(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  const call = (method: string, path: string, body?: unknown) => api(t, method, path, { token, ...(body === undefined ? {} : { body }) });

  async function created(method: string, path: string, body: unknown) {
    const response = await call(method, path, body);
    if (response.status !== 201) throw new Error(`${method} ${path} failed: ${response.status} ${response.text}`);
    return response.body;
  }
  const createOrganization = (body: Record<string, unknown> = {}) => created('POST', '/api/organizations', { name: `Org ${tag()}`, ...body }) as Promise<Ref>;
  // Role names are shared by all organizations (and all test files on one database): keep them unique.
  const createRole = (name = `role-${tag()}`) => created('POST', '/api/organization-roles', { name }) as Promise<Ref & { description: string | null }>;
  const createUser = () => created('POST', '/api/users', { primaryEmail: uniqueEmail('member'), password: `password-${tag()}` }) as Promise<{ id: string }>;
  const ids = (items: Array<{ id: string }>) => items.map((item) => item.id);
  const refs = (...roles: Ref[]) => roles.map(({ id, name }) => ({ id, name }));

  /** An organization with `count` members (and no roles). */
  async function organizationWithMembers(count: number) {
    const org = await createOrganization();
    const users = [];
    for (let i = 0; i < count; i += 1) users.push(await createUser());
    if (count > 0) expect((await call('POST', `/api/organizations/${org.id}/users`, { userIds: ids(users) })).status).toBe(201);
    return { org, users };
  }

  describe('organizations', () => {
    it('creates, reads, updates and deletes an organization', async () => {
      const response = await call('POST', '/api/organizations', { name: '  Acme  ', description: 'Rockets', customData: { plan: 'pro', seats: 5 } });
      expect(response.status).toBe(201);
      expect(response.body).toEqual({
        id: expect.stringMatching(/^[A-Za-z0-9_-]+$/),
        name: 'Acme',
        description: 'Rockets',
        customData: { plan: 'pro', seats: 5 },
        createdAt: expect.any(String),
      });
      const id = response.body.id as string;
      expect((await call('GET', `/api/organizations/${id}`)).body).toEqual(response.body);

      const updated = await call('PATCH', `/api/organizations/${id}`, { name: 'Acme Corp', description: null, customData: { plan: 'free' } });
      expect(updated.status).toBe(200);
      expect(updated.body).toEqual({ ...response.body, name: 'Acme Corp', description: null, customData: { plan: 'free' } });
      expect((await call('GET', `/api/organizations/${id}`)).body).toEqual(updated.body);

      const deleted = await call('DELETE', `/api/organizations/${id}`);
      expect(deleted.status).toBe(204);
      expect(deleted.text).toBe('');
      const gone = await call('GET', `/api/organizations/${id}`);
      expect(gone.status).toBe(404);
      expect(gone.body).toMatchObject({ code: 'NOT_FOUND' });
    });

    it('creates an organization with only a name: no description, empty customData', async () => {
      const response = await call('POST', '/api/organizations', { name: 'Bare' });
      expect(response.status).toBe(201);
      expect(response.body).toMatchObject({ name: 'Bare', description: null, customData: {} });
    });

    it.each([
      ['a missing name', {}, 'body.name'],
      ['a name of the wrong type', { name: 7 }, 'body.name'],
      ['a blank name', { name: '   ' }, 'body.name'],
      ['a name over 256 characters', { name: 'n'.repeat(257) }, 'body.name'],
      ['a description over 2048 characters', { name: 'x', description: 'd'.repeat(2049) }, 'body.description'],
      ['customData that is an array', { name: 'x', customData: [1, 2] }, 'body.customData'],
      ['customData over 16 KiB', { name: 'x', customData: { blob: 'b'.repeat(16_400) } }, 'body.customData'],
    ])('refuses %s with 400 naming the field', async (_label, body, path) => {
      const response = await call('POST', '/api/organizations', body);
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
      expect(response.body.issues.map((issue: { path: string }) => issue.path)).toContain(path);
    });

    it('refuses an unknown field naming it, and a NUL byte', async () => {
      const unknown = await call('POST', '/api/organizations', { name: 'x', tenantId: 't1' });
      expect(unknown.status).toBe(400);
      expect(unknown.body.message).toContain('tenantId');
      const nul = await api(t, 'POST', '/api/organizations', { token, rawBody: '{"name":"a\\u0000b"}' });
      expect(nul.status).toBe(400);
      expect(nul.body.code).toBe('INVALID_INPUT');
    });

    it('refuses an empty, unknown-field or oversize update with 400 and leaves the organization as it was', async () => {
      const org = await createOrganization({ description: 'Kept' });
      for (const body of [{}, { owner: 'me' }, { name: 'n'.repeat(257) }, { description: 5 }]) {
        const response = await call('PATCH', `/api/organizations/${org.id}`, body);
        expect(response.status, JSON.stringify(body).slice(0, 40)).toBe(400);
      }
      expect((await call('PATCH', `/api/organizations/${org.id}`, { owner: 'me' })).body.message).toContain('owner');
      expect((await call('GET', `/api/organizations/${org.id}`)).body).toMatchObject({ name: org.name, description: 'Kept' });
    });

    it('answers 404 NOT_FOUND for an unknown organization on every route', async () => {
      const user = await createUser();
      const role = await createRole();
      for (const [method, path, body] of [
        ['GET', '/api/organizations/no-such-org', undefined],
        ['PATCH', '/api/organizations/no-such-org', { name: 'x' }],
        ['DELETE', '/api/organizations/no-such-org', undefined],
        ['GET', '/api/organizations/no-such-org/users', undefined],
        ['POST', '/api/organizations/no-such-org/users', { userIds: [user.id] }],
        ['DELETE', `/api/organizations/no-such-org/users/${user.id}`, undefined],
        ['GET', `/api/organizations/no-such-org/users/${user.id}/roles`, undefined],
        ['POST', `/api/organizations/no-such-org/users/${user.id}/roles`, { organizationRoleIds: [role.id] }],
        ['PUT', `/api/organizations/no-such-org/users/${user.id}/roles`, { organizationRoleIds: [role.id] }],
        ['DELETE', `/api/organizations/no-such-org/users/${user.id}/roles/${role.id}`, undefined],
        ['GET', '/api/organizations/no-such-org/jit/roles', undefined],
        ['PUT', '/api/organizations/no-such-org/jit/roles', { organizationRoleIds: [role.id] }],
        ['GET', '/api/organizations/no-such-org/jit/email-domains', undefined],
        ['PUT', '/api/organizations/no-such-org/jit/email-domains', { emailDomains: ['example.com'] }],
      ] as const) {
        const response = await call(method, path, body);
        expect(response.status, `${method} ${path}`).toBe(404);
        expect(response.body, `${method} ${path}`).toMatchObject({ code: 'NOT_FOUND' });
      }
      expect((await call('GET', `/api/organizations/${encodeURIComponent('a b')}`)).status).toBe(400);
    });

    it('deleting an organization removes its memberships: the user’s organizations no longer list it', async () => {
      const { org, users } = await organizationWithMembers(1);
      const role = await createRole();
      await created('POST', `/api/organizations/${org.id}/users/${users[0]!.id}/roles`, { organizationRoleIds: [role.id] });
      const kept = await createOrganization();
      await created('POST', `/api/organizations/${kept.id}/users`, { userIds: [users[0]!.id] });
      expect(ids((await call('GET', `/api/users/${users[0]!.id}/organizations`)).body)).toEqual([org.id, kept.id]);

      expect((await call('DELETE', `/api/organizations/${org.id}`)).status).toBe(204);
      expect(ids((await call('GET', `/api/users/${users[0]!.id}/organizations`)).body)).toEqual([kept.id]);
      expect(await t.db('organization_user_relations').where({ organization_id: org.id }).first()).toBeUndefined();
      expect(await t.db('organization_role_user_relations').where({ organization_id: org.id }).first()).toBeUndefined();
      // The user and the role outlive the organization.
      expect((await call('GET', `/api/users/${users[0]!.id}`)).status).toBe(200);
      expect((await call('GET', `/api/organization-roles/${role.id}`)).status).toBe(200);
      expect((await call('DELETE', `/api/organizations/${org.id}`)).status).toBe(404);
    });
  });

  describe('GET /api/organizations', () => {
    it('searches names with q and paginates with a Total-Number that counts the search', async () => {
      const label = tag();
      const orgs = [];
      for (let i = 0; i < 3; i += 1) orgs.push(await createOrganization({ name: `Search ${label} ${i}` }));
      await createOrganization({ name: `Other ${tag()}` });

      const all = await call('GET', `/api/organizations?q=${label.toUpperCase()}`);
      expect(all.status).toBe(200);
      expect(all.headers.get('total-number')).toBe('3');
      // Newest first.
      expect(ids(all.body)).toEqual(ids(orgs).reverse());

      const page2 = await call('GET', `/api/organizations?q=${label}&page=2&page_size=2`);
      expect(ids(page2.body)).toEqual([orgs[0]!.id]);
      const beyond = await call('GET', `/api/organizations?q=${label}&page=3&page_size=2`);
      expect(beyond.status).toBe(200);
      expect(beyond.body).toEqual([]);
      expect(beyond.headers.get('total-number')).toBe('3');
      const largest = await call('GET', `/api/organizations?q=${label}&page_size=100`);
      expect(largest.body).toHaveLength(3);
    });

    it('matches % and _ in q literally', async () => {
      const label = tag();
      const percent = await createOrganization({ name: `${label} 100% remote` });
      const underscore = await createOrganization({ name: `${label} snake_case` });
      await createOrganization({ name: `${label} 100X remote` });
      await createOrganization({ name: `${label} snakeXcase` });
      const byPercent = await call('GET', `/api/organizations?q=${encodeURIComponent(`${label} 100%`)}`);
      expect(ids(byPercent.body)).toEqual([percent.id]);
      expect(byPercent.headers.get('total-number')).toBe('1');
      const byUnderscore = await call('GET', `/api/organizations?q=${encodeURIComponent(`${label} snake_`)}`);
      expect(ids(byUnderscore.body)).toEqual([underscore.id]);
    });

    it.each([
      ['a page size of 101', 'page_size=101'],
      ['page 0', 'page=0'],
      ['an empty q', 'q='],
      ['a q over 256 characters', `q=${'q'.repeat(257)}`],
      ['an unknown parameter', 'search=x'],
      ['a NUL byte in q', 'q=a%00'],
    ])('refuses %s with 400', async (_label, query) => {
      const response = await call('GET', `/api/organizations?${query}`);
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
    });
  });

  describe('members', () => {
    it('adds members and lists them with their roles, without password hashes', async () => {
      const { org, users } = await organizationWithMembers(2);
      const role = await createRole();
      await created('POST', `/api/organizations/${org.id}/users/${users[1]!.id}/roles`, { organizationRoleIds: [role.id] });

      const response = await call('GET', `/api/organizations/${org.id}/users`);
      expect(response.status).toBe(200);
      expect(response.headers.get('total-number')).toBe('2');
      // Members added in one request joined at the same moment: their order is not asserted.
      expect(response.body).toHaveLength(2);
      expect(response.body).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ id: users[0]!.id, hasPassword: true, organizationRoles: [] }),
          expect.objectContaining({ id: users[1]!.id, hasPassword: true, organizationRoles: refs(role) }),
        ]),
      );
      expect(response.text).not.toContain('password_hash');
      expect(response.text).not.toContain('$argon2');
    });

    it('paginates members: a page beyond the end is [] with the full Total-Number; page_size 101 is refused', async () => {
      const { org, users } = await organizationWithMembers(3);
      const page1 = await call('GET', `/api/organizations/${org.id}/users?page=1&page_size=2`);
      const page2 = await call('GET', `/api/organizations/${org.id}/users?page=2&page_size=2`);
      expect(page1.body).toHaveLength(2);
      expect(page2.body).toHaveLength(1);
      expect(new Set([...ids(page1.body), ...ids(page2.body)])).toEqual(new Set(ids(users)));
      const beyond = await call('GET', `/api/organizations/${org.id}/users?page=3&page_size=2`);
      expect(beyond.body).toEqual([]);
      expect(beyond.headers.get('total-number')).toBe('3');
      expect((await call('GET', `/api/organizations/${org.id}/users?page_size=100`)).body).toHaveLength(3);
      expect((await call('GET', `/api/organizations/${org.id}/users?page_size=101`)).status).toBe(400);
    });

    it('refuses unknown user ids with 400 naming them, and adds nobody', async () => {
      const org = await createOrganization();
      const user = await createUser();
      const response = await call('POST', `/api/organizations/${org.id}/users`, { userIds: [user.id, 'ghost-1', 'ghost-2'] });
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
      expect(response.body.message).toContain('ghost-1');
      expect(response.body.message).toContain('ghost-2');
      expect(response.body.unknownUserIds).toEqual(['ghost-1', 'ghost-2']);
      expect((await call('GET', `/api/organizations/${org.id}/users`)).body).toEqual([]);
    });

    it('refuses to add an existing member with 409, and adds nobody', async () => {
      const { org, users } = await organizationWithMembers(1);
      const newcomer = await createUser();
      const response = await call('POST', `/api/organizations/${org.id}/users`, { userIds: [newcomer.id, users[0]!.id] });
      expect(response.status).toBe(409);
      expect(response.body.code).toBe('CONFLICT');
      expect(response.body.existingMemberIds).toEqual([users[0]!.id]);
      expect(ids((await call('GET', `/api/organizations/${org.id}/users`)).body)).toEqual([users[0]!.id]);
    });

    it('gives exactly one of 10 parallel adds of the same user a 201 and the rest 409', async () => {
      const org = await createOrganization();
      // Several rounds: the first may find the connection pool cold and the requests queued one after another.
      for (let round = 1; round <= 5; round += 1) {
        const user = await createUser();
        const results = await Promise.all(Array.from({ length: 10 }, () => call('POST', `/api/organizations/${org.id}/users`, { userIds: [user.id] })));
        expect(results.map((r) => r.status).sort(), `round ${round}`).toEqual([201, ...Array<number>(9).fill(409)]);
        expect((await call('GET', `/api/organizations/${org.id}/users`)).headers.get('total-number')).toBe(String(round));
      }
    });

    it.each([
      ['an empty list', { userIds: [] }],
      ['a missing list', {}],
      ['ids that are not strings', { userIds: [1, 2] }],
      ['an id that cannot exist', { userIds: ['../etc'] }],
      ['over 100 ids', { userIds: Array.from({ length: 101 }, (_, i) => `u${i}`) }],
      ['an unknown field', { userIds: ['u1'], roleIds: [] }],
    ])('refuses %s with 400', async (_label, body) => {
      const org = await createOrganization();
      const response = await call('POST', `/api/organizations/${org.id}/users`, body);
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
      if ('roleIds' in body) expect(response.body.message).toContain('roleIds');
    });

    it('removes a member with their roles: 204, then 404', async () => {
      const { org, users } = await organizationWithMembers(2);
      const role = await createRole();
      await created('POST', `/api/organizations/${org.id}/users/${users[0]!.id}/roles`, { organizationRoleIds: [role.id] });

      const removed = await call('DELETE', `/api/organizations/${org.id}/users/${users[0]!.id}`);
      expect(removed.status).toBe(204);
      expect(ids((await call('GET', `/api/organizations/${org.id}/users`)).body)).toEqual([users[1]!.id]);
      expect((await call('GET', `/api/users/${users[0]!.id}/organizations`)).body).toEqual([]);
      const again = await call('DELETE', `/api/organizations/${org.id}/users/${users[0]!.id}`);
      expect(again.status).toBe(404);
      expect(again.body.code).toBe('NOT_FOUND');

      // Rejoining starts without the old roles.
      await created('POST', `/api/organizations/${org.id}/users`, { userIds: [users[0]!.id] });
      expect((await call('GET', `/api/organizations/${org.id}/users/${users[0]!.id}/roles`)).body).toEqual([]);
    });

    it('answers 404 for a user who is not a member, on every member route', async () => {
      const org = await createOrganization();
      const outsider = await createUser();
      const role = await createRole();
      for (const [method, path, body] of [
        ['DELETE', `/api/organizations/${org.id}/users/${outsider.id}`, undefined],
        ['GET', `/api/organizations/${org.id}/users/${outsider.id}/roles`, undefined],
        ['POST', `/api/organizations/${org.id}/users/${outsider.id}/roles`, { organizationRoleIds: [role.id] }],
        ['PUT', `/api/organizations/${org.id}/users/${outsider.id}/roles`, { organizationRoleIds: [role.id] }],
        ['DELETE', `/api/organizations/${org.id}/users/${outsider.id}/roles/${role.id}`, undefined],
        ['GET', `/api/organizations/${org.id}/users/no-such-user/roles`, undefined],
      ] as const) {
        const response = await call(method, path, body);
        expect(response.status, `${method} ${path}`).toBe(404);
        expect(response.body.code).toBe('NOT_FOUND');
      }
      expect((await call('GET', `/api/users/${outsider.id}/organizations`)).body).toEqual([]);
    });
  });

  describe('member roles', () => {
    it('adds roles (keeping existing ones), replaces them, and takes one away', async () => {
      const { org, users } = await organizationWithMembers(1);
      const member = users[0]!.id;
      const base = `/api/organizations/${org.id}/users/${member}/roles`;
      const [a, b, c] = [await createRole(`a-${tag()}`), await createRole(`b-${tag()}`), await createRole(`c-${tag()}`)];

      const added = await call('POST', base, { organizationRoleIds: [a.id, a.id] });
      expect(added.status).toBe(201);
      expect(added.body).toEqual([{ id: a.id, name: a.name, description: null, createdAt: expect.any(String) }]);
      const more = await call('POST', base, { organizationRoleIds: [b.id, a.id] });
      expect(ids(more.body)).toEqual([a.id, b.id]);
      expect(ids((await call('GET', base)).body)).toEqual([a.id, b.id]);

      const replaced = await call('PUT', base, { organizationRoleIds: [c.id] });
      expect(replaced.status).toBe(200);
      expect(ids(replaced.body)).toEqual([c.id]);
      expect((await call('GET', `/api/users/${member}/organizations`)).body[0].organizationRoles).toEqual(refs(c));

      const removed = await call('DELETE', `${base}/${c.id}`);
      expect(removed.status).toBe(204);
      expect((await call('GET', base)).body).toEqual([]);
      const again = await call('DELETE', `${base}/${c.id}`);
      expect(again.status).toBe(404);
      expect(again.body.code).toBe('NOT_FOUND');

      expect(ids((await call('PUT', base, { organizationRoleIds: [a.id, b.id] })).body)).toEqual([a.id, b.id]);
      expect((await call('PUT', base, { organizationRoleIds: [] })).body).toEqual([]);
    });

    it('refuses unknown role ids with 400 naming them, and changes nothing', async () => {
      const { org, users } = await organizationWithMembers(1);
      const base = `/api/organizations/${org.id}/users/${users[0]!.id}/roles`;
      const role = await createRole();
      await created('POST', base, { organizationRoleIds: [role.id] });
      for (const method of ['POST', 'PUT']) {
        const response = await call(method, base, { organizationRoleIds: ['no-such-role', role.id] });
        expect(response.status, method).toBe(400);
        expect(response.body.code).toBe('INVALID_INPUT');
        expect(response.body.message).toContain('no-such-role');
        expect(response.body.unknownOrganizationRoleIds).toEqual(['no-such-role']);
      }
      expect(ids((await call('GET', base)).body)).toEqual([role.id]);
      expect((await call('DELETE', `${base}/no-such-role`)).status).toBe(404);
    });

    it.each([
      ['a missing list', {}],
      ['a list of the wrong type', { organizationRoleIds: 'admin' }],
      ['an unknown field', { organizationRoleIds: [], roleNames: ['admin'] }],
    ])('refuses %s with 400', async (_label, body) => {
      const { org, users } = await organizationWithMembers(1);
      for (const method of ['POST', 'PUT']) {
        const response = await call(method, `/api/organizations/${org.id}/users/${users[0]!.id}/roles`, body);
        expect(response.status, method).toBe(400);
      }
    });
  });

  describe('organization roles', () => {
    it('creates, reads, renames and deletes a role', async () => {
      const name = `Editor-${tag()}`;
      const response = await call('POST', '/api/organization-roles', { name: ` ${name} `, description: 'Edits things' });
      expect(response.status).toBe(201);
      expect(response.body).toEqual({ id: expect.any(String), name, description: 'Edits things', createdAt: expect.any(String) });
      const id = response.body.id as string;
      expect((await call('GET', `/api/organization-roles/${id}`)).body).toEqual(response.body);

      const renamed = await call('PATCH', `/api/organization-roles/${id}`, { name: `${name}-2`, description: null });
      expect(renamed.status).toBe(200);
      expect(renamed.body).toEqual({ ...response.body, name: `${name}-2`, description: null });
      // Renaming a role to its own name in another case is not a conflict with itself.
      expect((await call('PATCH', `/api/organization-roles/${id}`, { name: `${name}-2`.toUpperCase() })).status).toBe(200);

      expect((await call('DELETE', `/api/organization-roles/${id}`)).status).toBe(204);
      for (const [method, body] of [['GET', undefined], ['PATCH', { name: 'x' }], ['DELETE', undefined]] as const) {
        const gone = await call(method, `/api/organization-roles/${id}`, body);
        expect(gone.status, method).toBe(404);
        expect(gone.body.code).toBe('NOT_FOUND');
      }
    });

    it('refuses a duplicate name in any case with 409, on create and on rename', async () => {
      const name = `Owner-${tag()}`;
      await createRole(name);
      const duplicate = await call('POST', '/api/organization-roles', { name: name.toLowerCase() });
      expect(duplicate.status).toBe(409);
      expect(duplicate.body.code).toBe('CONFLICT');
      const other = await createRole();
      const rename = await call('PATCH', `/api/organization-roles/${other.id}`, { name: name.toUpperCase() });
      expect(rename.status).toBe(409);
      expect((await call('GET', `/api/organization-roles/${other.id}`)).body.name).toBe(other.name);
    });

    it('gives exactly one of 10 parallel creates of one role name a 201 and the rest 409', async () => {
      const name = `Racer-${tag()}`;
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => call('POST', '/api/organization-roles', { name: i % 2 ? name.toUpperCase() : name })),
      );
      expect(results.map((r) => r.status).sort()).toEqual([201, ...Array<number>(9).fill(409)]);
    });

    it('lists roles oldest first; a page beyond the end is [] with the full Total-Number', async () => {
      const first = await createRole();
      const second = await createRole();
      // Other test files may add roles to a shared database meanwhile: compare only when the table held still.
      const count = async () => Number((await t.db('organization_roles').count({ count: '*' }))[0]!.count);
      let checked = false;
      for (let attempt = 0; attempt < 5 && !checked; attempt += 1) {
        const before = await count();
        const listed = await call('GET', '/api/organization-roles?page_size=100');
        const beyond = await call('GET', `/api/organization-roles?page=${Math.ceil(before / 100) + 1}&page_size=100`);
        if (before !== (await count())) continue;
        expect(listed.headers.get('total-number')).toBe(String(before));
        expect(beyond.status).toBe(200);
        expect(beyond.body).toEqual([]);
        expect(beyond.headers.get('total-number')).toBe(String(before));
        checked = true;
      }
      expect(checked).toBe(true);
      let all: Array<{ id: string }> = [];
      for (let page = 1; ; page += 1) {
        const response = await call('GET', `/api/organization-roles?page=${page}&page_size=100`);
        if (response.body.length === 0) break;
        all = all.concat(response.body);
      }
      expect(ids(all).indexOf(first.id)).toBeLessThan(ids(all).indexOf(second.id));
      expect((await call('GET', '/api/organization-roles?page_size=101')).status).toBe(400);
    });

    it.each([
      ['a missing name', {}, 'body.name'],
      ['a blank name', { name: '  ' }, 'body.name'],
      ['a name over 128 characters', { name: 'r'.repeat(129) }, 'body.name'],
      ['a description over 2048 characters', { name: 'r', description: 'd'.repeat(2049) }, 'body.description'],
      ['a name of the wrong type', { name: false }, 'body.name'],
    ])('refuses %s with 400 naming the field', async (_label, body, path) => {
      const response = await call('POST', '/api/organization-roles', body);
      expect(response.status).toBe(400);
      expect(response.body.issues.map((issue: { path: string }) => issue.path)).toContain(path);
    });

    it('refuses an unknown field naming it, a NUL byte, and an empty update', async () => {
      const unknown = await call('POST', '/api/organization-roles', { name: `r-${tag()}`, permissions: ['read'] });
      expect(unknown.status).toBe(400);
      expect(unknown.body.message).toContain('permissions');
      const nul = await api(t, 'POST', '/api/organization-roles', { token, rawBody: '{"name":"r\\u0000"}' });
      expect(nul.status).toBe(400);
      const role = await createRole();
      expect((await call('PATCH', `/api/organization-roles/${role.id}`, {})).status).toBe(400);
    });

    it('deleting a role takes it from every member and from the just-in-time defaults', async () => {
      const { org, users } = await organizationWithMembers(2);
      const [doomed, kept] = [await createRole(), await createRole()];
      for (const user of users) {
        await created('POST', `/api/organizations/${org.id}/users/${user.id}/roles`, { organizationRoleIds: [doomed.id, kept.id] });
      }
      expect((await call('PUT', `/api/organizations/${org.id}/jit/roles`, { organizationRoleIds: [doomed.id, kept.id] })).status).toBe(200);

      expect((await call('DELETE', `/api/organization-roles/${doomed.id}`)).status).toBe(204);
      for (const user of users) {
        expect(ids((await call('GET', `/api/organizations/${org.id}/users/${user.id}/roles`)).body)).toEqual([kept.id]);
        expect((await call('GET', `/api/users/${user.id}/organizations`)).body[0].organizationRoles).toEqual(refs(kept));
      }
      const members = await call('GET', `/api/organizations/${org.id}/users`);
      expect(members.body.map((m: { organizationRoles: Ref[] }) => m.organizationRoles)).toEqual([refs(kept), refs(kept)]);
      expect((await call('GET', `/api/organizations/${org.id}/jit/roles`)).body).toEqual(refs(kept));
    });
  });

  describe('just-in-time provisioning', () => {
    it('replaces and reads the default roles', async () => {
      const org = await createOrganization();
      const [a, b] = [await createRole(), await createRole()];
      expect((await call('GET', `/api/organizations/${org.id}/jit/roles`)).body).toEqual([]);
      const set = await call('PUT', `/api/organizations/${org.id}/jit/roles`, { organizationRoleIds: [a.id, b.id, a.id] });
      expect(set.status).toBe(200);
      expect(set.body).toEqual(expect.arrayContaining(refs(a, b)));
      expect(set.body).toHaveLength(2);
      expect((await call('GET', `/api/organizations/${org.id}/jit/roles`)).body).toEqual(set.body);
      expect((await call('PUT', `/api/organizations/${org.id}/jit/roles`, { organizationRoleIds: [b.id] })).body).toEqual(refs(b));
      expect((await call('PUT', `/api/organizations/${org.id}/jit/roles`, { organizationRoleIds: [] })).body).toEqual([]);
    });

    it('refuses unknown default role ids with 400 naming them, and changes nothing', async () => {
      const org = await createOrganization();
      const role = await createRole();
      await call('PUT', `/api/organizations/${org.id}/jit/roles`, { organizationRoleIds: [role.id] });
      const response = await call('PUT', `/api/organizations/${org.id}/jit/roles`, { organizationRoleIds: ['no-such-role'] });
      expect(response.status).toBe(400);
      expect(response.body.message).toContain('no-such-role');
      expect((await call('GET', `/api/organizations/${org.id}/jit/roles`)).body).toEqual(refs(role));
      expect((await call('PUT', `/api/organizations/${org.id}/jit/roles`, { roles: [] })).status).toBe(400);
    });

    it('stores email domains lower-cased and de-duplicated, and replaces them', async () => {
      const org = await createOrganization();
      expect((await call('GET', `/api/organizations/${org.id}/jit/email-domains`)).body).toEqual([]);
      const set = await call('PUT', `/api/organizations/${org.id}/jit/email-domains`, {
        emailDomains: ['Example.COM', 'example.com', ' sub.example.org ', 'SUB.example.org'],
      });
      expect(set.status).toBe(200);
      expect(set.body).toEqual(['example.com', 'sub.example.org']);
      expect((await call('GET', `/api/organizations/${org.id}/jit/email-domains`)).body).toEqual(['example.com', 'sub.example.org']);
      expect((await call('PUT', `/api/organizations/${org.id}/jit/email-domains`, { emailDomains: [] })).body).toEqual([]);
    });

    it.each([
      ['an address instead of a domain', ['alice@example.com']],
      ['a domain without a dot', ['localhost']],
      ['a domain with a scheme', ['https://example.com']],
      ['a wildcard', ['*.example.com']],
      ['a domain over 253 characters', [`${'a'.repeat(60)}.`.repeat(5) + 'com']],
      ['a non-string', [42]],
    ])('refuses %s as an email domain with 400, changing nothing', async (_label, emailDomains) => {
      const org = await createOrganization();
      await call('PUT', `/api/organizations/${org.id}/jit/email-domains`, { emailDomains: ['kept.example'] });
      const response = await call('PUT', `/api/organizations/${org.id}/jit/email-domains`, { emailDomains: ['fine.example', ...emailDomains] });
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('INVALID_INPUT');
      expect(response.body.issues.map((issue: { path: string }) => issue.path)).toContain('body.emailDomains.1');
      expect((await call('GET', `/api/organizations/${org.id}/jit/email-domains`)).body).toEqual(['kept.example']);
    });

    it.each(['JIT email domains', 'JIT roles', 'member roles'] as const)('answers 10 parallel identical replacements of the %s with 200 each', async (list) => {
      const { org, users } = await organizationWithMembers(1);
      const [a, b] = [await createRole(), await createRole()];
      const { path, body } = {
        'JIT email domains': { path: `/api/organizations/${org.id}/jit/email-domains`, body: { emailDomains: ['a.example', 'b.example'] } },
        'JIT roles': { path: `/api/organizations/${org.id}/jit/roles`, body: { organizationRoleIds: [a.id, b.id] } },
        'member roles': { path: `/api/organizations/${org.id}/users/${users[0]!.id}/roles`, body: { organizationRoleIds: [a.id, b.id] } },
      }[list];
      // Several rounds: the first may find the connection pool cold and the requests queued one after another.
      for (let round = 1; round <= 3; round += 1) {
        const results = await Promise.all(Array.from({ length: 10 }, () => call('PUT', path, body)));
        expect(results.map((r) => r.status), `round ${round}`).toEqual(Array<number>(10).fill(200));
      }
      expect((await call('GET', path)).body).toHaveLength(2);
    });

    it('refuses a missing list and an unknown field with 400', async () => {
      const org = await createOrganization();
      expect((await call('PUT', `/api/organizations/${org.id}/jit/email-domains`, {})).status).toBe(400);
      const unknown = await call('PUT', `/api/organizations/${org.id}/jit/email-domains`, { emailDomains: [], domains: [] });
      expect(unknown.status).toBe(400);
      expect(unknown.body.message).toContain('domains');
    });
  });
});

import Router from '@koa/router';
import type { DevOutbox } from '../../../src/mail/index.ts';

/** STUB (being implemented): the dev outbox page at /dev/outbox. */
export function createOutboxRouter(_outbox: DevOutbox): Router {
  return new Router({ prefix: '/dev/outbox' });
}

import type { SearchAttributeKind } from './temporal-server';

/** The search attributes the engine's workflows upsert; the stack registers them in every party namespace. */
export const LOCKSTEP_SEARCH_ATTRIBUTES: Readonly<Record<string, SearchAttributeKind>> = Object.freeze({
  LockstepDefinition: 'Keyword',
  LockstepStatus: 'Keyword',
  LockstepParties: 'KeywordList',
  LockstepNextSteps: 'KeywordList',
  /**
   * Roles (assignees) with an open human task in the instance, on the node whose party plays
   * them. The dev server's SQLite visibility allows only three KeywordList attributes, so the
   * open tasks' step ids are not an attribute of their own: the current details name them.
   */
  LockstepTaskRoles: 'KeywordList',
});

/**
 * The definitions a node holds, by agreed hash (every version) and by id (the newest version, used
 * for new instances). Older versions stay for the instances that started with them.
 */
import type { LoadedDefinition } from '../model/definition';
import { LockstepError } from '../model/errors';

/** Versions compare numerically where they are numbers: "10" is newer than "9", "1.10" than "1.9". */
export function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export class DefinitionRegistry {
  private readonly byHash = new Map<string, LoadedDefinition>();
  private readonly byId = new Map<string, LoadedDefinition>();

  constructor(definitions: LoadedDefinition[]) {
    const seen = new Map<string, LoadedDefinition>();
    for (const d of definitions) {
      const key = `${d.definition.id}@${d.definition.version}`;
      const clash = seen.get(key);
      if (clash) {
        throw new LockstepError('conflict', `definition "${d.definition.id}" version ${d.definition.version} is declared twice: ${clash.source} and ${d.source}; give the newer one a higher version`);
      }
      seen.set(key, d);
      this.byHash.set(d.hash, d);
      const newest = this.byId.get(d.definition.id);
      if (!newest || compareVersions(d.definition.version, newest.definition.version) > 0) this.byId.set(d.definition.id, d);
    }
  }

  /** The newest version of each definition. */
  all(): LoadedDefinition[] {
    return [...this.byId.values()];
  }

  /** The newest version of a definition: what a new instance starts with. */
  get(id: string): LoadedDefinition {
    const d = this.byId.get(id);
    if (!d) throw new LockstepError('unknown_definition', `unknown definition "${id}"; this node holds: ${[...this.byId.keys()].join(', ') || 'none'}`, [{ field: '/definition', message: 'unknown' }]);
    return d;
  }

  /**
   * The definition with this agreed hash. A miss names the received hash and the hash this node
   * holds for the same definition id (when `definitionId` is given), so version drift is obvious.
   */
  byAgreedHash(hash: string, context: string, definitionId?: string): LoadedDefinition {
    const d = this.byHash.get(hash);
    if (!d) {
      const same = definitionId === undefined ? undefined : this.byId.get(definitionId);
      const message = same
        ? `${context} uses definition ${definitionId} with hash ${hash}, but this node holds ${definitionId} with hash ${same.hash} (from ${same.source}): the parties run different versions of it`
        : `${context} uses definition hash ${hash}, which this node does not hold (it holds ${[...this.byHash.entries()].map(([h, x]) => `${x.definition.id}@${h}`).join(', ') || 'none'})`;
      throw new LockstepError('unknown_definition', message, [{ field: '/definitionHash', message: 'unknown definition hash' }]);
    }
    return d;
  }
}

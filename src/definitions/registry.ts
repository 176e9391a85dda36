/** The definitions a node holds, by id and by agreed hash. */
import type { LoadedDefinition } from '../model/definition';
import { LockstepError } from '../model/errors';

export class DefinitionRegistry {
  private readonly byHash = new Map<string, LoadedDefinition>();
  private readonly byId = new Map<string, LoadedDefinition>();

  constructor(definitions: LoadedDefinition[]) {
    for (const d of definitions) {
      this.byHash.set(d.hash, d);
      const clash = this.byId.get(d.definition.id);
      if (clash) {
        throw new LockstepError('conflict', `definition id "${d.definition.id}" is declared twice: ${clash.source} and ${d.source}`);
      }
      this.byId.set(d.definition.id, d);
    }
  }

  all(): LoadedDefinition[] {
    return [...this.byId.values()];
  }

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

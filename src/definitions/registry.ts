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

  byAgreedHash(hash: string, context: string): LoadedDefinition {
    const d = this.byHash.get(hash);
    if (!d) {
      throw new LockstepError(
        'unknown_definition',
        `${context} uses definition hash ${hash}, which this node does not hold (it holds ${[...this.byHash.entries()].map(([h, x]) => `${x.definition.id}@${h}`).join(', ') || 'none'})`,
        [{ field: '/definitionHash', message: 'unknown definition hash' }],
      );
    }
    return d;
  }
}

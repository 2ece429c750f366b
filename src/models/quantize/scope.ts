// Walking a model's graphs: each graph (the main one, and the If/Loop/Scan bodies inside it) is a
// scope that sees its own initializers and those of the graphs around it. Also hands out tensor
// names that are unique across the whole model, for the tensors and nodes the rewrite adds.
import { subgraphs, type Graph, type Tensor } from './onnx.ts';

export class Scope {
  readonly inits = new Map<string, Tensor>();
  /** Names produced inside this graph (node outputs, graph inputs): they shadow outer initializers. */
  private readonly local = new Set<string>();

  constructor(
    readonly graph: Graph,
    readonly parent?: Scope,
  ) {
    for (const t of graph.initializer ?? []) this.inits.set(t.name ?? '', t);
    for (const i of graph.input ?? []) if (!this.inits.has(i.name ?? '')) this.local.add(i.name ?? '');
    for (const n of graph.node ?? []) for (const o of n.output ?? []) this.local.add(o);
  }

  get root(): Scope {
    return this.parent ? this.parent.root : this;
  }

  /** The initializer a name refers to here, with the scope that holds it. */
  find(name: string): { tensor: Tensor; scope: Scope } | undefined {
    const own = this.inits.get(name);
    if (own) return { tensor: own, scope: this };
    if (this.local.has(name)) return undefined;
    return this.parent?.find(name);
  }

  addInitializer(t: Tensor): string {
    (this.graph.initializer ??= []).push(t);
    this.inits.set(t.name!, t);
    return t.name!;
  }
}

/** Every graph of the model, outermost first. */
export function allGraphs(graph: Graph): Graph[] {
  return [graph, ...(graph.node ?? []).flatMap((n) => subgraphs(n).flatMap(allGraphs))];
}

/** Fresh names that clash with nothing already in the model. */
export class Names {
  private readonly used = new Set<string>();

  constructor(graph: Graph) {
    for (const g of allGraphs(graph)) {
      for (const t of g.initializer ?? []) this.used.add(t.name ?? '');
      for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) this.used.add(v.name ?? '');
      for (const n of g.node ?? []) {
        for (const x of [...(n.input ?? []), ...(n.output ?? []), n.name ?? '']) this.used.add(x);
      }
    }
  }

  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}

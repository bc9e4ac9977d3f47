// The import graph of a module, read from esbuild's metafile (the source as tsc compiles it to
// dist/: type-only imports are gone), split into what importing the module loads and what it
// loads later, through `import()`, on first use.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type ImportKind, type Metafile } from 'esbuild';

export const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The libraries that talk to Google Cloud: each costs tens of MiB and milliseconds to load. */
export const CLIENT_LIBRARIES = [
  '@google-cloud/firestore',
  '@google-cloud/pubsub',
  '@google-cloud/compute',
  'google-auth-library',
] as const;
export type ClientLibrary = (typeof CLIENT_LIBRARIES)[number];

const [FIRESTORE, PUBSUB, COMPUTE, AUTH] = CLIENT_LIBRARIES;

/**
 * What each function calls, by the name it is deployed under: the store always; Pub/Sub to
 * publish; Compute (with google-auth-library, its credentials) to manage VMs or, for `workshops`,
 * to read the region's quotas on start; google-auth-library alone to verify instructors' ID tokens.
 */
export const FUNCTION_CLIENTS: Record<string, { file: string; clients: ClientLibrary[] }> = {
  workshops: { file: 'functions/workshops.ts', clients: [FIRESTORE, PUBSUB, COMPUTE, AUTH] },
  join: { file: 'functions/join.ts', clients: [FIRESTORE] },
  onWorkshopStarted: {
    file: 'functions/on-workshop-started.ts',
    clients: [FIRESTORE, PUBSUB, COMPUTE, AUTH],
  },
  onVmReady: { file: 'functions/on-vm-ready.ts', clients: [FIRESTORE, PUBSUB, COMPUTE, AUTH] },
  onWorkshopEnded: { file: 'functions/on-workshop-ended.ts', clients: [FIRESTORE, COMPUTE, AUTH] },
  sweep: { file: 'functions/sweep.ts', clients: [FIRESTORE, PUBSUB, COMPUTE, AUTH] },
};

/** `@scope/name/deep/file.js` → `@scope/name`; `name/x` → `name`. */
export function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

const STATIC: ReadonlySet<ImportKind> = new Set(['import-statement', 'require-call']);

export interface Loaded {
  /** Our modules, as paths from the repository root. */
  modules: Set<string>;
  /** Packages, by name (Node's own modules left out). */
  packages: Set<string>;
  /** Targets of `import()` met on the way: our modules' paths or package specifiers. */
  dynamic: Set<string>;
}

export class ImportGraph {
  private constructor(
    private readonly inputs: Metafile['inputs'],
    /** The entry module's key: its path from the root, or `<stdin>` for source text. */
    readonly entry: string,
  ) {}

  /** The graph of `entry` (a path from the root), or of a module given as source text. */
  static async of(entry: string | { contents: string; dir: string }): Promise<ImportGraph> {
    const result = await build({
      absWorkingDir: ROOT,
      ...(typeof entry === 'string'
        ? { entryPoints: [entry] }
        : { stdin: { contents: entry.contents, resolveDir: entry.dir, loader: 'ts' } }),
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      logLevel: 'silent',
    });
    return new ImportGraph(result.metafile.inputs, typeof entry === 'string' ? entry : '<stdin>');
  }

  /** What importing `from` loads: everything reached through static imports. */
  loadedBy(from = this.entry): Loaded {
    const loaded: Loaded = { modules: new Set(), packages: new Set(), dynamic: new Set() };
    const pending = [from];
    while (pending.length > 0) {
      const module = pending.pop()!;
      if (loaded.modules.has(module)) continue;
      loaded.modules.add(module);
      for (const edge of this.inputs[module]?.imports ?? []) {
        if (edge.kind === 'dynamic-import') loaded.dynamic.add(edge.path);
        else if (!STATIC.has(edge.kind)) continue;
        else if (!edge.external) pending.push(edge.path);
        else if (!edge.path.startsWith('node:')) loaded.packages.add(packageOf(edge.path));
      }
    }
    return loaded;
  }

  /**
   * The `import()`s that importing `from` leaves for later, each with the packages it loads when
   * it runs (our module's static graph, or the package itself).
   */
  deferredBy(from = this.entry): Array<{ target: string; external: boolean; packages: string[] }> {
    return [...this.loadedBy(from).dynamic].map((target) => {
      const external = !(target in this.inputs);
      const packages = external ? [packageOf(target)] : [...this.loadedBy(target).packages];
      return { target, external, packages };
    });
  }
}

/** The client libraries among `packages`. */
export function clientsIn(packages: Iterable<string>): ClientLibrary[] {
  const found = new Set(packages);
  return CLIENT_LIBRARIES.filter((c) => found.has(c));
}

/**
 * Why `name`'s module breaks the rule "load only what you call" when importing it: each client
 * library its import loads although the function never calls it. Empty when it keeps the rule.
 */
export function strayClients(name: string, graph: ImportGraph): ClientLibrary[] {
  const calls = new Set(FUNCTION_CLIENTS[name]!.clients);
  return clientsIn(graph.loadedBy().packages).filter((c) => !calls.has(c));
}

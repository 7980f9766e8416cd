// A Promise with its resolve() at hand (Node 20 has no Promise.withResolvers()).

export interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

export function deferred(): Deferred {
  let resolve!: () => void;
  return { promise: new Promise((r) => (resolve = r)), resolve };
}

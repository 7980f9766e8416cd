// Functions the bench's child processes run. They cross processes by module URL and export name,
// so each is exported here; compiled with the rest of bench/ to plain JS for a --lib dist run.

/** process_start's target: Python's `noop(*_)`. */
export function noop(..._args: unknown[]): void {}

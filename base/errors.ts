/** Bad input from the user: one line on stderr, exit 2. */
export class UsageError extends Error {}

/** A target that could not answer (did not start, broke, refused an operation): one line, exit 3. */
export class TargetError extends Error {}

export const EXIT = { ok: 0, failure: 1, usage: 2, target: 3, internal: 4, interrupted: 130 } as const;

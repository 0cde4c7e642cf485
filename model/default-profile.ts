// The profile used where none is named. A module of its own so that the CLI's command table
// (cli/spec.ts) can show it without loading every profile.
export const DEFAULT_PROFILE = 'linux-6.12';

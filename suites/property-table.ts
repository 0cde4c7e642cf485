// The README's property table, rendered from the registry by `npm run docs`: each property's id,
// its invariant sentence, where it is expected to fail (asked of the property itself, on the
// reference target of every profile) and the target groups it needs.
import { markdownTable } from '../base/markdown.js';
import { MODEL_DEPS } from '../harness/model-deps.js';
import type { PropertyDef } from '../harness/property.js';
import { PROFILES } from '../model/profiles.js';
import { referenceTarget } from '../targets/reference.js';

/** `**Expected failure on `linux-4.20`**: reason`, or nothing where the property should hold everywhere. */
function expectedFailure(p: PropertyDef): string {
  const hits = PROFILES.flatMap((profile) => {
    const reason = p.expectedFailure?.({ target: referenceTarget({ profile: profile.name }), model: MODEL_DEPS });
    return reason ? [{ profile: profile.name, reason }] : [];
  });
  if (!hits.length) return '';
  const where = hits.length === PROFILES.length ? 'everywhere' : `on ${hits.map((h) => `\`${h.profile}\``).join(', ')}`;
  const reasons = [...new Set(hits.map((h) => h.reason))];
  return `**Expected failure ${where}**: ${reasons.join('; ')}`;
}

export function propertyTableMarkdown(properties: readonly PropertyDef[]): string {
  const rows = properties.map((p) => {
    const expected = expectedFailure(p);
    return [`\`${p.id}\``, expected ? `${p.invariant}. ${expected}` : p.invariant, p.groups.join(', ') || '(tool)'];
  });
  return markdownTable(['id', 'invariant', 'target groups'], rows);
}

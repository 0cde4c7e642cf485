// Does a captured blob look like what `golden add` is told it is? Each warning is one line: a page's
// size and revision id against the producer profile's layout, a nested-state blob's header (its
// size field, flags, format) and the revision of each vmcs12 page it carries. A warning does not
// refuse the blob (a corrupt capture can be a useful golden blob), it asks for a second look.
import { EVMCS, hdrRevision, hdrShadow, VMCS12 } from '../model/catalog/by-name.js';
import type { Layout } from '../model/layout.js';
import { decodeBlob } from '../model/nested/blob.js';
import type { Profile } from '../model/profiles.js';
import type { GoldenKind } from './manifest.js';

const hex32 = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

function pageWarnings(what: string, layout: Layout, page: Uint8Array, shadowExpected: boolean | null): string[] {
  const out: string[] = [];
  if (page.length !== layout.size) out.push(`${what} is ${page.length} bytes; a ${layout.name} ${layout.structure} page is ${layout.size}`);
  const [s, id] = layout.structure === 'vmcs12' ? [VMCS12, 'hdr'] : [EVMCS, 'revision_id'];
  if (!s.fits(page, id) || layout.revision === null) return out;
  const raw = s.read(page, id);
  const rev = layout.structure === 'vmcs12' ? hdrRevision(raw) : Number(raw);
  if (rev !== layout.revision) out.push(`${what} has revision id ${hex32(rev)}, not ${layout.name}'s ${hex32(layout.revision)}${page.every((x) => x === 0) ? ' (the page is all zero)' : ''}`);
  if (layout.structure === 'vmcs12' && shadowExpected !== null && hdrShadow(raw) !== shadowExpected)
    out.push(`${what} ${shadowExpected ? 'lacks' : 'has'} the shadow-VMCS bit (bit 31 of the revision id)`);
  return out;
}

export function plausibilityWarnings(kind: GoldenKind, profile: Profile, bytes: Uint8Array): string[] {
  if (kind === 'vmcs12') return pageWarnings('the vmcs12 page', profile.vmcs12, bytes, null);
  if (kind === 'evmcs') {
    if (!profile.evmcs) return [`${profile.name} has no eVMCS layout: the page cannot be decoded as ${profile.name} wrote it`];
    return pageWarnings('the eVMCS page', profile.evmcs.layout, bytes, null);
  }
  const d = decodeBlob(bytes);
  if (!d.ok) return [`not a nested-state blob: ${d.error}`];
  const out = [...d.blob.notes];
  // only pages with something in them: GET leaves the pages it does not use zero
  const used = (p: Uint8Array | null): p is Uint8Array => p !== null && p.some((x) => x !== 0);
  const notSize = (w: string) => !w.includes(' bytes;'); // truncation is among the notes already
  if (used(d.blob.vmcs12)) out.push(...pageWarnings('its vmcs12', profile.vmcs12, d.blob.vmcs12, false).filter(notSize));
  if (used(d.blob.shadowVmcs12)) out.push(...pageWarnings('its shadow vmcs12', profile.vmcs12, d.blob.shadowVmcs12, true).filter(notSize));
  return out;
}

// Reading junit.xml in tests: the root's counts, each testcase's outcome, and a well-formedness
// check (balanced elements, quoted attributes, escaped text, only characters XML 1.0 allows).
const ENTITY = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;
const FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function wellFormed(xml: string): string[] {
  const problems: string[] = [];
  if (FORBIDDEN.test(xml)) problems.push('a character XML 1.0 does not allow');
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  let roots = 0;
  for (const token of body.match(/<[^>]*>|[^<]+/g) ?? []) {
    if (!token.startsWith('<')) {
      if (token.replace(ENTITY, '').includes('&')) problems.push(`unescaped & in text: ${token.slice(0, 60)}`);
      if (token.includes(']]>')) problems.push('"]]>" in text');
      if (!stack.length && token.trim()) problems.push(`text outside the root: ${token.slice(0, 60)}`);
      continue;
    }
    const m = /^<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*(\/?)>$/.exec(token);
    if (!m) {
      problems.push(`not a tag: ${token.slice(0, 60)}`);
      continue;
    }
    const [, close, name, attrs, empty] = m;
    if (attrs!.replace(ENTITY, '').includes('&')) problems.push(`unescaped & in attributes of <${name}>`);
    if (close) {
      if (stack.pop() !== name) problems.push(`</${name}> closes nothing open`);
    } else if (!empty) {
      if (!stack.length) roots++;
      stack.push(name!);
    } else if (!stack.length) roots++;
  }
  if (stack.length) problems.push(`unclosed: ${stack.join(', ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}

const attr = (tag: string, name: string): string | undefined => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];

export function junitCounts(xml: string): { tests: number; failures: number; errors: number; skipped: number } {
  const root = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? '';
  return { tests: Number(attr(root, 'tests')), failures: Number(attr(root, 'failures')), errors: Number(attr(root, 'errors')), skipped: Number(attr(root, 'skipped')) };
}

export interface JunitCase {
  name: string;
  classname: string;
  outcome: 'pass' | 'failure' | 'error' | 'skipped';
}

export function junitTestcases(xml: string): JunitCase[] {
  return [...xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)].map((m) => {
    const body = m[3] ?? '';
    const outcome = /<failure\b/.test(body) ? 'failure' : /<error\b/.test(body) ? 'error' : /<skipped\b/.test(body) ? 'skipped' : 'pass';
    const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    return { name: unescape(attr(m[1]!, 'name') ?? ''), classname: unescape(attr(m[1]!, 'classname') ?? ''), outcome };
  });
}

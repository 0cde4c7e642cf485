// A Markdown table (GitHub's): the docs render theirs with it (`npm run docs`).

/** A cell's text: a `|` would end the cell, even inside backticks. */
const cell = (text: string) => text.replace(/\|/g, '\\|');

export function markdownTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (r: readonly string[]) => `| ${r.map(cell).join(' | ')} |`;
  return [line(head), `|${head.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

#!/usr/bin/env node
// Checks that every ```ts code block in README.md is an excerpt of a runnable example, so the
// README's code is code that actually runs. By default a block is checked against
// examples/quickstart.ts (which CI runs); a block directly preceded by a line
// `<!-- excerpt of examples/NAME.ts -->` is checked against that file instead.
// Lines are compared after trimming; blank lines and lines that are only `// ...` are ignored;
// a block's lines must appear in the file in the same order.
import { readFileSync } from 'node:fs';

const norm = (s) => s.split('\n').map((l) => l.trim()).filter((l) => l && l !== '// ...' && l !== '...');
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const sources = new Map();
const sourceOf = (file) => {
  if (!sources.has(file)) sources.set(file, norm(readFileSync(new URL(`../${file}`, import.meta.url), 'utf8')));
  return sources.get(file);
};
const blocks = [...readme.matchAll(/(?:<!-- excerpt of (\S+) -->\n)?```ts\n([\s\S]*?)```/g)].map((m) => ({ file: m[1] ?? 'examples/quickstart.ts', code: m[2] }));
let bad = 0;
blocks.forEach(({ file, code }, b) => {
  const source = sourceOf(file);
  let at = 0;
  for (const line of norm(code)) {
    const i = source.indexOf(line, at);
    if (i < 0) {
      console.error(`README.md ts block ${b + 1}: line not found (in order) in ${file}:\n  ${line}`);
      bad++;
      return;
    }
    at = i + 1;
  }
});
if (!blocks.length) {
  console.error('README.md has no ```ts blocks');
  bad++;
}
console.log(`readme: ${blocks.length} ts blocks checked against ${[...sources.keys()].join(', ')}${bad ? `, ${bad} mismatched` : ', all found'}`);
process.exit(bad ? 1 : 0);

#!/usr/bin/env node
// Checks that every ```ts code block in README.md is an excerpt of examples/quickstart.ts
// (which CI runs), so the README's code is code that actually runs.
// Lines are compared after trimming; blank lines and lines that are only `// ...` are ignored;
// a block's lines must appear in the file in the same order.
import { readFileSync } from 'node:fs';

const norm = (s) => s.split('\n').map((l) => l.trim()).filter((l) => l && l !== '// ...' && l !== '...');
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const source = norm(readFileSync(new URL('../examples/quickstart.ts', import.meta.url), 'utf8'));
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
let bad = 0;
blocks.forEach((block, b) => {
  let at = 0;
  for (const line of norm(block)) {
    const i = source.indexOf(line, at);
    if (i < 0) {
      console.error(`README.md ts block ${b + 1}: line not found (in order) in examples/quickstart.ts:\n  ${line}`);
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
console.log(`readme: ${blocks.length} ts blocks checked against examples/quickstart.ts${bad ? `, ${bad} mismatched` : ', all found'}`);
process.exit(bad ? 1 : 0);

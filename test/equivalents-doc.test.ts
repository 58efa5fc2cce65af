// docs/architecture.md lists every mutant marked equivalent in the sources `npm run mutate` measures; this
// fails when the list is stale or a mark does not say why.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DOC, findEquivalents, withEquivalents } from '../scripts/equivalents-doc.ts';

test('docs/architecture.md lists every mutant marked equivalent (run npm run docs:equivalents)', () => {
  const page = readFileSync(DOC, 'utf8');
  assert.equal(withEquivalents(page), page, 'stale: run npm run docs:equivalents');
});

test('every disable mark names its mutators, says "equivalent" and why, and precedes a line of code', () => {
  const marks = findEquivalents();
  assert.ok(marks.length > 0);
  const known =
    /^(ArithmeticOperator|ArrayDeclaration|ArrowFunction|AssignmentOperator|BlockStatement|BooleanLiteral|ConditionalExpression|EqualityOperator|LogicalOperator|MethodExpression|ObjectLiteral|OptionalChaining|Regex|StringLiteral|UnaryOperator|UpdateOperator)$/;
  for (const m of marks) {
    const where = `${m.file}:${m.line}`;
    for (const mutator of m.mutators) assert.match(mutator, known, `${where}: a mutator Stryker has`);
    assert.match(m.why, /^equivalent\b/, `${where}: says it is equivalent`);
    assert.ok(m.why.replace(/^equivalent\b\s*(\([^)]*\))?\s*:?\s*/, '').length >= 20, `${where}: says why`);
    assert.ok(m.code.length > 0 && !m.code.startsWith('//'), `${where}: applies to a line of code`);
  }
});

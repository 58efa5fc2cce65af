// docs/configuration.md's settings table is generated from src/config/settings.ts; this fails when it is stale.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DOC, renderSettingsTable, withSettingsTable } from '../scripts/config-doc.ts';
import { SETTING_LIST } from '../src/config/settings.ts';

test('docs/configuration.md holds the current settings table (run npm run docs:config)', () => {
  const page = readFileSync(DOC, 'utf8');
  assert.equal(withSettingsTable(page), page, 'stale: run npm run docs:config');
});

test('the table has a row for every setting, each with what is allowed and what it means', () => {
  const rows = renderSettingsTable().split('\n').slice(2);
  assert.equal(rows.length, SETTING_LIST.length);
  for (const [id, s] of SETTING_LIST) {
    assert.ok(s.allowed.length > 0 && s.meaning.length > 0, id);
    assert.ok(s.env !== undefined || s.toml !== undefined, `${id} can be set somehow`);
  }
});

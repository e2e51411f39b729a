// 统计考核 in a real browser (issue 22): the district's grade and ranking,
// drill-down from a figure to the orders behind it, the trend charts, and
// the administrator changing the assessment scheme through its form.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { start, login, shots } from './common.mjs';

let app;
before(async () => { app = await start(); });
after(async () => { await app?.stop(); });

const desk = { viewport: { width: 1440, height: 900 } };

async function as(user, options, fn) {
  const ctx = await app.browser.newContext(options);
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await login(app.base, page, user);
  try { await fn(page); } finally { await ctx.close(); }
  assert.deepEqual(errors, [], 'no console errors');
}

test('the duty chief ranks subdistricts, drills into a figure and sees the trend', async () => {
  await as('zhongxin', desk, async (page) => {
    await page.goto(app.base + '/stats?period=year&sort=score');
    assert.equal(await page.locator('table.stats-table:not(.units-table) tbody tr:not(.total)').count(), 12);
    assert.match(await page.locator('.grade-card').innerText(), /考核等级\s*综合得分 \d+\.\d/);
    assert.equal(await page.locator('svg.trend').count(), 2, 'two trend charts');
    await page.screenshot({ path: join(shots, 'stats-district-year.png'), fullPage: true });
    // The first subdistrict's 办结数 (its fourth count), then the orders behind it.
    const row = page.locator('table.stats-table:not(.units-table) tbody tr').first();
    const name = await row.locator('td').nth(1).innerText();
    const cell = row.locator('td a', { hasText: /^\d+$/ }).nth(3);
    const figure = Number(await cell.innerText());
    await Promise.all([page.waitForURL(/\/stats\/orders/), cell.click()]);
    assert.match(await page.locator('h1').innerText(), new RegExp(name));
    assert.match(await page.locator('section.card p').first().innerText(), new RegExp(`共${figure}件`));
    assert.equal(await page.locator('table tbody tr').count(), Math.min(figure, 50));
    await page.screenshot({ path: join(shots, 'stats-drill-down.png') });
  });
});

test('the administrator changes the scheme; a wrong sum is refused with a message', async () => {
  await as('admin', desk, async (page) => {
    await page.goto(app.base + '/admin/assessment');
    await page.fill('#w-close_rate', '50');
    await page.click('button[type=submit]');
    await page.locator('#scheme-result .alert').waitFor();
    assert.match(await page.locator('#scheme-result').innerText(), /权重之和须为 100/);
    await page.fill('#w-on_time_close', '10');
    await page.fill('#g0', '优秀'); await page.fill('#m0', '95');
    await page.fill('#g1', '良好'); await page.fill('#m1', '85');
    await page.fill('#g2', '一般'); await page.fill('#m2', '60');
    await page.fill('#g3', '较差'); await page.fill('#m3', '0');
    await page.fill('#g4', ''); await page.fill('#m4', '');
    await Promise.all([page.waitForURL(/saved=1/), page.click('button[type=submit]')]);
    assert.match(await page.locator('[role=status]').innerText(), /已保存/);
    await page.screenshot({ path: join(shots, 'assessment-scheme.png'), fullPage: true });
    await page.goto(app.base + '/stats?period=year');
    assert.match(await page.locator('.definitions').innerText(), /结案率50%/);
    assert.match(await page.locator('.grade-card b').innerText(), /^(优秀|良好|一般|较差)$/);
  });
});

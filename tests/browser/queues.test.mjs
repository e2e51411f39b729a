// The staff queues and the dispatch form (issue 18) in a real browser: the
// most pressing orders first, filters, numbered pages, the xlsx export, and
// a dispatch form that offers only the units of the order's place, grouped
// and searchable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, login, shots } from './common.mjs';

let app;
before(async () => { app = await start(); });
after(async () => { await app?.stop(); });

const desk = { viewport: { width: 1440, height: 900 }, acceptDownloads: true };
const phone = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true };

async function as(user, options, fn) {
  const ctx = await app.browser.newContext(options);
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await login(app.base, page, user);
  try { await fn(page); } finally { await ctx.close(); }
  assert.deepEqual(errors, [], 'no script errors');
}

test('the district duty desk sees urgent orders first, filters, pages and exports its queue', async () => {
  await as('zhongxin', desk, async (page) => {
    await page.goto(app.base + '/orders?queue=handling');
    // Overdue rows (red) first, then urgent ones, each with its waiting time and named deadline.
    const rows = await page.locator('table.queue-table tbody tr').evaluateAll((trs) => trs.map((tr) => ({
      red: tr.classList.contains('w-red'), urgent: tr.classList.contains('urgent'),
      waited: tr.querySelector('td.waited').textContent.trim(), due: tr.querySelector('.due')?.textContent.trim() ?? '',
    })));
    assert.ok(rows.length > 0);
    const rank = (r) => (r.red ? 0 : r.urgent ? 1 : 2);
    for (let i = 1; i < rows.length; i++) {
      assert.ok(rank(rows[i - 1]) <= rank(rows[i]) || rows[i].red, `row ${i} is not ahead of a more pressing one`);
    }
    const unsaid = rows.filter((r) => !/\d+(分钟|小时)/.test(r.waited));
    assert.deepEqual(unsaid, [], 'every row says how long it has waited');
    assert.ok(rows.every((r) => r.due.startsWith('办结时限')), 'while handling the deadline is the 办结时限');
    await page.screenshot({ path: join(shots, 'desk-queue-handling.png'), fullPage: true });

    // The urgency filter narrows the queue and keeps itself in the pager's links.
    const total = async () => Number((await page.locator('h1 small').innerText()).match(/共(\d+)件/)[1]);
    const all = await total();
    await page.selectOption('select[name=urgency]', 'urgent');
    await Promise.all([page.waitForURL(/urgency=urgent/), page.click('.queue-filters button[type=submit]')]);
    const urgent = await total();
    assert.ok(urgent > 0 && urgent < all, `${urgent} of ${all}`);
    assert.equal(await page.locator('table.queue-table tbody tr:not(.urgent)').count(), 0);

    // Numbered pages with the total.
    await page.goto(app.base + '/orders?queue=all');
    assert.match(await page.locator('nav.pager').innerText(), /共\d+件 · 共\d+页/);
    await Promise.all([page.waitForURL(/page=3/), page.locator('nav.pager a', { hasText: /^3$/ }).click()]);
    assert.equal(await page.locator('nav.pager [aria-current=page]').innerText(), '3');

    // The export of the filtered queue is a workbook.
    await page.goto(app.base + '/orders?queue=handling&urgency=urgent');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a[data-export]')]);
    assert.match(download.suggestedFilename(), /\.xlsx$/);
    const bytes = readFileSync(await download.path());
    assert.equal(bytes.subarray(0, 2).toString(), 'PK', 'an xlsx is a zip file');
  });
});

test('the district dispatch form offers only the units of the order\'s place, grouped and searchable', async () => {
  await as('zhongxin', desk, async (page) => {
    await page.goto(app.base + '/orders?queue=pending_dispatch');
    await Promise.all([page.waitForURL(/\/orders\/\d+$/),
      page.locator('table.queue-table tbody tr a[href^="/orders/"]').first().click()]);
    await page.click('summary[data-action=dispatch]');
    const form = page.locator('details:has(summary[data-action=dispatch]) form');
    const lead = form.locator('select[name=lead_unit]');
    const groups = await lead.locator('optgroup').evaluateAll((gs) => gs.map((g) => g.label));
    assert.deepEqual(groups.filter((g) => g !== '网格'), ['职能部门', '属地']);
    // 属地: the district's centre and those on the way down to this order's place, not every subdistrict's.
    const centres = await lead.locator('optgroup[label=属地] option').allInnerTexts();
    assert.ok(centres.length <= 3, centres.join(','));
    // Nothing is chosen for the dispatcher unless the catalogue suggests it.
    const chosen = await lead.evaluate((s) => s.value);
    const basis = await form.locator('.suggestion-basis').innerText();
    if (!chosen) assert.equal(await lead.locator('option:checked').innerText(), '请选择主办单位');
    else assert.ok(basis.length > 0);
    // One search box narrows both lists.
    await form.locator('input[data-unit-search]').fill('民政');
    const visible = await lead.locator('optgroup option').evaluateAll((os) => os.filter((o) => !o.hidden && !o.selected).map((o) => o.textContent));
    assert.deepEqual(visible, ['区民政局']);
    const assisting = await form.locator('select[name=assisting] option').evaluateAll((os) => os.filter((o) => !o.hidden && !o.selected).map((o) => o.textContent));
    assert.deepEqual(assisting, ['区民政局']);
    await form.locator('select[name=assisting]').selectOption({ label: '区民政局' });
    assert.match(await form.locator('[data-assist-chosen]').innerText(), /区民政局/);
    await page.screenshot({ path: join(shots, 'desk-dispatch-form.png'), fullPage: true });
  });
});

test('the queue reads on a phone', async () => {
  await as('jd140107002', phone, async (page) => {
    await page.goto(app.base + '/orders?queue=pending_accept');
    assert.ok(await page.locator('nav.queues').first().isVisible());
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360 + 1, `no sideways scrolling of the page (${width})`);
    await page.screenshot({ path: join(shots, 'phone-queue.png'), fullPage: true });
  });
});

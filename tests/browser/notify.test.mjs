// Notifications in a real browser: the grid worker has the field app open on
// a phone and the console on a desk; the community dispatches an order to
// the worker's grid in another session, and both of the worker's bells count
// one more without a reload. The inbox lists the notice, opening it marks it
// read and shows the order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { start, login } from './common.mjs';

let app;
before(async () => { app = await start(); });
after(async () => { await app?.stop(); });

const shots = '/tmp/shots-notify';
mkdirSync(shots, { recursive: true });
const phone = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true };
const desk = { viewport: { width: 1440, height: 900 } };
const worker = 'wg140107002001001';
const community = 'sq140107002001';

async function session(user, options) {
  const ctx = await app.browser.newContext(options);
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  if (user) await login(app.base, page, user);
  return { ctx, page, errors };
}

/// The bell's unread count once the live stream has set it.
async function bell(page) {
  const n = page.locator('.bell [data-unread]');
  await n.waitFor({ state: 'attached', timeout: 15000 });
  return Number(await n.getAttribute('data-unread'));
}

/// Submits an action form (htmx) and waits for the page to reload.
async function act(page, action, fill) {
  const summary = page.locator(`summary[data-action=${action}]`);
  if (await summary.count()) {
    await summary.click();
    const form = page.locator(`details:has(summary[data-action=${action}]) form`);
    if (fill) await fill(form);
    await Promise.all([page.waitForEvent('load'), form.locator('button[type=submit]').click()]);
  } else {
    await Promise.all([page.waitForEvent('load'), page.click(`button[data-action=${action}]`)]);
  }
  await page.waitForLoadState('load');
}

test('a dispatch in one session rings the bell in another without a reload', async () => {
  // A resident reports a broken street lamp in 黑龙潭社区.
  const resident = await session(null, phone);
  await resident.page.goto(app.base + '/portal/report');
  await resident.page.selectOption('select[name=category_code]', '0303');
  await resident.page.fill('input[name=title]', '黑龙潭社区5号楼前路灯不亮');
  await resident.page.fill('textarea[name=description]', '5号楼前路灯三天不亮。');
  await resident.page.selectOption('select[name=node_id]', { label: '黑龙潭社区' });
  await resident.page.fill('input[name=address]', '黑龙潭社区5号楼前');
  await Promise.all([resident.page.waitForURL(/\/portal\/track\//), resident.page.click('button[type=submit]')]);
  const code = (await resident.page.locator('.bigcode').innerText()).trim();
  await resident.ctx.close();

  // The worker's field app and console are open; each page load is marked.
  const field = await session(worker, phone);
  await field.page.goto(app.base + '/m/tasks');
  const fieldBefore = await bell(field.page);
  await field.page.evaluate(() => { window.notReloaded = true; });
  const consolePage = await field.ctx.newPage();
  await consolePage.setViewportSize(desk.viewport);
  await consolePage.goto(app.base + '/');
  const consoleBefore = await bell(consolePage);
  assert.equal(consoleBefore, fieldBefore, 'one inbox, one count');
  await consolePage.evaluate(() => { window.notReloaded = true; });
  await field.page.screenshot({ path: join(shots, 'phone-bell-before.png') });

  // The community accepts and dispatches it to the worker's grid.
  // The district centre's shift lead finds overdue alerts at first start.
  const lead = await session('zhongxin', desk);
  await lead.page.goto(app.base + '/inbox');
  assert.ok(await bell(lead.page) > 0, 'the demo district centre starts with unread notices');
  assert.ok(await lead.page.locator('.notices .inbox-item.urgent').count() > 0, 'overdue alerts among them');
  await lead.page.screenshot({ path: join(shots, 'desk-inbox-demo.png'), fullPage: true });
  await lead.ctx.close();
  assert.deepEqual(lead.errors, []);

  const centre = await session(community, desk);
  await centre.page.goto(app.base + '/orders?queue=pending_accept&q=' + code);
  await Promise.all([centre.page.waitForURL(/\/orders\/\d+$/), centre.page.click(`a:has-text("${code}")`)]);
  await act(centre.page, 'accept');
  await act(centre.page, 'dispatch', async (form) => {
    await form.locator('select[name=lead_unit]').selectOption({ label: '黑龙潭社区第一网格' });
    await form.locator('input[name=override_reason]').fill('路灯在小区内，由网格员联系物业维修');
  });
  assert.match(await centre.page.locator('#order-title').innerText(), /待签收/);

  // Both of the worker's bells count one more, without a reload.
  for (const page of [field.page, consolePage]) {
    await page.waitForFunction((n) => Number(document.querySelector('.bell [data-unread]')?.dataset.unread) === n,
      fieldBefore + 1, { timeout: 15000 });
    assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');
  }
  await field.page.screenshot({ path: join(shots, 'phone-bell-after.png') });
  await consolePage.screenshot({ path: join(shots, 'desk-bell-after.png') });

  // The console's inbox lists it first and unread, in words without the
  // reporter or the address.
  await consolePage.goto(app.base + '/inbox');
  const first = consolePage.locator('.notices .inbox-item').first();
  const text = await first.innerText();
  assert.match(text, new RegExp(code));
  assert.match(text, /路灯不亮/);
  assert.match(text, /黑龙潭社区/);
  assert.doesNotMatch(text, /5号楼/);
  assert.ok(await first.evaluate((li) => li.classList.contains('unread')));
  await consolePage.screenshot({ path: join(shots, 'desk-inbox.png'), fullPage: true });

  // On the phone, mark all read: the bell empties everywhere.
  await field.page.goto(app.base + '/m/inbox');
  assert.ok(await field.page.locator('.notices .inbox-item.unread').count() > 0);
  await field.page.screenshot({ path: join(shots, 'phone-inbox.png'), fullPage: true });
  await Promise.all([field.page.waitForURL(/\/m\/inbox/), field.page.click('button:has-text("全部标为已读")')]);
  await field.page.waitForFunction(() => document.querySelector('.bell [data-unread]')?.dataset.unread === '0', null, { timeout: 15000 });
  assert.equal(await field.page.locator('.bell .bell-n').isVisible(), false, 'no count shown at zero');
  await field.page.screenshot({ path: join(shots, 'phone-inbox-read.png'), fullPage: true });
  await consolePage.waitForFunction(() => document.querySelector('.bell [data-unread]')?.dataset.unread === '0', null, { timeout: 15000 });

  // Opening the notice shows the order.
  await Promise.all([consolePage.waitForURL(/\/orders\/\d+$/), first.locator('a.notice-body').click()]);
  assert.match(await consolePage.locator('#order-title').innerText(), /待签收/);

  for (const s of [field, centre]) {
    await s.ctx.close();
    assert.deepEqual(s.errors, [], 'no script or console errors');
  }
});

// The closed loop in a real browser: a resident reports on the portal, the
// community accepts and dispatches, the grid worker signs and reports back
// on a phone, the community verifies, and the resident rates the result.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { start, login, shots } from './common.mjs';

let app;
before(async () => { app = await start(); });
after(async () => { await app?.stop(); });

const phone = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true };
const desk = { viewport: { width: 1366, height: 800 } };

async function as(user, options, fn) {
  const ctx = await app.browser.newContext(options);
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  if (user) await login(app.base, page, user);
  try { await fn(page); } finally { await ctx.close(); }
  assert.deepEqual(errors, [], 'no script errors');
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
}

test('a resident report goes round the whole loop in the browser', async () => {
  let code;
  await as(null, phone, async (page) => {
    await page.goto(app.base + '/portal/');
    await page.click('text=我要反映');
    await page.selectOption('select[name=category_code]', '0303');
    await page.fill('input[name=title]', '黑龙潭社区3号楼前路灯不亮');
    await page.fill('textarea[name=description]', '3号楼前两盏路灯一周不亮,晚上老人出行不安全。');
    await page.selectOption('select[name=node_id]', { label: '黑龙潭社区' });
    await page.fill('input[name=address]', '黑龙潭社区3号楼前');
    await page.screenshot({ path: join(shots, 'phone-portal-report.png'), fullPage: true });
    await Promise.all([page.waitForURL(/\/portal\/track\//), page.click('button[type=submit]')]);
    code = (await page.locator('.bigcode').innerText()).trim();
    assert.match(code, /^[2-9A-HJ-NP-Z]{12}$/);
    await page.screenshot({ path: join(shots, 'phone-portal-submitted.png') });
  });

  let orderUrl;
  await as('sq140107002001', desk, async (page) => {
    await page.goto(app.base + '/orders?queue=pending_accept&q=' + code);
    await page.click(`a:has-text("${code}")`);
    orderUrl = page.url();
    await act(page, 'accept');
    assert.match(await page.locator('#order-title').innerText(), /待派单/);
    await act(page, 'dispatch', async (form) => {
      await form.locator('select[name=lead_unit]').selectOption({ label: '黑龙潭社区第一网格' });
      await form.locator('input[name=override_reason]').fill('路灯在小区内,由网格员联系物业维修');
    });
    assert.match(await page.locator('#order-title').innerText(), /待签收/);
    await page.screenshot({ path: join(shots, 'desk-order.png'), fullPage: true });
  });

  await as('wg140107002001001', phone, async (page) => {
    await page.goto(app.base + '/m/tasks');
    await page.click('text=黑龙潭社区3号楼前路灯不亮');
    await act(page, 'sign');
    await act(page, 'report_back', (form) => form.locator('textarea[name=result]').fill('已联系物业更换两盏路灯,恢复照明'));
    assert.match(await page.locator('.mtop').innerText(), /待核查/);
    await page.screenshot({ path: join(shots, 'phone-m-order.png'), fullPage: true });
  });

  await as('sq140107002001', desk, async (page) => {
    await page.goto(orderUrl);
    await act(page, 'verify_pass');
    assert.match(await page.locator('#order-title').innerText(), /已办结待评价/);
  });

  await as(null, phone, async (page) => {
    await page.goto(app.base + '/portal/track?code=' + code.toLowerCase());
    await page.check('input[value=satisfied]');
    await Promise.all([page.waitForEvent('load'), page.click('text=提交评价')]);
    const card = await page.locator('#public-order').innerText();
    assert.match(card, /已完结/);
    assert.match(card, /已联系物业更换两盏路灯/, 'the result is shown to the resident');
    assert.doesNotMatch(card, /由网格员联系物业维修/, 'internal dispatch notes stay internal');
    await page.screenshot({ path: join(shots, 'phone-portal-track.png'), fullPage: true });
  });
});

test('the staff queue page shows queues with counts and deadlines', async () => {
  await as('zhongxin', desk, async (page) => {
    await page.goto(app.base + '/orders?queue=handling');
    const handling = await page.locator('.queue.active b').innerText();
    assert.ok(Number(handling) > 0, 'the demo has orders being handled');
    assert.ok(await page.locator('tbody tr').count() > 0);
    await page.screenshot({ path: join(shots, 'desk-orders.png') });
  });
});

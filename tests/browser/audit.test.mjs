// Browser test: the administrators' audit log page (系统管理 → 审计日志) on
// a desktop and a phone, against the real `fengqiao demo` server. A failed
// login and an unmasking (through the API) must show up, filterable, and
// the page must fit a phone screen. Screenshots go to ../../screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { start, shots } from './common.mjs';

let app, base, browser;

before(async () => {
  app = await start();
  ({ base, browser } = app);
  // Some history: a mistyped password, then an audited unmasking.
  const api = await fetch(base + '/api/v1/session', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'zhongxin', password: 'wrong' }),
  });
  assert.equal(api.status, 401);
  const { token } = await (await fetch(base + '/api/v1/session', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'Fengqiao@2026' }),
  })).json();
  const un = await fetch(base + '/api/v1/members/1/unmask', {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token },
    body: JSON.stringify({ reason: '网格员电话核实，回访居民投诉' }),
  });
  assert.equal(un.status, 200);
});

after(async () => { await app?.stop(); });

async function login(page, user) {
  await page.goto(base + '/login');
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', 'Fengqiao@2026');
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.click('button[type=submit]')]);
}

test('an administrator reviews the audit log on a desktop', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 800 }, locale: 'zh-CN' });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await login(page, 'admin');
  await page.click('nav.sidebar >> text=审计日志');
  await page.waitForSelector('table.audit');
  const text = await page.locator('table.audit').innerText();
  assert.match(text, /登录失败/);
  assert.match(text, /查看完整个人信息/);
  assert.match(text, /网格员电话核实/);
  await page.screenshot({ path: join(shots, 'desk-audit.png') });

  await page.selectOption('select[name=action]', 'member.unmask');
  await Promise.all([page.waitForURL(/action=member.unmask/), page.click('form.filters button[type=submit]')]);
  assert.equal(await page.locator('table.audit tbody tr').count(), 1);
  // People, objects and details by name: no raw ids or JSON.
  const row = await page.locator('table.audit tbody tr').innerText();
  assert.match(row, /系统管理员（admin）/);
  assert.match(row, /网格人员 \S+（\S+）/);
  assert.match(row, /字段：手机号码/);
  assert.doesNotMatch(row, /#\d|[{}"]/);
  const csv = await page.locator('a', { hasText: '导出CSV' }).getAttribute('href');
  assert.match(csv, /^\/admin\/audit\.csv\?action=member.unmask/);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('the audit log fits a phone screen', async () => {
  const ctx = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, locale: 'zh-CN' });
  const page = await ctx.newPage();
  await login(page, 'admin');
  await page.goto(base + '/admin/audit');
  await page.waitForSelector('table.audit');
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 360, `no sideways scrolling of the page (${width}px)`);
  await page.screenshot({ path: join(shots, 'phone-audit.png'), fullPage: true });
  await ctx.close();
});

test('the menu offers the audit log to administrators only', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 800 }, locale: 'zh-CN' });
  const page = await ctx.newPage();
  await login(page, 'sq140107002001');
  assert.equal(await page.locator('nav.sidebar >> text=审计日志').count(), 0);
  const r = await page.goto(base + '/admin/audit');
  assert.equal(r.status(), 403);
  await ctx.close();
});

test('the audit log of a fresh demo holds its year of work orders, by name', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'zh-CN' });
  const page = await ctx.newPage();
  await login(page, 'admin');
  await page.goto(base + '/admin/audit?object_type=order');
  const total = Number((await page.locator('h1 small').innerText()).replace(/\D/g, ''));
  assert.ok(total > 10000, `a year of orders is in the log (${total} entries)`);
  const text = await page.locator('table.audit tbody').innerText();
  assert.match(text, /工单 [0-9A-Z]{8,}（/, 'orders by tracking code and title');
  assert.match(text, /原状态：\S+/);
  assert.doesNotMatch(text, /工单 #|resident|[{}]/);
  await page.screenshot({ path: join(shots, 'desk-audit-orders.png') });
  await ctx.close();
});

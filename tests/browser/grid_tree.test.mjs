// Browser test: Debian's chromium driven by playwright-core, against the
// real `fengqiao demo` server. Logs in as the demo administrator, walks the
// grid tree down to one grid, and checks that its polygon is drawn and its
// members are listed; then checks the field page on a phone-sized screen.
// Screenshots of each screen are written to ../../screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { start, login as loginAt, shots } from './common.mjs';

let app, base, browser;
before(async () => { app = await start(); base = app.base; browser = app.browser; });
after(async () => { await app?.stop(); });
const login = (page, user) => loginAt(base, page, user);

test('administrator opens the grid tree and sees a grid drawn with its members', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 800 } });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  await login(page, 'admin');
  await page.screenshot({ path: join(shots, 'desk-home.png') });
  await page.click('nav.sidebar >> text=网格管理');
  await page.waitForSelector('.tree li.current');
  await page.click('.tree >> text=三桥街道');
  await page.waitForSelector('.tree li.current >> text=三桥街道');
  await page.click('.tree >> text=黑龙潭社区居委会');
  await page.waitForSelector('.tree li.current >> text=黑龙潭社区居委会');
  await page.click('.tree >> text=黑龙潭社区第一网格');
  await page.waitForSelector('#node-title >> text=黑龙潭社区第一网格');

  // The polygon: the map loaded features and Leaflet drew vector paths.
  await page.waitForSelector('#node-map[data-loaded]');
  const drawn = await page.locator('#node-map path.leaflet-interactive').count();
  assert.ok(drawn >= 1, `grid polygon drawn (${drawn} paths)`);
  assert.equal(await page.locator('#node-map').getAttribute('data-error'), null);
  // Members: the grid worker with the GB/T 31000 fields.
  const members = page.locator('#members tbody tr');
  assert.ok(await members.count() >= 1, 'members listed');
  assert.match(await members.first().innerText(), /网格/);
  assert.match(await page.locator('.facts').innerText(), /140107002001001/);
  await page.screenshot({ path: join(shots, 'desk-grid.png') });
  // The 公民身份号码 column shows the masked number only (first 6, last 4).
  const idNumber = (await members.first().locator('td.id-number').innerText()).trim();
  assert.match(idNumber, /^1401\d{2}\*{8}\d{3}[\dX]$/);
  await page.locator('#members').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, 'desk-grid-members.png') });

  await page.goto(base + '/map');
  await page.waitForSelector('#big-map[data-loaded]');
  assert.equal(await page.locator('#big-map').getAttribute('data-loaded'), '897');
  // The open orders of the district over the grids, as many dots as the API gives.
  await page.waitForSelector('#big-map[data-orders-loaded]');
  const api = await page.evaluate(() => fetch('/api/v1/orders/map').then((r) => r.json()));
  const shown = Number(await page.locator('#big-map').getAttribute('data-orders-loaded'));
  assert.ok(shown > 100, `open demo orders drawn (${shown})`);
  assert.equal(shown, api.features.length);
  assert.equal(await page.locator('.leaflet-events-pane path').count(), shown);
  assert.match(await page.locator('.fq-events').innerText(), new RegExp(`在办事件 ${shown} 件`));
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(shots, 'desk-map.png') });
  // A dot opens a popup that leads to its order.
  await page.locator('.leaflet-events-pane path').last().click({ force: true });
  const link = page.locator('.leaflet-popup a', { hasText: '查看工单' });
  await link.waitFor();
  const href = await link.getAttribute('href');
  assert.ok(api.features.some((f) => href === `/orders/${f.properties.id}`), href);
  // Unticking the legend hides the dots.
  await page.locator('.fq-events input').uncheck();
  assert.equal(await page.locator('.leaflet-events-pane path').count(), 0);
  await page.locator('.fq-events input').check();
  // Hiding the dots closed the popup: open it again and follow its link.
  await page.locator('.leaflet-events-pane path').last().click({ force: true });
  await link.waitFor();
  await Promise.all([page.waitForURL((u) => u.pathname === href), link.click()]);
  await page.waitForSelector('h1');
  assert.deepEqual(errors, [], 'no script errors (CSP included)');
  await ctx.close();
});

test('a grid worker sees their grid on a phone', async () => {
  const ctx = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  const page = await ctx.newPage();
  await login(page, 'wg140107002001001');
  await page.goto(base + '/m/');
  await page.waitForSelector('#m-map[data-loaded]');
  assert.match(await page.locator('.mtop').innerText(), /黑龙潭社区第一网格/);
  assert.ok(await page.locator('#m-map path.leaflet-interactive').count() >= 1);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 360, `no sideways scrolling (${width}px)`);
  await page.screenshot({ path: join(shots, 'phone-m-home.png') });
  await page.goto(base + '/tree');
  const treeWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(treeWidth <= 360, `console fits a phone (${treeWidth}px)`);
  await page.screenshot({ path: join(shots, 'phone-tree.png') });
  await ctx.close();
});

test('a resident finds their grid worker on the portal without logging in', async () => {
  const ctx = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true });
  const page = await ctx.newPage();
  await page.goto(base + '/portal/');
  await page.click('text=三桥街道');
  await page.click('text=黑龙潭社区居委会');
  await page.waitForSelector('#p-map[data-loaded]');
  assert.match(await page.locator('.pcard').first().innerText(), /网格员/);
  await page.screenshot({ path: join(shots, 'phone-portal-area.png') });
  await ctx.close();
});

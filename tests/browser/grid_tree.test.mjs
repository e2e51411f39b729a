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

function watch(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return errors;
}

async function openDetails(page, id) {
  await page.locator(`#${id} > summary`).click();
  await page.waitForSelector(`#${id}[open]`);
}

test('the district page draws its twelve subdistricts with consistent figures, and a building page draws', async () => {
  for (const viewport of [{ width: 1440, height: 900 }, { width: 360, height: 740 }]) {
    const ctx = await browser.newContext({ viewport });
    const page = await ctx.newPage();
    const errors = watch(page);
    const tag = viewport.width > 400 ? 'desk' : 'phone';
    await login(page, 'admin');
    await page.goto(base + '/tree');
    await page.waitForSelector('#node-map[data-loaded]');
    // The district itself and its twelve subdistricts, however large the tree beneath.
    assert.equal(await page.locator('#node-map').getAttribute('data-loaded'), '13');
    assert.equal(await page.locator('#node-map path.leaflet-interactive').count(), 13);
    const rows = page.locator('#children tbody tr');
    assert.equal(await rows.count(), 12);
    // Households and population per subdistrict, summed up the tree to the district's.
    let households = 0;
    for (const text of await rows.allInnerTexts()) {
      const cells = text.split('\t');
      assert.match(cells[3], /^\d+$/, text);
      assert.match(cells[4], /^\d+$/, text);
      assert.ok(Number(cells[3]) > 0 && Number(cells[4]) > Number(cells[3]), text);
      households += Number(cells[3]);
    }
    assert.match(await page.locator('.facts').innerText(), new RegExp(`户数\\s+${households} 户`));
    await page.screenshot({ path: join(shots, `${tag}-tree-district.png`), fullPage: true });

    // A grid: its total force includes the buildings' stewards, its own people are listed.
    await page.click('.tree >> text=三桥街道');
    await page.click('.tree >> text=黑龙潭社区居委会');
    await page.click('.tree >> text=黑龙潭社区第一网格');
    await page.waitForSelector('#node-title >> text=黑龙潭社区第一网格');
    const listed = await page.locator('#members tbody tr').count();
    assert.equal(await page.locator('#members-count').innerText(), `${listed} 人`);
    assert.match(await page.locator('#members thead').innerText(), /姓名/);
    assert.doesNotMatch(await page.locator('#members thead').innerText(), /名称/);
    assert.match(await page.locator('#members-total').innerText(), /^\d+ 人$/);
    assert.match(await page.locator('.facts').innerText(), /网格力量（含下级）/);

    // A building: a point on the map, no NaN, plausible floors and units.
    const building = page.locator('#children tbody tr a').first();
    const name = await building.innerText();
    await building.click();
    await page.waitForSelector(`#node-title >> text=${name}`);
    await page.waitForSelector('#node-map[data-loaded]');
    assert.equal(await page.locator('#node-map').getAttribute('data-error'), null);
    assert.ok(await page.locator('#node-map path.leaflet-interactive').count() >= 1, 'the building is drawn');
    const facts = await page.locator('.facts').innerText();
    const floors = Number(facts.match(/层数\s+(\d+) 层/)[1]);
    const units = Number(facts.match(/单元数\s+(\d+) 个单元/)[1]);
    const flats = Number(facts.match(/户数\s+(\d+) 户/)[1]);
    assert.ok((floors <= 7 && units >= 2 && units <= 3 && flats <= floors * units * 2) ||
      (floors >= 18 && floors <= 33 && flats <= floors * units * 4), facts);
    await page.screenshot({ path: join(shots, `${tag}-tree-building.png`), fullPage: true });

    // The map page names no configuration, and says in words there is no base map.
    await page.goto(base + '/map');
    await page.waitForSelector('#big-map[data-loaded]');
    const text = await page.locator('main, body').first().innerText();
    assert.doesNotMatch(text, /FENGQIAO|TILE_URL/);
    assert.match(await page.locator('#no-tiles').innerText(), /未配置底图/);
    assert.match(await page.locator('.fq-legend').first().innerText(), /户数/);
    if (tag === 'phone') {
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 360, `map page fits a phone (${width}px)`);
    }
    assert.deepEqual(errors, [], 'no script errors');
    await ctx.close();
  }
});

test('an administrator creates, edits, draws, staffs and retires a grid on the pages', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await ctx.newPage();
  const errors = watch(page);
  page.on('dialog', (d) => d.accept());
  await login(page, 'admin');
  await page.goto(base + '/tree');
  await page.click('.tree >> text=三桥街道');
  await page.click('.tree >> text=黑龙潭社区居委会');
  await page.waitForSelector('#node-title >> text=黑龙潭社区居委会');
  const community = page.url();

  // Create: the grid type must be chosen, nothing is pre-selected.
  await openDetails(page, 'node-create');
  const form = page.locator('#node-create form');
  assert.equal(await form.locator('select[name=grid_type]').inputValue(), '');
  await form.locator('input[name=name]').fill('黑龙潭社区试点网格');
  await form.locator('input[name=households]').fill('三百');
  await form.locator('select[name=grid_type]').selectOption('comprehensive');
  await form.locator('button[type=submit]').click();
  await page.waitForSelector('#create-result .alert');
  assert.match(await page.locator('#create-result').innerText(), /请填写整数/);
  assert.equal(await form.locator('input[name=households]').getAttribute('aria-invalid'), 'true');
  await form.locator('input[name=households]').fill('260');
  await Promise.all([page.waitForURL((u) => /^\/tree\/\d+$/.test(u.pathname) && u.href !== community), form.locator('button[type=submit]').click()]);
  await page.waitForSelector('#node-title >> text=黑龙潭社区试点网格');
  assert.match(await page.locator('.facts').innerText(), /260 户/);

  // Edit the name.
  await openDetails(page, 'node-edit');
  await page.locator('#node-edit input[name=name]').fill('黑龙潭社区试点网格（东）');
  await Promise.all([page.waitForURL((u) => u.search === '?saved=1'), page.locator('#node-edit button[type=submit]').click()]);
  await page.waitForSelector('#node-title >> text=黑龙潭社区试点网格（东）');
  assert.match(await page.locator('.notice').first().innerText(), /已保存/);

  // Draw its boundary away from the other grids and save it.
  await page.waitForSelector('#node-map[data-loaded]');
  assert.match(await page.locator('#polygon-result').innerText(), /尚未绘制边界/);
  for (let i = 0; i < 3; i++) {
    await page.locator('#node-map .leaflet-control-zoom-out').click();
    await page.waitForTimeout(350);
  }
  const box = await page.locator('#node-map').boundingBox();
  const draw = async (points) => {
    await page.locator('#node-map .leaflet-pm-icon-polygon').click();
    for (const [x, y] of points) {
      await page.mouse.click(box.x + x, box.y + y);
      await page.waitForTimeout(120);
    }
    await page.mouse.click(box.x + points[0][0], box.y + points[0][1]);
    await page.waitForTimeout(200);
  };
  await draw([[120, 25], [200, 25], [200, 85], [120, 85]]);
  assert.equal(await page.locator('#polygon-save').isDisabled(), false);
  await page.locator('#polygon-save').click();
  await page.waitForSelector('#node-map[data-saved]');
  assert.match(await page.locator('#polygon-result').innerText(), /边界已保存/);
  await page.screenshot({ path: join(shots, 'desk-tree-grid-drawn.png') });

  // A boundary over the neighbouring grids is refused, on the map and under it.
  const cx = box.width / 2, cy = box.height / 2;
  await draw([[cx - 40, cy - 30], [cx + 40, cy - 30], [cx + 40, cy + 30], [cx - 40, cy + 30]]);
  await page.locator('#polygon-save').click();
  await page.waitForSelector('#polygon-result .alert');
  assert.match(await page.locator('#polygon-result').innerText(), /与同社区的其他网格重叠/);
  assert.match(await page.locator('#node-map .fq-map-note.bad').innerText(), /重叠/);
  await page.screenshot({ path: join(shots, 'desk-tree-grid-overlap.png') });
  // What was saved stays: the first boundary.
  const id = page.url().match(/\/tree\/(\d+)/)[1];
  const saved = await page.evaluate((id) => fetch(`/api/v1/nodes/${id}`).then((r) => r.json()), id);
  assert.equal(saved.node.polygon.type, 'Polygon');

  // Add a member through the form with the GB/T 31000 fields.
  await page.reload();
  await openDetails(page, 'member-add');
  const m = page.locator('#member-add form');
  for (const sel of ['role', 'gender', 'ethnicity', 'political_status', 'education']) {
    assert.equal(await m.locator(`select[name=${sel}]`).inputValue(), '', `${sel} not pre-selected`);
  }
  await m.locator('select[name=role]').selectOption('grid_worker');
  await m.locator('input[name=name]').fill('郝文静');
  await m.locator('select[name=gender]').selectOption('2');
  await m.locator('select[name=ethnicity]').selectOption('01');
  await m.locator('select[name=political_status]').selectOption('13');
  await m.locator('select[name=education]').selectOption('30');
  await m.locator('input[name=birth_date]').fill('1988-06-15');
  await m.locator('input[name=mobile]').fill('1391234');
  await m.locator('input[name=public_phone]').fill('0351-5552468');
  await m.locator('button[type=submit]').click();
  await page.waitForSelector('#member-result .alert');
  assert.equal(await m.locator('input[name=mobile]').getAttribute('aria-invalid'), 'true');
  await page.screenshot({ path: join(shots, 'desk-tree-member-form.png'), fullPage: true });
  await m.locator('input[name=mobile]').fill('13912345678');
  await m.locator('button[type=submit]').click();
  await page.waitForSelector('#members tbody tr >> text=郝文静');
  const row = await page.locator('#members tbody tr', { hasText: '郝文静' }).innerText();
  assert.match(row, /139\*\*\*\*5678/);
  assert.doesNotMatch(row, /13912345678/);
  assert.match(row, /0351-5552468/);
  assert.equal(await page.locator('#members-count').innerText(), '1 人');

  // Retire (confirmed): back at the community, the grid gone from its list.
  await page.locator('#members tbody tr', { hasText: '郝文静' }).locator('button', { hasText: '离任' }).click();
  await page.waitForSelector('#members >> text=暂无在岗人员');
  await Promise.all([page.waitForURL(community), page.locator('#node-retire').click()]);
  assert.equal(await page.locator('#children >> text=黑龙潭社区试点网格（东）').count(), 0);
  // The refused boundary's 422 is the one resource error the browser logs.
  const refused = errors.filter((e) => /status of 422/.test(e));
  assert.equal(refused.length, 1, errors.join('\n'));
  assert.deepEqual(errors.filter((e) => !/status of 422/.test(e)), [], 'no script errors');
  await ctx.close();
});

test('the tree administration fits a phone', async () => {
  const ctx = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  const page = await ctx.newPage();
  const errors = watch(page);
  await login(page, 'admin');
  await page.goto(base + '/tree');
  await page.click('.tree >> text=三桥街道');
  await page.click('.tree >> text=黑龙潭社区居委会');
  await page.click('.tree >> text=黑龙潭社区第一网格');
  await page.waitForSelector('#node-map[data-loaded]');
  await openDetails(page, 'node-edit');
  await openDetails(page, 'member-add');
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 360, `tree page fits a phone (${width}px)`);
  await page.screenshot({ path: join(shots, 'phone-tree-admin.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no script errors');
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

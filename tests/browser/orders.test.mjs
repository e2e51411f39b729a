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

/// A photo as a phone would take it, drawn on a canvas in the page: a
/// street at dusk with a lamp post (dark when `lit` is false).
async function photo(page, lit) {
  const url = await page.evaluate((lit) => {
    const c = document.createElement('canvas');
    c.width = 800; c.height = 600;
    const g = c.getContext('2d');
    const sky = g.createLinearGradient(0, 0, 0, 600);
    sky.addColorStop(0, lit ? '#1a237e' : '#263238'); sky.addColorStop(1, lit ? '#5c6bc0' : '#455a64');
    g.fillStyle = sky; g.fillRect(0, 0, 800, 600);
    g.fillStyle = '#6d4c41'; g.fillRect(0, 380, 800, 220);
    for (let i = 0; i < 5; i++) { g.fillStyle = '#8d6e63'; g.fillRect(60 + i * 150, 200 + (i % 2) * 40, 110, 180); }
    g.fillStyle = '#37474f'; g.fillRect(520, 120, 14, 300); g.fillRect(470, 120, 64, 10);
    g.fillStyle = lit ? '#ffeb3b' : '#90a4ae';
    g.beginPath(); g.arc(478, 138, 16, 0, Math.PI * 2); g.fill();
    if (lit) { g.fillStyle = 'rgba(255,235,59,.25)'; g.beginPath(); g.moveTo(478, 140); g.lineTo(380, 420); g.lineTo(580, 420); g.fill(); }
    return c.toDataURL('image/jpeg', 0.9);
  }, lit);
  return Buffer.from(url.split(',')[1], 'base64');
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
    await page.setInputFiles('input[name=photo]', { name: '路灯.jpg', mimeType: 'image/jpeg', buffer: await photo(page, false) });
    assert.equal(await page.locator('.previews img').count(), 1, 'the chosen photo is previewed');
    await page.screenshot({ path: join(shots, 'phone-portal-report.png'), fullPage: true });
    await Promise.all([page.waitForURL(/\/portal\/track\//), page.click('button[type=submit]')]);
    code = (await page.locator('.bigcode').innerText()).trim();
    assert.match(code, /^[2-9A-HJ-NP-Z]{12}$/);
    const own = page.locator('#public-order .files img');
    assert.equal(await own.count(), 1, 'the reporter sees their photo on the report');
    assert.ok(await own.evaluate((img) => img.complete && img.naturalWidth > 0), 'the thumbnail loads');
    await page.screenshot({ path: join(shots, 'phone-portal-submitted.png') });
  });

  let orderUrl;
  await as('sq140107002001', desk, async (page) => {
    await page.goto(app.base + '/orders?queue=pending_accept&q=' + code);
    // Wait for the order page: a click before htmx has set it up would submit the form natively.
    await Promise.all([page.waitForURL(/\/orders\/\d+$/), page.click(`a:has-text("${code}")`)]);
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
    // Open the task and wait for its page, so the next load awaited is the action's.
    await Promise.all([page.waitForURL(/\/m\/orders\/\d+$/), page.click('text=黑龙潭社区3号楼前路灯不亮')]);
    await page.waitForLoadState('load');
    await act(page, 'sign');
    const fixed = await photo(page, true);
    await act(page, 'report_back', async (form) => {
      await form.locator('textarea[name=result]').fill('已联系物业更换两盏路灯,恢复照明');
      const input = form.locator('input[type=file][name=photos]');
      assert.equal(await input.getAttribute('capture'), 'environment', 'the phone offers its camera');
      await input.setInputFiles([{ name: 'IMG_2041.jpg', mimeType: 'image/jpeg', buffer: fixed }]);
      await page.screenshot({ path: join(shots, 'phone-m-feedback-photo.png'), fullPage: true });
    });
    assert.match(await page.locator('.mtop').innerText(), /待核查/);
    // The result photo is on the 反馈 step of the timeline.
    const step = page.locator('.timeline li', { hasText: '已联系物业更换两盏路灯' });
    assert.equal(await step.locator('.files img').count(), 1);
    await page.screenshot({ path: join(shots, 'phone-m-order.png'), fullPage: true });
  });

  await as('sq140107002001', desk, async (page) => {
    await page.goto(orderUrl);
    // The order page shows both photos; the original opens from the thumbnail.
    const thumbs = page.locator('#order-files .files a.photo');
    assert.equal(await thumbs.count(), 2);
    assert.equal(await page.locator('#order-files .badge').count(), 2, 'both are shown to the resident');
    for (const img of await page.locator('#order-files img').all()) {
      assert.ok(await img.evaluate((i) => i.complete && i.naturalWidth > 0), 'thumbnail loads');
    }
    const href = await thumbs.last().getAttribute('href');
    const original = await page.request.get(app.base + href);
    assert.equal(original.status(), 200);
    assert.equal(original.headers()['content-type'], 'image/jpeg');
    await page.screenshot({ path: join(shots, 'desk-order-photos.png'), fullPage: true });
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
    const photos = page.locator('#public-order .files a');
    assert.equal(await photos.count(), 2, 'the report photo and the result photo');
    for (const a of await photos.all()) {
      assert.match(await a.getAttribute('href'), /^\/api\/v1\/portal\/orders\/[2-9A-Z]{12}\/attachments\/\d+$/);
    }
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

test('the dispatch catalogue: a community rule set by the administrator is what the dispatch form suggests', async () => {
  let code;
  await as(null, phone, async (page) => {
    await page.goto(app.base + '/portal/report');
    await page.selectOption('select[name=category_code]', '0202');
    await page.fill('input[name=title]', '黑龙潭社区5号楼电梯停运三天');
    await page.fill('textarea[name=description]', '5号楼电梯停运三天,物业一直说在等配件,楼里老人下不了楼。');
    await page.selectOption('select[name=node_id]', { label: '黑龙潭社区' });
    await page.fill('input[name=address]', '黑龙潭社区5号楼');
    await Promise.all([page.waitForURL(/\/portal\/track\//), page.click('button[type=submit]')]);
    code = (await page.locator('.bigcode').innerText()).trim();
  });

  await as('admin', desk, async (page) => {
    await page.click('nav.sidebar >> text=派单目录');
    await page.waitForURL(app.base + '/admin/dispatch');
    assert.match(await page.locator('table.dispatch-rules tr', { hasText: '占道经营' }).innerText(), /区城市管理局/,
      'the demo district ships its rules');
    await page.click('summary:has-text("新增规则")');
    const form = page.locator('form.dispatch-form');
    const region = await form.locator('select[name=node_id] option', { hasText: '黑龙潭社区' }).first().getAttribute('value');
    await form.locator('select[name=node_id]').selectOption(region);
    // A department's matter (市容环境卫生) may not default to the community: refused, nothing saved.
    await form.locator('select[name=category_code]').selectOption('0301');
    await form.locator('select[name=lead_unit]').selectOption('');
    await form.locator('button[type=submit]').click();
    await page.locator('#rule-result', { hasText: '默认主办单位不能是社区或网格' }).waitFor();
    // 物业服务 in this community: the community leads, the market regulator and the subdistrict assist.
    await form.locator('select[name=category_code]').selectOption('0202');
    await form.locator('label.check', { hasText: '区市场监督管理局' }).locator('input').check();
    await form.locator('label.check', { hasText: '属地街道' }).locator('input').check();
    await form.locator('input[name=note]').fill('电梯问题请市场监管局特种设备科协办');
    await page.screenshot({ path: join(shots, 'desk-admin-dispatch.png'), fullPage: true });
    await Promise.all([page.waitForURL(/saved=1/), form.locator('button[type=submit]').click()]);
    const rows = page.locator('table.dispatch-rules tbody tr');
    const mine = rows.filter({ hasText: '黑龙潭社区' });
    assert.equal(await mine.count(), 1, 'the filtered list shows the new rule');
    assert.match(await mine.innerText(), /物业服务[\s\S]*属地社区综治中心[\s\S]*属地街道（乡镇）综治中心、区市场监督管理局/);
    assert.ok(await rows.filter({ hasText: '杏花岭区' }).count() > 0, 'and the district rules that apply there too');
  });

  await as('sq140107002001', desk, async (page) => {
    await page.goto(app.base + '/orders?queue=pending_accept&q=' + code);
    // Wait for the order page: a click before htmx has set it up would submit the form natively.
    await Promise.all([page.waitForURL(/\/orders\/\d+$/), page.click(`a:has-text("${code}")`)]);
    await act(page, 'accept');
    await page.click('summary[data-action=dispatch]');
    const form = page.locator('details:has(summary[data-action=dispatch]) form');
    assert.match(await form.locator('.suggestion-basis').innerText(), /黑龙潭社区(居委会)? · 物业服务/);
    assert.equal(await form.locator('select[name=lead_unit] option:checked').innerText(), '黑龙潭社区综治中心');
    const ticked = await form.locator('select[name=assisting] option:checked').evaluateAll(
      (xs) => xs.map((x) => x.textContent.trim()));
    assert.deepEqual(ticked, ['区市场监督管理局', '三桥街道综治中心']);
    // The unit chosen to lead cannot also assist.
    const market = form.locator('select[name=assisting] option', { hasText: '区市场监督管理局' });
    await form.locator('select[name=lead_unit]').selectOption({ label: '区市场监督管理局' });
    assert.equal(await market.isDisabled(), true);
    assert.equal(await market.evaluate((o) => o.selected), false);
    await form.locator('select[name=lead_unit]').selectOption({ label: '黑龙潭社区综治中心' });
    await form.locator('select[name=assisting]').selectOption([{ label: '区市场监督管理局' }, { label: '三桥街道综治中心' }]);
    await page.screenshot({ path: join(shots, 'desk-order-dispatch-suggested.png'), fullPage: true });
    await Promise.all([page.waitForEvent('load'), form.locator('button[type=submit]').click()]);
    await page.waitForLoadState('load');
    assert.match(await page.locator('#order-title').innerText(), /待签收/);
    assert.match(await page.locator('dd.assisting-units').innerText(), /区市场监督管理局、三桥街道综治中心/);
    // A grid-level order's map (the grid with its buildings) loads too.
    await page.goto(app.base + '/orders?queue=all');
    const row = page.locator('table tbody tr', { hasText: '网格' }).first();
    await Promise.all([page.waitForURL(/\/orders\/\d+$/), row.locator('a[href^="/orders/"]').first().click()]);
    await page.waitForSelector('#order-map[data-loaded], #order-map[data-error]');
    assert.equal(await page.locator('#order-map').getAttribute('data-error'), null, 'the map loads');
  });

  // The subdistrict centre assists: its people find the order in the field app under 协办.
  await as('jd140107002', phone, async (page) => {
    await page.goto(app.base + '/m/tasks');
    const section = page.locator('h2.msection', { hasText: '协办' });
    await section.waitFor();
    assert.equal(await page.locator('a.task', { hasText: '黑龙潭社区5号楼电梯停运三天' }).count(), 1);
    await page.screenshot({ path: join(shots, 'phone-m-tasks-assisting.png'), fullPage: true });
  });
});

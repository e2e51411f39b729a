// The resident's side of the loop on a phone (issue 18): the report form
// chooses nothing for the resident and finds the community from the
// location; 我的反映 lists what this phone reported; an evaluation is an
// explicit choice that staff then read in the timeline; grid workers'
// published work phones can be tapped.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { start, login } from './common.mjs';

const shots = '/tmp/shots-portal';
mkdirSync(shots, { recursive: true });

let app;
before(async () => { app = await start(); });
after(async () => { await app?.stop(); });

const phone = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, locale: 'zh-CN' };
const desk = { viewport: { width: 1440, height: 900 }, locale: 'zh-CN' };

async function as(user, options, fn) {
  const ctx = await app.browser.newContext(options);
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  if (user) await login(app.base, page, user);
  try { await fn(page, ctx); } finally { await ctx.close(); }
  assert.deepEqual(errors, [], 'no script errors');
}

async function api(method, path, token, body) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  const r = await fetch(app.base + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* a page */ }
  return { status: r.status, body: json, text };
}

async function token(user) {
  const r = await api('POST', '/api/v1/session', null, { username: user, password: 'Fengqiao@2026' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.token;
}

// A point inside a community's first grid (the mean of its outer ring).
async function pointIn(communityId) {
  const geo = await api('GET', `/portal/area/${communityId}/geojson`);
  const g = geo.body.features[0].geometry;
  const ring = g.type === 'Polygon' ? g.coordinates[0] : g.coordinates[0][0];
  const pts = ring.slice(0, -1);
  const lon = pts.reduce((a, p) => a + p[0], 0) / pts.length;
  const lat = pts.reduce((a, p) => a + p[1], 0) / pts.length;
  return { longitude: lon, latitude: lat };
}

test('the report form chooses nothing, the location picks the community, and 我的反映 lists the report', async () => {
  let code;
  await as(null, phone, async (page, ctx) => {
    await page.goto(app.base + '/portal/report');
    assert.equal(await page.locator('select[name=category_code]').inputValue(), '', 'no category chosen');
    assert.equal(await page.locator('select[name=node_id]').inputValue(), '', 'no community chosen');
    assert.equal(await page.locator('option', { hasText: '重点人员动态' }).count(), 0, 'internal categories are not offered');
    await page.screenshot({ path: join(shots, 'phone-report-empty.png'), fullPage: true });

    // Sent without a choice (the browser's own check switched off): our refusal, what was typed kept.
    await page.fill('input[name=title]', '黑龙潭社区2号楼楼道堆放杂物');
    await page.fill('textarea[name=description]', '2号楼1单元楼道堆满纸箱和旧家具，影响通行，也有火灾隐患。');
    await page.fill('input[name=address]', '黑龙潭社区2号楼1单元');
    await page.evaluate(() => { document.querySelector('form.mform').noValidate = true; });
    await Promise.all([page.waitForEvent('load'), page.click('button[type=submit]')]);
    assert.match(await page.locator('.alert').innerText(), /请选择反映的事项类别/);
    assert.equal(await page.locator('input[name=title]').inputValue(), '黑龙潭社区2号楼楼道堆放杂物');

    // The search narrows the communities by name.
    await page.fill('#community-search', '黑龙潭');
    const shown = await page.locator('select[name=node_id] option').allInnerTexts();
    assert.ok(shown.includes('黑龙潭社区') && shown.length < 10, shown.join(','));
    await page.fill('#community-search', '');
    const community = await page.locator('select[name=node_id] option', { hasText: '黑龙潭社区' }).first().getAttribute('value');

    // The phone's location sets the community and shows a place, not coordinates.
    await ctx.grantPermissions(['geolocation']);
    await ctx.setGeolocation(await pointIn(community));
    await page.selectOption('select[name=category_code]', '0103');
    await page.click('#locate');
    await page.locator('#locate-status', { hasText: '定位位置' }).waitFor();
    const status = await page.locator('#locate-status').innerText();
    assert.match(status, /黑龙潭社区/);
    assert.doesNotMatch(status, /\d+\.\d{3}/, 'no raw coordinates');
    assert.equal(await page.locator('select[name=node_id]').inputValue(), community, 'the community follows the point');
    await page.screenshot({ path: join(shots, 'phone-report-located.png'), fullPage: true });
    await Promise.all([page.waitForURL(/\/portal\/track\//), page.click('button[type=submit]')]);
    code = (await page.locator('.bigcode').innerText()).trim();
    assert.match(await page.locator('#progress').innerText(), /等待工作人员受理/);

    // 我的反映 on the home page of the same phone.
    await page.goto(app.base + '/portal/');
    const mine = page.locator('#my-reports');
    await mine.locator('a', { hasText: '黑龙潭社区2号楼楼道堆放杂物' }).waitFor();
    assert.match(await mine.innerText(), /待受理/);
    assert.equal(await mine.locator('a').first().getAttribute('href'), '/portal/track/' + code);
    await page.screenshot({ path: join(shots, 'phone-home-mine.png'), fullPage: true });
  });
  // Another phone has no such list.
  await as(null, phone, async (page) => {
    await page.goto(app.base + '/portal/');
    assert.equal(await page.locator('#my-reports').isHidden(), true);
  });
});

test('an evaluation needs an explicit choice, and the rating shows in the staff timeline', async () => {
  const centre = await token('sq140107002001');
  const worker = await token('wg140107002001001');
  const form = await api('GET', '/portal/report');
  const community = Number(form.text.match(/<option value="(\d+)"[^>]*>黑龙潭社区</)[1]);
  const made = await api('POST', '/api/v1/portal/orders', null, {
    category_code: '0309', title: '黑龙潭社区6号楼单元门禁损坏', description: '6号楼2单元门禁坏了半个月，陌生人随意进出。',
    address: '黑龙潭社区6号楼2单元', node_id: community,
  });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const code = made.body.tracking_code;
  const list = await api('GET', '/api/v1/orders?queue=pending_accept&q=' + code, centre);
  const id = list.body.orders[0].id;
  const units = await api('GET', '/api/v1/units?community=' + community, centre);
  const grid = units.body.find((u) => u.name === '黑龙潭社区第一网格');
  const step = async (tok, action) => {
    const v = (await api('GET', '/api/v1/orders/' + id, tok)).body.order.version;
    const r = await api('POST', `/api/v1/orders/${id}/actions`, tok, { version: v, action });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };
  await step(centre, { action: 'accept' });
  await step(centre, { action: 'dispatch', lead_unit: grid.id });
  await step(worker, { action: 'sign' });
  await step(worker, { action: 'report_back', result: '已联系物业更换门禁锁' });
  await step(centre, { action: 'verify_pass' });

  await as(null, phone, async (page) => {
    await page.goto(app.base + '/portal/track/' + code);
    assert.equal(await page.locator('input[name=rating]:checked').count(), 0, 'nothing is chosen');
    assert.equal(await page.locator('#eval-reasons').isHidden(), true, 'reasons appear with 不满意 only');
    const timeline = await page.locator('#public-order').innerText();
    assert.match(timeline, /主办：黑龙潭社区第一网格/);
    assert.match(timeline, /承办单位：黑龙潭社区第一网格/);
    await page.fill('textarea[name=comment]', '门禁修好了但还是有点问题');
    await Promise.all([page.waitForEvent('load'), page.click('text=提交评价')]);
    assert.match(await page.locator('.alert').innerText(), /请选择评价结果/);
    assert.match(await page.locator('#public-order').innerText(), /已办结待评价|待评价/);
    await page.check('input[value=dissatisfied]');
    assert.equal(await page.locator('#eval-reasons').isVisible(), true);
    await page.check('#eval-reasons input[value=unresolved]');
    await page.screenshot({ path: join(shots, 'phone-track-rate.png'), fullPage: true });
    await Promise.all([page.waitForEvent('load'), page.click('text=提交评价')]);
    assert.match(await page.locator('#public-order').innerText(), /评价：不满意（问题未解决）/);
    assert.match(await page.locator('#progress').innerText(), /已由黑龙潭社区第一网格受理/);
    await page.screenshot({ path: join(shots, 'phone-track-rated.png'), fullPage: true });
  });

  await as('sq140107002001', desk, async (page) => {
    await page.goto(app.base + '/orders/' + id);
    const timeline = page.locator('.timeline');
    assert.match(await timeline.innerText(), /评价：不满意（问题未解决）/);
    assert.match(await timeline.innerText(), /主办：黑龙潭社区第一网格/);
    await page.screenshot({ path: join(shots, 'desk-order-timeline.png'), fullPage: true });
  });
});

test('a grid worker\'s work phone is a tel: link only when published', async () => {
  const admin = await token('admin');
  const form = await api('GET', '/portal/report');
  const community = Number(form.text.match(/<option value="(\d+)"[^>]*>黑龙潭社区</)[1]);
  const geo = await api('GET', `/portal/area/${community}/geojson`);
  const first = geo.body.features[0].properties;
  const members = (await api('GET', `/api/v1/nodes/${first.id}/members`, admin)).body.members;
  const someone = members.find((m) => m.public_phone_published);
  assert.ok(someone, 'the demo publishes grid workers\' work phones');
  await as(null, phone, async (page) => {
    await page.goto(app.base + '/portal/area/' + community);
    const row = page.locator('.mrow', { hasText: someone.name }).first();
    assert.equal(await row.locator('a.tel').getAttribute('href'), 'tel:' + someone.public_phone);
    assert.doesNotMatch(await page.locator('main').innerText(), /\d{3}\*{4}\d{4}/, 'no masked personal mobiles');
    await page.screenshot({ path: join(shots, 'phone-area.png'), fullPage: true });
  });
  const off = await api('PUT', `/api/v1/members/${someone.id}/public-phone`, admin,
    { phone: someone.public_phone, published: false });
  assert.equal(off.status, 200, JSON.stringify(off.body));
  await as(null, phone, async (page) => {
    await page.goto(app.base + '/portal/area/' + community);
    const row = page.locator('.mrow', { hasText: someone.name }).first();
    assert.equal(await row.locator('a[href^="tel:"]').count(), 0);
    assert.match(await row.innerText(), /暂未公示电话/);
  });
});

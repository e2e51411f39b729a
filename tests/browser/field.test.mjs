// The field app on a 360×740 phone and 回访 in the community's console:
// a grid worker handles a small matter on the spot (即报即办) and finds it in
// 已办; on an order the next step stays above the tab bar and the map's
// controls stay under the header; the community calls the resident back,
// showing the contact with a reason, and records what they said.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { start, login } from './common.mjs';

let app;
before(async () => { app = await start(); });
after(async () => { await app?.stop(); });

const shots = '/tmp/shots-field';
mkdirSync(shots, { recursive: true });
const phone = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true };
const desk = { viewport: { width: 1440, height: 900 } };
const worker = 'wg140107002001001';
const community = 'sq140107002001';

async function as(user, options, fn) {
  const ctx = await app.browser.newContext(options);
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  if (user) await login(app.base, page, user);
  try { await fn(page); } finally { await ctx.close(); }
  assert.deepEqual(errors, [], 'no script errors');
}

/// A small photo drawn in the page: a stairwell, cluttered or cleared.
async function photo(page, cleared) {
  const url = await page.evaluate((cleared) => {
    const c = document.createElement('canvas');
    c.width = 640; c.height = 480;
    const g = c.getContext('2d');
    g.fillStyle = '#cfd8dc'; g.fillRect(0, 0, 640, 480);
    g.fillStyle = '#90a4ae'; g.fillRect(0, 360, 640, 120);
    if (!cleared) { g.fillStyle = '#a1887f'; for (let i = 0; i < 6; i++) g.fillRect(80 + i * 70, 280 - (i % 3) * 30, 60, 80 + (i % 3) * 30); }
    return c.toDataURL('image/jpeg', 0.85);
  }, cleared);
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

/// The element's box lies inside the viewport, above the tab bar.
async function aboveTabbar(page, locator, what) {
  const box = await locator.boundingBox();
  assert.ok(box, `${what} is shown`);
  const bar = await page.locator('.tabbar').boundingBox();
  assert.ok(box.y >= 0 && box.y + box.height <= bar.y + 1, `${what} is above the tab bar: ${JSON.stringify(box)} / ${bar.y}`);
}

test('a grid worker handles a small matter on the spot and finds it in 已办', async () => {
  await as(worker, phone, async (page) => {
    await page.goto(app.base + '/m/report');
    const onSpot = page.locator('#on_spot');
    assert.equal(await page.locator('select[name=category_code]').inputValue(), '', 'no category chosen for the worker');
    assert.ok(await onSpot.isDisabled(), 'offered only once a category allows it');
    await page.selectOption('select[name=category_code]', '0303');
    assert.ok(await onSpot.isDisabled(), '路灯 is not handled on the spot');
    await page.selectOption('select[name=category_code]', '0301');
    assert.ok(await onSpot.isEnabled());
    await page.fill('input[name=title]', '5号楼2单元楼道堆放纸箱');
    await page.fill('textarea[name=description]', '楼道内堆放大量纸箱，影响通行和消防安全。');
    await page.fill('input[name=address]', '黑龙潭社区5号楼2单元');
    await page.setInputFiles('input[name=photos]', { name: '处置前.jpg', mimeType: 'image/jpeg', buffer: await photo(page, false) });
    await onSpot.check();
    assert.equal(await page.locator('#report-submit').innerText(), '提交并办结');
    await page.fill('textarea[name=result]', '已联系住户当场清理，楼道恢复畅通。');
    await page.setInputFiles('input[name=after_photos]', { name: '处置后.jpg', mimeType: 'image/jpeg', buffer: await photo(page, true) });
    await page.screenshot({ path: join(shots, 'phone-report-on-spot.png'), fullPage: true });
    await Promise.all([page.waitForURL(/\/m\/orders\/\d+$/), page.click('#report-submit')]);
    assert.match(await page.locator('.mtop').innerText(), /已完结/);
    assert.match(await page.locator('.mcard h2').first().innerText(), /即报即办/);
    const step = page.locator('.timeline li', { hasText: '已联系住户当场清理' });
    assert.match(await step.innerText(), /即报即办/);
    assert.equal(await step.locator('.files img').count(), 1, 'the photo after the work is on its step');
    await page.screenshot({ path: join(shots, 'phone-on-spot-order.png'), fullPage: true });

    await page.goto(app.base + '/m/done');
    const done = page.locator('a.task', { hasText: '5号楼2单元楼道堆放纸箱' });
    assert.equal(await done.count(), 1, 'in 已办');
    assert.match(await done.innerText(), /即报即办/);
    await page.screenshot({ path: join(shots, 'phone-done.png') });
  });
});

test('the field app on a phone, and 回访 by the community', async () => {
  const title = '黑龙潭社区7号楼邻里噪音纠纷';
  // A resident reports, leaving a number to be called back on.
  // Standing in front of the building, in the first grid of 黑龙潭社区.
  const here = { ...phone, geolocation: { latitude: 37.962866, longitude: 112.584041 }, permissions: ['geolocation'] };
  await as(null, here, async (page) => {
    await page.goto(app.base + '/portal/report');
    await page.click('#locate');
    await page.waitForFunction(() => document.querySelector('#lat').value !== '');
    assert.doesNotMatch(await page.locator('#locate-status').innerText(), /\d{2}\.\d/, 'no coordinates shown');
    await page.selectOption('select[name=category_code]', '0102');
    await page.fill('input[name=title]', title);
    await page.fill('textarea[name=description]', '楼上住户深夜经常敲击地面，多次沟通无果，希望社区协调。');
    await page.selectOption('select[name=node_id]', { label: '黑龙潭社区' });
    await page.fill('input[name=address]', '黑龙潭社区7号楼');
    await page.fill('input[name=name]', '王女士');
    await page.fill('input[name=contact]', '13912345678');
    await Promise.all([page.waitForURL(/\/portal\/track\//), page.click('button[type=submit]')]);
  });

  let orderUrl;
  await as(community, desk, async (page) => {
    await page.goto(app.base + '/orders?queue=pending_accept&q=' + encodeURIComponent(title));
    await Promise.all([page.waitForURL(/\/orders\/\d+$/), page.click(`a:has-text("${title}")`)]);
    orderUrl = page.url();
    await act(page, 'accept');
    await act(page, 'dispatch', async (form) => {
      await form.locator('select[name=lead_unit]').selectOption({ label: '黑龙潭社区第一网格' });
      const why = form.locator('input[name=override_reason]');
      if (await why.count()) await why.fill('邻里纠纷由网格员就近调解');
    });
  });

  await as(worker, phone, async (page) => {
    await page.goto(app.base + '/m/tasks');
    await Promise.all([page.waitForURL(/\/m\/orders\/\d+$/), page.click(`text=${title}`)]);
    await page.waitForLoadState('load');
    await page.waitForSelector('.leaflet-control-zoom-in');
    // The next step is in reach without scrolling, above the tab bar.
    await aboveTabbar(page, page.locator('button[data-action=sign]'), '签收');
    // A worker without the 回访 permission is offered no call; navigation is.
    assert.equal(await page.locator('a[href^="tel:"], summary[data-reveal]').count(), 0);
    assert.match(await page.locator('a[data-nav=geo]').getAttribute('href'), /^geo:/);
    assert.doesNotMatch(await page.locator('main').innerText(), /112\.\d{3}|37\.\d{3}/, 'no coordinates on screen');
    await page.screenshot({ path: join(shots, 'phone-order-sign.png') });
    // Scrolled so that the map passes under the header: its zoom buttons go under it too.
    await page.evaluate(() => {
      // As on an order with a long timeline: room to scroll the map up.
      document.querySelector('main').style.paddingBottom = '900px';
      const map = document.querySelector('#m-order-map');
      window.scrollBy(0, map.getBoundingClientRect().top - 20);
    });
    const zoom = await page.locator('.leaflet-control-zoom-in').boundingBox();
    const header = await page.locator('.mtop').boundingBox();
    assert.ok(zoom.y < header.y + header.height, 'the zoom control is scrolled under the header');
    const onTop = await page.evaluate(([x, y]) => !!document.elementFromPoint(x, y)?.closest('.mtop'),
      [zoom.x + zoom.width / 2, Math.max(zoom.y + zoom.height / 2, 1)]);
    assert.ok(onTop, 'the header paints over the zoom control');
    await aboveTabbar(page, page.locator('button[data-action=sign]'), '签收 while scrolled');
    await page.screenshot({ path: join(shots, 'phone-order-scrolled.png') });
    await page.evaluate(() => window.scrollTo(0, 0));
    await act(page, 'sign');
    await aboveTabbar(page, page.locator('summary[data-action=report_back]'), '反馈');
    await page.screenshot({ path: join(shots, 'phone-order-handling.png') });
    await act(page, 'report_back', async (form) => {
      await form.locator('textarea[name=result]').fill('已上门调解，双方约定晚十点后不再敲击，签字确认。');
    });
    await page.goto(app.base + '/m/tasks');
    assert.equal(await page.locator('a.task', { hasText: title }).count(), 0, 'no longer to do');
    await page.click('.msegment >> text=已办');
    await page.waitForURL(/\/m\/done/);
    assert.equal(await page.locator('a.task', { hasText: title }).count(), 1, 'in 已办 after 反馈');
  });

  await as(community, desk, async (page) => {
    await page.goto(orderUrl);
    await act(page, 'verify_pass');
    await page.click('nav.sidebar >> text=回访');
    await page.waitForURL(/\/orders\/follow-ups/);
    const card = page.locator('section.followup', { hasText: title });
    assert.equal(await card.count(), 1, 'closed and awaiting a call');
    assert.match(await card.innerText(), /139\*\*\*\*5678/);
    assert.equal(await card.locator('input[name=outcome]:checked').count(), 0, 'no outcome chosen for the caller');
    await page.screenshot({ path: join(shots, 'desk-follow-ups.png'), fullPage: true });
    // Showing the number takes a reason.
    await card.locator('summary[data-reveal]').click();
    await card.locator('input[name=reason]').fill('办结后电话回访');
    await card.locator('.reveal button[type=submit]').click();
    await card.locator('a[href="tel:13912345678"]').waitFor();
    await page.screenshot({ path: join(shots, 'desk-follow-up-revealed.png') });
    await card.locator('input[value=satisfied]').check();
    await card.locator('textarea[name=note]').fill('王女士表示噪音已明显减少，对处理结果满意。');
    await Promise.all([page.waitForEvent('load'), card.locator('.followup-form button[type=submit]').click()]);
    assert.equal(await page.locator('section.followup', { hasText: title }).count(), 0, 'called: off the list');

    await page.goto(orderUrl);
    const call = page.locator('.timeline li', { hasText: '王女士表示噪音已明显减少' });
    assert.match(await call.innerText(), /回访/);
    assert.equal(await call.locator('.tag.outcome').innerText(), '满意');
    await page.screenshot({ path: join(shots, 'desk-order-follow-up.png'), fullPage: true });
  });
  await as('admin', desk, async (page) => {
    await page.goto(app.base + '/admin/audit');
    assert.match(await page.locator('main').innerText(), /办结后电话回访/, 'the disclosure is in the audit log');
  });
});

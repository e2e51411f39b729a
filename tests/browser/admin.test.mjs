// Browser test: account administration in the staff console (系统管理 →
// 用户管理, 角色权限, 接口令牌, 安全策略) and a user's own page (我的账号),
// against the real `fengqiao demo` server. The story: the administrator
// creates a user at a community and hands over the temporary password; the
// user must set their own before anything else; the administrator resets and
// disables the account, edits a role, issues and revokes an API token; a user
// ends their own sessions. Screenshots go to ../../screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { start, login, shots } from './common.mjs';

let app, base;
const desk = { viewport: { width: 1280, height: 800 }, locale: 'zh-CN' };
const phone = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, locale: 'zh-CN' };

before(async () => { app = await start(); base = app.base; });
after(async () => { await app?.stop(); });

/** A page that accepts every confirm() and collects script errors. */
async function open(options) {
  const ctx = await app.browser.newContext(options);
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('dialog', (d) => d.accept());
  return { ctx, page };
}

async function loginAs(page, username, password) {
  await page.goto(base + '/login');
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.click('button[type=submit]')]);
}

async function noSideways(page, what) {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 360, `${what}: no sideways scrolling of the page (${width}px)`);
}

let newUserId, temporary;
const newPassword = 'Qiao-Feng-2026';

test('an administrator creates a user at a community and gets the temporary password once', async () => {
  const { ctx, page } = await open(desk);
  await login(base, page, 'admin');
  await page.click('nav.sidebar >> text=用户管理');
  await page.waitForSelector('table.users');
  assert.match(await page.locator('table.users').innerText(), /admin/);
  await page.screenshot({ path: join(shots, 'desk-admin-users.png') });

  await page.click('details.create > summary');
  await page.fill('details.create input[name=username]', 'zhang_hl');
  await page.fill('details.create input[name=display_name]', '张海丽');
  const community = await page.locator('details.create select[name=node_id] option', { hasText: '黑龙潭' }).first()
    .getAttribute('value');
  await Promise.all([
    page.waitForResponse((r) => r.url().includes('/admin/users/node-fields')),
    page.selectOption('details.create select[name=node_id]', community),
  ]);
  // The community's grids are offered next to it (once htmx has swapped the answer in,
  // which can come a moment after the response on a loaded machine).
  await page.locator('details.create select[name=grid_id] option').nth(1).waitFor({ state: 'attached' });
  assert.ok(await page.locator('details.create select[name=grid_id] option').count() > 1);
  await page.check('details.create input[name=roles][value=grid_worker]');
  await page.check('details.create input[name=roles][value=volunteer]');
  // Order duties can be granted by any user administrator; rights over the
  // system (here: the administrator role itself) only by their holders —
  // the demo administrator holds them all, so nothing is greyed out.
  assert.ok(!(await page.locator('details.create input[name=roles][value=admin]').isDisabled()));
  await page.click('details.create button[type=submit]');
  const secret = page.locator('#create-result [data-secret=password]');
  await secret.waitFor();
  temporary = (await secret.innerText()).trim();
  assert.match(temporary, /^[a-z]{4}-[A-Z]{4}-\d{4}$/);
  assert.match(await page.locator('#create-result').innerText(), /当面交给本人/);
  await page.screenshot({ path: join(shots, 'desk-admin-user-created.png') });
  await page.click('#create-result >> text=查看该用户');
  await page.waitForURL(/\/admin\/users\/\d+$/);
  newUserId = Number(page.url().split('/').pop());
  const facts = await page.locator('.facts').innerText();
  assert.match(facts, /黑龙潭/);
  assert.match(facts, /网格员/);
  assert.match(await page.locator('h1').innerText(), /待改密/);

  // The password is not shown again.
  await page.goto(base + '/admin/users?q=zhang_hl');
  assert.doesNotMatch(await page.content(), new RegExp(temporary));
  assert.equal(await page.locator('table.users tbody tr').count(), 1);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('the new user must set their own password first, then lands on the console', async () => {
  const { ctx, page } = await open(desk);
  await loginAs(page, 'zhang_hl', temporary);
  await page.waitForURL(/\/account\/password$/);
  // Anything else leads back here.
  await page.goto(base + '/orders');
  assert.match(page.url(), /\/account\/password$/);
  assert.match(await page.locator('.pwform').innerText(), /至少 8 个字符/);
  await page.screenshot({ path: join(shots, 'desk-account-password-forced.png') });

  await page.fill('input[name=current_password]', temporary);
  await page.fill('input[name=new_password]', 'short');
  await page.fill('input[name=repeat_password]', 'short');
  await page.click('.pwform button[type=submit]');
  await page.locator('#password-result .alert').waitFor();
  assert.match(await page.locator('#password-result').innerText(), /密码太短/);

  await page.fill('input[name=new_password]', newPassword);
  await page.fill('input[name=repeat_password]', newPassword);
  await Promise.all([page.waitForURL(base + '/'), page.click('.pwform button[type=submit]')]);
  assert.match(await page.locator('nav.sidebar a.active').innerText(), /工作台/);
  // The administration menu is not theirs.
  assert.equal(await page.locator('nav.sidebar >> text=用户管理').count(), 0);
  assert.equal((await page.goto(base + '/admin/users')).status(), 403);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('the administrator resets the password, then disables and enables the account', async () => {
  const user = await open(desk);
  await loginAs(user.page, 'zhang_hl', newPassword);
  await user.page.waitForURL(base + '/');

  const { ctx, page } = await open(desk);
  await login(base, page, 'admin');
  await page.goto(`${base}/admin/users/${newUserId}`);
  await page.click('button:has-text("重置密码")');
  const secret = page.locator('#reset-result [data-secret=password]');
  await secret.waitFor();
  const reset = (await secret.innerText()).trim();
  assert.notEqual(reset, temporary);
  await page.screenshot({ path: join(shots, 'desk-admin-user-reset.png') });
  // The reset ended the user's sessions.
  await user.page.goto(base + '/orders');
  assert.match(user.page.url(), /\/login/);
  await loginAs(user.page, 'zhang_hl', reset);
  assert.match(user.page.url(), /\/account\/password$/);

  await Promise.all([page.waitForURL(/saved=1/), page.click('button:has-text("停用")')]);
  assert.equal(await page.locator('h1 [data-status]').getAttribute('data-status'), 'off');
  await user.page.goto(base + '/account/password');
  assert.match(user.page.url(), /\/login/);
  await user.page.fill('input[name=username]', 'zhang_hl');
  await user.page.fill('input[name=password]', reset);
  await user.page.click('button[type=submit]');
  await user.page.locator('.alert').waitFor();
  assert.match(await user.page.locator('.alert').innerText(), /账号或密码不正确/);
  await page.screenshot({ path: join(shots, 'desk-admin-user.png'), fullPage: true });

  await page.click('button:has-text("启用")');
  await page.waitForSelector('h1 [data-status=ok]');
  // Every change is in the audit log.
  await page.goto(`${base}/admin/audit?object_type=user&object_id=${newUserId}`);
  const log = await page.locator('table.audit').innerText();
  for (const label of ['新建用户', '重置密码', '修改用户']) assert.match(log, new RegExp(label));
  await user.ctx.close();
  await ctx.close();
});

test('a role gets a permission in the matrix', async () => {
  const { ctx, page } = await open(desk);
  await login(base, page, 'admin');
  await page.click('nav.sidebar >> text=角色权限');
  await page.waitForSelector('table.matrix');
  const box = 'input[form=role-volunteer][value="tree.read"]';
  assert.equal(await page.locator(box).isChecked(), false);
  // Order duties may be handed out by whoever manages roles.
  assert.ok(!(await page.locator('input[form=role-volunteer][value="orders.dispatch"]').isDisabled()));
  await page.check(box);
  await page.click('button[data-save=volunteer]');
  await page.locator('#roles-result .notice').waitFor();
  assert.match(await page.locator('#roles-result').innerText(), /志愿者/);
  await page.reload();
  assert.equal(await page.locator(box).isChecked(), true);
  await page.screenshot({ path: join(shots, 'desk-admin-roles.png'), fullPage: true });

  // A custom role: created, then deleted while nobody holds it.
  await page.click('details.create > summary');
  await page.fill('details.create input[name=code]', 'hotline_reader');
  await page.fill('details.create input[name=name]', '热线查询');
  await page.check('details.create input[name=permissions][value="orders.read"]');
  await Promise.all([page.waitForURL(base + '/admin/roles'), page.click('details.create button[type=submit]')]);
  await page.waitForSelector('th[data-role=hotline_reader]');
  await page.click('button[data-delete=hotline_reader]');
  await page.waitForFunction(() => !document.querySelector('th[data-role=hotline_reader]'));
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('an API token is shown once when issued, works, and stops working when revoked', async () => {
  const { ctx, page } = await open(desk);
  await login(base, page, 'admin');
  await page.click('nav.sidebar >> text=接口令牌');
  await page.fill('details.create input[name=name]', '12345热线对接');
  await page.check('details.create input[name=permissions][value="orders.read"]');
  await page.click('details.create button[type=submit]');
  const secret = page.locator('#issue-result [data-secret=token]');
  await secret.waitFor();
  const token = (await secret.innerText()).trim();
  assert.match(token, /^fqt_[0-9a-f]{64}$/);
  await page.screenshot({ path: join(shots, 'desk-admin-token-issued.png') });
  const me = await fetch(base + '/api/v1/me', { headers: { authorization: 'Bearer ' + token } });
  assert.equal(me.status, 200);

  await page.click('text=我已保存，返回列表');
  await page.waitForSelector('table.tokens');
  assert.doesNotMatch(await page.content(), new RegExp(token));
  const row = page.locator('table.tokens tbody tr', { hasText: '12345热线对接' });
  assert.match(await row.innerText(), /有效/);
  assert.match(await row.innerText(), new RegExp(token.slice(0, 10)));
  // The page is already /admin/tokens, so wait for the reloaded row rather than the URL.
  await row.locator('button', { hasText: '吊销' }).click();
  await page.locator('table.tokens tbody tr', { hasText: '12345热线对接' }).filter({ hasText: '已吊销' }).waitFor();
  await page.screenshot({ path: join(shots, 'desk-admin-tokens.png') });
  const after = await fetch(base + '/api/v1/me', { headers: { authorization: 'Bearer ' + token } });
  assert.equal(after.status, 401);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('the policy page shows bounds and saves within them', async () => {
  const { ctx, page } = await open(desk);
  await login(base, page, 'admin');
  await page.click('nav.sidebar >> text=安全策略');
  assert.equal(await page.locator('input[name=session_idle_minutes]').getAttribute('max'), '30');
  assert.match(await page.locator('form.policy').innerText(), /5–30/);
  await page.fill('input[name=session_idle_minutes]', '25');
  await Promise.all([page.waitForURL(/saved=1/), page.click('form.policy button[type=submit]')]);
  assert.equal(await page.locator('input[name=session_idle_minutes]').inputValue(), '25');
  await page.screenshot({ path: join(shots, 'desk-admin-policy.png'), fullPage: true });
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('an administrator sets a category\'s time limits; a bad one is refused and nothing changes', async () => {
  const { ctx, page } = await open(desk);
  await login(base, page, 'admin');
  await page.click('nav.sidebar >> text=事项分类与时限');
  const row = page.locator('table.categories tr', { hasText: '0309' });
  assert.match(await row.innerText(), /7 工作日/);
  await page.screenshot({ path: join(shots, 'desk-admin-categories.png'), fullPage: true });
  await row.locator('a', { hasText: '修改' }).click(); // the name links there too (phones)
  await page.waitForURL(base + '/admin/categories/0309');
  await page.fill('input[name=handle_amount]', '300'); // within the field's bounds, past 250 working days
  await page.click('form.category-form button[type=submit]');
  await page.locator('#category-result', { hasText: '时限无效' }).waitFor();
  await page.fill('input[name=handle_amount]', '36');
  await page.selectOption('select[name=handle_unit]', 'working_hours');
  await page.screenshot({ path: join(shots, 'desk-admin-category.png'), fullPage: true });
  await Promise.all([page.waitForURL(/saved=0309/), page.click('form.category-form button[type=submit]')]);
  assert.match(await page.locator('p.notice').innerText(), /0309/);
  assert.match(await page.locator('table.categories tr', { hasText: '0309' }).innerText(), /36 工作时/);
  const api = await (await fetch(base + '/api/v1/categories')).json();
  assert.deepEqual(api.find((c) => c.code === '0309').handle_limit, { unit: 'working_hours', amount: 36 });
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('an administrator keeps the holiday calendar: adds a day, imports a year, removes a day', async () => {
  const { ctx, page } = await open(desk);
  await login(base, page, 'admin');
  await page.click('nav.sidebar >> text=工作日历');
  await page.click('nav.year-tabs >> text=2025');
  await page.waitForURL(/year=2025/);
  // 2025's National Day break: 1–8 October off, Sunday 28 September worked.
  assert.match(await page.locator('table.calendar-days tr', { hasText: '2025-10-08' }).innerText(), /周三\s+放假/);
  assert.match(await page.locator('table.calendar-days tr', { hasText: '2025-09-28' }).innerText(), /周日\s+调休上班/);
  await page.screenshot({ path: join(shots, 'desk-admin-calendar.png'), fullPage: true });

  // A year with no arrangement yet says so, then gets one by import.
  await page.goto(base + '/admin/calendar?year=2027');
  assert.match(await page.locator('p.notice.warn').innerText(), /还没有节假日安排/);
  await page.click('text=导入全年安排');
  await page.fill('form.import-form textarea', 'date,kind,name\nnot-a-date,holiday,元旦');
  await page.click('form.import-form button[type=submit]');
  await page.locator('#import-result', { hasText: '格式错误' }).or(page.locator('#import-result', { hasText: '无效' })).waitFor();
  await page.fill('form.import-form textarea', 'date,kind,name\n2027-01-01,holiday,元旦\n2027-02-07,workday,春节调休');
  await Promise.all([page.waitForURL(/saved=1/), page.click('form.import-form button[type=submit]')]);
  await page.goto(base + '/admin/calendar?year=2027');
  assert.equal(await page.locator('table.calendar-days tbody tr').count(), 2);
  assert.equal(await page.locator('p.notice.warn').count(), 0);

  // One more day by hand, then removed again.
  await page.click('text=添加或修改一天');
  await page.fill('form.day-form input[name=day]', '2027-10-01');
  await page.fill('form.day-form input[name=name]', '国庆节');
  await Promise.all([page.waitForURL(/saved=1/), page.click('form.day-form button[type=submit]')]);
  const row = page.locator('table.calendar-days tr', { hasText: '2027-10-01' });
  assert.match(await row.innerText(), /周五\s+放假\s+国庆节/);
  // (The address already says saved=1 from the addition: wait for the row itself to go.)
  await row.locator('button', { hasText: '删除' }).click();
  await page.locator('table.calendar-days tr', { hasText: '2027-10-01' }).waitFor({ state: 'detached' });
  const { token } = await fetch(base + '/api/v1/session', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'Fengqiao@2026' }),
  }).then((r) => r.json());
  const api = await fetch(base + '/api/v1/calendar?year=2027', { headers: { authorization: 'Bearer ' + token } })
    .then((r) => r.json());
  assert.deepEqual(api.days.map((d) => d.day), ['2027-01-01', '2027-02-07']);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('an administrator adds a department, which the dispatch catalogue then offers, and retires it', async () => {
  const { ctx, page } = await open(desk);
  await login(base, page, 'admin');
  await page.goto(base + '/admin/dispatch');
  const form = page.locator('form.dept-form');
  await form.locator('input[name=name]').fill('区教育局');
  await form.locator('input[name=key]').fill('urban_mgmt'); // taken
  await form.locator('button[type=submit]').click();
  await page.locator('#dept-result', { hasText: '已有使用该标识的部门' }).waitFor();
  await form.locator('input[name=key]').fill('education');
  await Promise.all([page.waitForURL(/saved=dept/), form.locator('button[type=submit]').click()]);
  const row = page.locator('table.departments tr', { hasText: 'dept:education' });
  assert.match(await row.innerText(), /在用/);
  assert.equal(await page.locator('form.dispatch-form select[name=lead_unit] option', { hasText: '区教育局' }).count(), 1,
    'the catalogue offers the new department');
  await page.screenshot({ path: join(shots, 'desk-admin-departments.png'), fullPage: true });
  // The page reloads (already at ?saved=1): wait for the row to say so.
  await row.locator('button', { hasText: '停用' }).click();
  await page.locator('table.departments tr', { hasText: 'dept:education' }).filter({ hasText: '已停用' }).waitFor();
  assert.equal(await page.locator('form.dispatch-form select[name=lead_unit] option', { hasText: '区教育局' }).count(), 0);
  // A department that categories belong to is not retired.
  await page.locator('table.departments tr', { hasText: 'dept:police' }).locator('button', { hasText: '停用' }).click();
  await page.locator('#dept-result', { hasText: '请先在"事项分类与时限"中改派其他部门' }).waitFor();
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('the dispatch catalogue narrows to one region as soon as it is chosen', async () => {
  const { ctx, page } = await open(desk);
  await login(base, page, 'admin');
  await page.goto(base + '/admin/dispatch');
  const rows = page.locator('table.dispatch-rules tbody tr');
  const all = await rows.count();
  const select = page.locator('form.filters select[name=region]');
  const option = select.locator('option').nth(2);
  const label = (await option.innerText()).trim();
  await Promise.all([page.waitForURL(/region=\d+/), select.selectOption({ index: 2 })]);
  assert.equal((await page.locator('form.filters select[name=region] option:checked').innerText()).trim(), label);
  assert.ok(await rows.count() < all, `choosing ${label} narrows the ${all} rules`);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('a user sees their sessions, ends another one, then logs out everywhere', async () => {
  const other = await open(desk);
  await login(base, other.page, 'sq140107002001');
  const { ctx, page } = await open(desk);
  await login(base, page, 'sq140107002001');
  await page.click('header.topbar a.who');
  await page.waitForURL(base + '/account');
  assert.match(await page.locator('.facts').innerText(), /黑龙潭/);
  const rows = page.locator('table.sessions tbody tr');
  assert.ok(await rows.count() >= 2);
  assert.equal(await page.locator('table.sessions tr.current').count(), 1);
  assert.match(await page.locator('table.sessions tr.current').innerText(), /本设备/);
  await page.screenshot({ path: join(shots, 'desk-account.png'), fullPage: true });

  const before = await rows.count();
  await page.locator('table.sessions tbody tr:not(.current) button').first().click();
  await page.waitForFunction((n) => document.querySelectorAll('table.sessions tbody tr').length === n - 1, before);
  await other.page.goto(base + '/orders');
  assert.match(other.page.url(), /\/login/);

  await login(base, other.page, 'sq140107002001');
  await Promise.all([page.waitForURL(/\/login/), page.click('button:has-text("退出所有设备")')]);
  await other.page.goto(base + '/orders');
  assert.match(other.page.url(), /\/login/);
  assert.deepEqual(page.errors, []);
  await other.ctx.close();
  await ctx.close();
});

test('pages answer 403 without the permission and 404 outside the scope', async () => {
  const { ctx, page } = await open(desk);
  await login(base, page, 'sq140107002001');
  for (const p of ['/admin/users', '/admin/roles', '/admin/tokens', '/admin/policy', '/admin/categories',
    '/admin/categories/0309', '/admin/calendar', '/admin/dispatch']) {
    assert.equal((await page.goto(base + p)).status(), 403, p);
  }
  await ctx.close();
  const admin = await open(desk);
  await login(base, admin.page, 'admin');
  assert.equal((await admin.page.goto(base + '/admin/users/999999')).status(), 404);
  await admin.ctx.close();
});

test('the pages fit a phone screen', async () => {
  const { ctx, page } = await open(phone);
  await login(base, page, 'admin');
  for (const [path, name] of [['/account', 'account'], ['/admin/users', 'admin-users'],
    [`/admin/users/${newUserId}`, 'admin-user'], ['/admin/roles', 'admin-roles'], ['/admin/tokens', 'admin-tokens'],
    ['/admin/policy', 'admin-policy'], ['/admin/categories', 'admin-categories'],
    ['/admin/categories/0309', 'admin-category'], ['/admin/calendar?year=2026', 'admin-calendar'],
    ['/admin/dispatch', 'admin-dispatch']]) {
    await page.goto(base + path);
    await noSideways(page, path);
    await page.screenshot({ path: join(shots, `phone-${name}.png`), fullPage: true });
  }
  await page.goto(base + '/m/me');
  await page.click('a[href="/account"]');
  await page.waitForURL(base + '/account');
  await page.goto(base + '/m/me');
  await page.screenshot({ path: join(shots, 'phone-m-me.png') });
  assert.deepEqual(page.errors, []);
  await ctx.close();

  // The forced change on a phone.
  const admin = await fetch(base + '/api/v1/session', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'Fengqiao@2026' }),
  }).then((r) => r.json());
  const { temporary_password } = await fetch(`${base}/api/v1/users/${newUserId}/password-reset`, {
    method: 'POST', headers: { authorization: 'Bearer ' + admin.token },
  }).then((r) => r.json());
  const forced = await open(phone);
  await loginAs(forced.page, 'zhang_hl', temporary_password);
  await forced.page.waitForURL(/\/account\/password$/);
  await noSideways(forced.page, '/account/password');
  await forced.page.screenshot({ path: join(shots, 'phone-account-password-forced.png'), fullPage: true });
  await forced.ctx.close();
});

// Posts at several nodes (切换岗位). The demo's 胜利西街社区 总网格长 also
// serves as 网格员 of the community's grids that have no worker of their own.
const POSTS = 'sq140107001001';
const COMMUNITY = '胜利西街社区居委会';

async function switchTo(page, name) {
  const select = page.locator('header.topbar form.node-switch select');
  await select.selectOption(await select.locator('option', { hasText: name }).getAttribute('value'));
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/account/node')),
    page.click('header.topbar form.node-switch button'),
  ]);
  // The console starts over at the new node.
  await page.locator('main h1', { hasText: name }).waitFor();
}

test('a 总网格长 who is also a grid\'s 网格员 switches post in the page header', async () => {
  for (const [options, tag] of [[desk, 'desk'], [phone, 'phone']]) {
    const { ctx, page } = await open(options);
    await login(base, page, POSTS);
    const select = page.locator('header.topbar form.node-switch select');
    assert.equal(await select.locator('option').count(), 5);
    assert.match(await select.locator('option:checked').innerText(), new RegExp(COMMUNITY));
    assert.match(await page.locator('main h1').innerText(), new RegExp(COMMUNITY));
    if (tag === 'phone') await noSideways(page, '/ with the switcher');
    await page.screenshot({ path: join(shots, `${tag}-header-node-switch.png`) });

    await switchTo(page, '胜利西街社区第三网格');
    assert.match(await select.locator('option:checked').innerText(), /第三网格/);
    // Its own subtree only: the community's other grids are out of sight.
    assert.equal((await page.goto(base + '/tree/' + (await select.inputValue()))).status(), 200);
    assert.doesNotMatch(await page.locator('main').innerText(), /第二网格/);
    await page.screenshot({ path: join(shots, `${tag}-header-node-switched.png`) });

    await page.goto(base + '/account');
    const posts = page.locator('ul.posts li');
    assert.equal(await posts.count(), 5);
    assert.match(await page.locator('ul.posts li.current').innerText(), /第三网格[\s\S]*当前岗位[\s\S]*网格员/);
    assert.match(await posts.first().innerText(), /所属区划[\s\S]*网格长/);
    if (tag === 'phone') await noSideways(page, '/account with posts');
    await page.screenshot({ path: join(shots, `${tag}-account-posts.png`), fullPage: true });
    await switchTo(page, COMMUNITY);
    assert.deepEqual(page.errors, []);
    await ctx.close();
  }
});

test('the field app offers the switch too, under 我的', async () => {
  const { ctx, page } = await open(phone);
  await login(base, page, POSTS);
  await page.goto(base + '/m/me');
  const select = page.locator('main select[name=node_id]');
  assert.equal(await select.locator('option').count(), 5);
  await select.selectOption(await select.locator('option', { hasText: '第二网格' }).getAttribute('value'));
  await noSideways(page, '/m/me with the switcher');
  await page.screenshot({ path: join(shots, 'phone-m-me-node-switch.png') });
  await Promise.all([page.waitForURL(base + '/m/'), page.click('main form button[type=submit]')]);
  assert.match(await page.locator('header.mtop').innerText(), /第二网格/);
  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test('the administrator sees a user\'s posts by node, adds one at another node and takes it away', async () => {
  const { ctx, page } = await open(desk);
  await login(base, page, 'admin');
  await page.goto(base + '/admin/users?q=' + POSTS);
  await page.click(`table.users tr:has-text("${POSTS}") a`);
  await page.waitForURL(/\/admin\/users\/\d+$/);
  const userUrl = page.url();
  const posts = page.locator('#grants ul.posts li');
  assert.equal(await posts.count(), 5);
  assert.match(await posts.first().innerText(), /所属区划/);
  // Roles at the home node are edited above; the others can be taken away here.
  assert.equal(await posts.first().locator('button.chip-x').count(), 0);
  assert.equal(await posts.nth(1).locator('button.chip-x').count(), 1);

  const form = page.locator('form.grant-form');
  const street = await form.locator('select[name=node_id] option', { hasText: '三桥街道' }).first().getAttribute('value');
  await Promise.all([
    page.waitForResponse((r) => r.url().includes('/admin/users/node-fields')),
    form.locator('select[name=node_id]').selectOption(street),
  ]);
  // The answer arrives before htmx has swapped it in.
  await page.waitForFunction(() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling'));
  // A street has no grids to pick, and a post has no unit of its own.
  assert.equal(await form.locator('select[name=grid_id]').count(), 0);
  assert.equal(await form.locator('select[name=unit_id]').count(), 0);
  await form.locator('select[name=role]').selectOption('dispatcher');
  await Promise.all([page.waitForURL(/saved=1/), form.locator('button[type=submit]').click()]);
  assert.equal(await posts.count(), 6);
  const added = page.locator(`#grants ul.posts li[data-node="${street}"]`);
  assert.match(await added.innerText(), /三桥街道[\s\S]*派遣员/);
  await page.screenshot({ path: join(shots, 'desk-admin-user-grants.png'), fullPage: true });
  const onPhone = await open(phone);
  await login(base, onPhone.page, 'admin');
  await onPhone.page.goto(userUrl);
  await noSideways(onPhone.page, 'the user page with posts');
  await onPhone.page.locator('#grants').scrollIntoViewIfNeeded();
  await onPhone.page.screenshot({ path: join(shots, 'phone-admin-user-grants.png'), fullPage: true });
  await onPhone.ctx.close();

  // The user can act there now, as 派遣员 of 三桥街道.
  const user = await open(desk);
  await login(base, user.page, POSTS);
  await switchTo(user.page, '三桥街道');
  assert.match(await user.page.locator('header.topbar a.who').innerText(), /派遣员/);
  assert.doesNotMatch(await user.page.locator('header.topbar a.who').innerText(), /总网格长/);

  // Taken away again: the user's next page is back at home.
  // The page is already ?saved=1, so wait for the reloaded list rather than the URL.
  await added.locator('button.chip-x').click();
  await added.waitFor({ state: 'detached' });
  assert.equal(await posts.count(), 5);
  await user.page.goto(base + '/');
  assert.match(await user.page.locator('main h1').innerText(), new RegExp(COMMUNITY));
  assert.equal(await user.page.locator('header.topbar form.node-switch option', { hasText: '三桥街道' }).count(), 0);

  // Every step is in the audit log.
  const id = userUrl.split('/').pop();
  await page.goto(`${base}/admin/audit?object_type=user&object_id=${id}`);
  const log = await page.locator('table.audit').innerText();
  for (const label of ['修改用户', '切换岗位']) assert.match(log, new RegExp(label));
  assert.deepEqual(page.errors, []);
  assert.deepEqual(user.page.errors, []);
  await user.ctx.close();
  await ctx.close();
});

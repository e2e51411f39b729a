// Browser test: Debian's chromium driven by playwright-core, against the
// real `fengqiao demo` server. Logs in as the demo administrator, walks the
// grid tree down to one grid, and checks that its polygon is drawn and its
// members are listed; then checks the field page on a phone-sized screen.
// Screenshots of each screen are written to ../../screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const shots = join(here, '..', '..', 'screenshots');
const bin = process.env.FENGQIAO_BIN || join(here, '..', '..', 'target', 'debug', 'fengqiao');
let server, base, browser, dir;

before(async () => {
  mkdirSync(shots, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'fq-browser-'));
  server = spawn(bin, ['demo', '--db', `sqlite://${dir}/demo.db`, '--data-dir', dir, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  base = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start: ' + out)), 120000);
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    });
    server.on('exit', (code) => reject(new Error('server exited ' + code + ': ' + out)));
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  server?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function login(page, user) {
  await page.goto(base + '/login');
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', 'Fengqiao@2026');
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.click('button[type=submit]')]);
}

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

  await page.goto(base + '/map');
  await page.waitForSelector('#big-map[data-loaded]');
  assert.equal(await page.locator('#big-map').getAttribute('data-loaded'), '897');
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(shots, 'desk-map.png') });
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

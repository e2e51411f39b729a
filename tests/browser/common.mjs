// Shared set-up of the browser tests: a real `fengqiao demo` server on a
// free port and Debian's chromium through playwright-core.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const shots = join(here, '..', '..', 'screenshots');
const bin = process.env.FENGQIAO_BIN || join(here, '..', '..', 'target', 'debug', 'fengqiao');

export async function start() {
  mkdirSync(shots, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'fq-browser-'));
  const server = spawn(bin, ['demo', '--db', `sqlite://${dir}/demo.db`, '--data-dir', dir, '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start: ' + out)), 120000);
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    });
    server.on('exit', (code) => reject(new Error('server exited ' + code + ': ' + out)));
  });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // Every page any test opens reports what our Content-Security-Policy
  // refused (an inline script or handler, a foreign host); stop() fails the
  // file if anything was refused.
  const violations = [];
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (...args) => {
    const ctx = await newContext(...args);
    ctx.on('page', (page) => watchCsp(page, violations));
    return ctx;
  };
  const newPage = browser.newPage.bind(browser);
  browser.newPage = async (...args) => {
    const page = await newPage(...args);
    watchCsp(page, violations);
    return page;
  };
  return {
    base, browser, violations,
    async stop() {
      await browser.close();
      // Let the server finish its graceful stop (it checkpoints the database
      // and anchors the audit chain in the directory) before removing it.
      if (server.exitCode === null && server.signalCode === null) {
        const exited = new Promise((resolve) => server.once('exit', resolve));
        server.kill('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15000))]);
      }
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
      if (violations.length) {
        throw new Error('Content-Security-Policy violations:\n' + violations.join('\n'));
      }
    },
  };
}

function watchCsp(page, violations) {
  page.on('console', (msg) => {
    const text = msg.text();
    if (/Content Security Policy|Refused to (execute|load|apply|connect|frame)/.test(text)) {
      violations.push(page.url() + ': ' + text);
    }
  });
}

export async function login(base, page, user) {
  await page.goto(base + '/login');
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', 'Fengqiao@2026');
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.click('button[type=submit]')]);
}

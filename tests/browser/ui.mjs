// Drives the node's web UI (the admin listener's /) in Debian's chromium
// through playwright-core. Started by tests/system/test_ui_browser.py, which
// owns the node and sends requests when told:
//
//   node ui.mjs ADMIN_URL TOKEN
//     opens ADMIN_URL/#token=TOKEN, waits for the counter flow's stack of
//     blocks, prints "SEND" and reads one line from stdin (the test has sent
//     requests: 3 ok, 1 failing); then waits for the statistics and the live
//     executions to show them; prints "PASS" (any failure is thrown).
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const WAIT_MS = 20000;
const [adminUrl, token] = process.argv.slice(2);
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(`${adminUrl}/#token=${token}`);
  const stack = page.locator('.flow[data-flow="counter"] .block');
  await stack.nth(2).waitFor({ timeout: WAIT_MS });
  const ids = await stack.evaluateAll((cards) => cards.map((c) => c.dataset.block));
  if (JSON.stringify(ids) !== JSON.stringify(["count", "counter", "reply"]))
    throw new Error(`the stack of blocks: ${JSON.stringify(ids)}`);
  if (await page.evaluate(() => location.hash) !== "") throw new Error("the token stayed in the address bar");
  console.log("SEND");
  await lines.next();
  const stats = page.locator('.block[data-block="counter"] .stats');
  await page.waitForFunction(
    () => /3 ok · 1 errors/.test(document.querySelector('.block[data-block="counter"] .stats')?.textContent || ""),
    null, { timeout: WAIT_MS });
  const text = await stats.textContent();
  if (!/p50 ≤ [0-9.]+ ms/.test(text)) throw new Error(`durations missing: ${text}`);
  await page.waitForFunction(() => document.querySelectorAll("#events div").length >= 4, null, { timeout: WAIT_MS });
  const events = await page.locator("#events div").allTextContents();
  if (!events.some((e) => /counter\/counter {2}key=k9 {2}Exception/.test(e)))
    throw new Error(`the failing execution is not among the live ones: ${JSON.stringify(events)}`);
  await page.locator("#events div.error").first().click();
  const detail = await page.locator("#detail").textContent();
  if (!detail.includes('"status": "Exception"')) throw new Error(`the event's detail: ${detail.slice(0, 300)}`);
  if (problems.length) throw new Error(`errors in the page: ${problems.join("; ")}`);
  console.log("PASS");
} finally {
  stdin.close();
  await browser.close();
}

// Time to render a page, in Debian's chromium through playwright-core (from
// tests/browser/node_modules): for benchmarks/run's `ui` scenario.
//
//   node ui_render.mjs URL READY_EXPRESSION ROUNDS
//
// Each round opens URL in a new browser context (no cache) at 1280×800 and
// polls READY_EXPRESSION (JavaScript evaluated in the page) until it is
// true; prints one JSON line: {"ms": [...]}, each the page's
// performance.now() at that moment (milliseconds since navigation started),
// and {"bytes": N} the bytes of scripts the page loaded (as sent).
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), "..", "tests", "browser", "package.json"));
const { chromium } = require("playwright-core");

const [url, ready, roundsText] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const ms = [];
let bytes = 0;
try {
  for (let i = 0; i < Number(roundsText); i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    let scripts = 0;
    page.on("response", async (r) => {
      if (r.request().resourceType() !== "script") return;
      const sizes = await r.request().sizes().catch(() => null);
      if (sizes) scripts += sizes.responseBodySize;
    });
    await page.goto(url);
    await page.waitForFunction(ready, null, { timeout: 60000, polling: 5 });
    ms.push(await page.evaluate(() => performance.now()));
    bytes = scripts;
    await context.close();
  }
  console.log(JSON.stringify({ ms, bytes }));
} finally {
  await browser.close();
}

// What the UI's browser scripts share: Debian's chromium through
// playwright-core at 1280×800, the lines the owning test writes to stdin,
// and screenshots of each view (in $SHOTS, default tests/browser/screenshots/,
// git-ignored; docs/ui.md shows two of them).
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
export const WAIT_MS = 20000;
const SHOTS = process.env.SHOTS || join(dirname(fileURLToPath(import.meta.url)), "screenshots");

export async function launch() {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  return { browser, page, problems };
}

// The next line the test wrote (it answers each line this script prints).
export function stdinLines() {
  const rl = createInterface({ input: process.stdin });
  const it = rl[Symbol.asyncIterator]();
  return {
    async next() {
      const { value, done } = await it.next();
      if (done) throw new Error("stdin closed before the test answered");
      return value;
    },
    close: () => rl.close(),
  };
}

export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, name + ".png") });
}

// Answers the page's prompt() and confirm() dialogs: `answers` maps the
// start of a prompt's text to its answer; confirm() is accepted.
export function answerDialogs(page, answers) {
  page.on("dialog", async (d) => {
    const match = Object.keys(answers).find((start) => d.message().startsWith(start));
    if (d.type() === "prompt" && match === undefined) {
      await d.dismiss();
      throw new Error(`an unexpected prompt: ${d.message()}`);
    }
    await d.accept(d.type() === "prompt" ? answers[match] : undefined);
  });
}

// Waits until the element's text matches `re`; the error names what was
// shown instead.
export async function waitText(page, selector, re, what, timeout = WAIT_MS) {
  try {
    await page.waitForFunction(([s, src]) => new RegExp(src).test(document.querySelector(s)?.textContent || ""),
      [selector, re.source], { timeout });
  } catch {
    const shown = await page.locator(selector).first().textContent().catch(() => "(nothing)");
    throw new Error(`${what}: ${selector} shows ${JSON.stringify(shown)}`);
  }
}

// Replaces the text of the editor (CodeMirror) with `text`, as pasted.
export async function replaceEditorText(page, text) {
  await page.locator("#editor .cm-content").click();
  await page.keyboard.press("Control+a");
  await page.keyboard.insertText(text);
}

// Fixing a bug from the web UI, in Debian's chromium through playwright-core.
// Started by tests/system/test_ui_fix_browser.py, which owns the node and
// answers each line this script prints:
//
//   node ui_fix.mjs ADMIN_URL TOKEN
//     READY          the page shows the stack; the test sends a request the
//                    function fails on (a negative step) and answers
//     (Errors tab: the failure is queued)
//     (a proposal that does not fix it: its test case fails, it cannot be
//     merged; dropped. A proposal that fixes it: tests pass, merged)
//     MERGED REV     the test checks the node runs REV and answers
//     REPLAYED       the error was replayed from the Errors tab; the test
//                    checks the key's state and answers
//     APPLIED REV    an edit applied from the Files tab (and the next one
//                    begun); the test deploys
//                    from its checkout (refused: it lacks REV), catches up
//                    and deploys another change from the CLI, and answers
//     (the next edit's Apply reports the conflict; Rebase, then Apply)
//     APPLIED REV    the test checks and answers
//     PASS
import { WAIT_MS, answerDialogs, launch, replaceEditorText, shot, stdinLines, waitText } from "./lib.mjs";

const [adminUrl, token, fixedSource] = process.argv.slice(2);
const lines = stdinLines();
const { browser, page, problems } = await launch();

const answers = { "Commit message": "", "A name for the proposal": "", "Describe the change": "" };
answerDialogs(page, answers);

async function openEditor(path) {
  await page.goto(`${adminUrl}/#files/${path}`);
  await page.locator("#editor .cm-content").waitFor({ timeout: WAIT_MS });
}

async function appendLine(text) {
  await page.locator("#editor .cm-content").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.insertText("\n" + text + "\n");
}

async function propose(name, message) {
  answers["A name for the proposal"] = name;
  answers["Describe the change"] = message;
  await page.locator("#propose").click();
  const row = page.locator(`.proposal[data-proposal="${name}"]`);
  await row.waitFor({ timeout: WAIT_MS });
  await row.locator("button", { hasText: "Run tests" }).click();
  await page.waitForFunction((n) => /tests (passed|failed)/.test(
    document.querySelector(`.proposal[data-proposal="${n}"]`)?.textContent || ""), name, { timeout: 60000 });
  return row;
}

async function applyEdit(message) {
  answers["Commit message"] = message;
  await page.waitForFunction(() => !document.getElementById("apply").disabled, null, { timeout: WAIT_MS });
  await page.locator("#apply").click();
}

try {
  await page.goto(`${adminUrl}/#token=${token}`);
  await page.locator('.flow[data-flow="counter"] .block').nth(2).waitFor({ timeout: WAIT_MS });
  console.log("READY");
  await lines.next();

  // The failure is in the error queue.
  await page.locator("#tab-errors").click();
  const record = page.locator(".error-record").first();
  await record.waitFor({ timeout: WAIT_MS });
  if (!/Exception counter\/counter key=k1 .*negative step/.test(await record.textContent()))
    throw new Error(`the error record: ${await record.textContent()}`);

  // A proposal that does not fix it: the project's test case fails.
  await openEditor("functions/counter.js");
  await appendLine("// a comment does not fix it");
  const wrong = await propose("comment-only", "a comment");
  if (!(await wrong.textContent()).includes("tests failed")) throw new Error(`comment-only: ${await wrong.textContent()}`);
  if (!(await wrong.locator("button", { hasText: "Merge and deploy" }).isDisabled()))
    throw new Error("a proposal whose test case fails can be merged");
  await wrong.locator("button", { hasText: "Diff" }).click();
  await waitText(page, "#proposal-detail", /negative step/, "the failing test's output");
  await shot(page, "proposal-failed");
  await wrong.locator("button", { hasText: "Drop" }).click();
  await page.waitForFunction(() => !document.querySelector('.proposal[data-proposal="comment-only"]'), null,
    { timeout: WAIT_MS });

  // The fix, proposed: its tests pass and it merges onto the running revision.
  await openEditor("functions/counter.js");
  await replaceEditorText(page, fixedSource);
  const fix = await propose("allow-negative", "count negative steps too");
  if (!(await fix.textContent()).includes("tests passed")) throw new Error(`allow-negative: ${await fix.textContent()}`);
  await fix.locator("button", { hasText: "Merge and deploy" }).click();
  await waitText(page, "#notice", /Merged allow-negative: revision [0-9a-f]{12} runs now/, "the merge");
  const merged = (await page.locator("#notice").textContent()).match(/[0-9a-f]{12}/)[0];
  console.log("MERGED " + merged);
  await lines.next();

  // The queued failure, replayed after the fix.
  await page.locator("#tab-errors").click();
  await page.locator(".error-record").first().locator("button", { hasText: "Replay" }).click();
  await waitText(page, "#notice", /Error .* replayed/, "the replay");
  await page.waitForFunction(() => document.querySelectorAll(".error-record").length === 0, null, { timeout: WAIT_MS });
  console.log("REPLAYED");
  await lines.next();

  // An edit applied from the browser; the test then deploys from the CLI.
  await openEditor("functions/counter.js");
  await appendLine("// applied from the browser");
  await applyEdit("a comment from the browser");
  await waitText(page, "#notice", /Deployed revision [0-9a-f]{12}/, "the apply");
  const applied = (await page.locator("#notice").textContent()).match(/[0-9a-f]{12}/)[0];
  // The next edit starts on that revision, before the CLI's deploy.
  await appendLine("// a second comment from the browser");
  console.log("APPLIED " + applied);
  await lines.next();

  // The CLI deployed in between: Apply reports the conflict and keeps the
  // edit; Rebase puts it on top of the running revision.
  await page.locator("#apply").click();
  await waitText(page, "#problem", /Another deploy came first/, "the conflict");
  await shot(page, "files-conflict");
  if (!(await page.locator("#editor .cm-content").textContent()).includes("a second comment"))
    throw new Error("the conflicting edit was lost");
  await page.locator("button", { hasText: "Rebase" }).click();
  await waitText(page, "#revision", /./, "the revision");
  await applyEdit("a second comment, after the CLI's deploy");
  await waitText(page, "#notice", /Deployed revision [0-9a-f]{12}/, "the apply after the rebase");
  console.log("APPLIED " + (await page.locator("#notice").textContent()).match(/[0-9a-f]{12}/)[0]);
  await lines.next();
  if (problems.length) throw new Error(`errors in the page: ${problems.join("; ")}`);
  console.log("PASS");
} finally {
  lines.close();
  await browser.close();
}

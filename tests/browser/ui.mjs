// Drives the node's web UI (the admin listener's /) in Debian's chromium
// through playwright-core. Started by tests/system/test_ui_browser.py, which
// owns the node and sends requests when told:
//
//   node ui.mjs ADMIN_URL TOKEN
//     opens ADMIN_URL/#token=TOKEN, waits for the counter flow's stack of
//     blocks, prints "SEND" and reads one line from stdin (the test has sent
//     requests: 3 ok, 1 failing); then waits for the statistics and the live
//     executions to show them; expands the function's code, edits it in the
//     Files tab (a broken edit first: its problem is shown with file and
//     line; then a good one, checked and applied with a commit message) and
//     prints "APPLIED REVISION", reads a line (the test checked the node
//     runs it); then the History tab (the diff of the edit, a roll back to
//     the revision before), the Errors tab (the failed call's record,
//     discarded), a proposal (saved, its tests run and failing, so it
//     cannot be merged, then dropped), the Graph tab (this node) and the
//     completion of a driver file's keys from its kind's schema; prints
//     "PASS" (any failure is thrown).
import { WAIT_MS, answerDialogs, launch, shot, stdinLines } from "./lib.mjs";

const [adminUrl, token] = process.argv.slice(2);
const lines = stdinLines();
const { browser, page, problems } = await launch();
try {
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
  await page.waitForFunction(() => !document.querySelector("#detail .state-before")?.textContent.includes("…"),
    null, { timeout: WAIT_MS });
  const detail = await page.locator("#detail").textContent();
  if (!detail.includes("State before")) throw new Error(`no state before: ${detail.slice(0, 300)}`);
  if (!detail.includes('"status": "Exception"')) throw new Error(`the event's detail: ${detail.slice(0, 300)}`);
  await shot(page, "flows");

  // Configuration and Code expand in place.
  const code = page.locator('.block[data-block="counter"] .part[data-part="code"]');
  await code.locator(".expand").click();
  const source = await code.locator("pre.source").textContent();
  if (!source.includes("asked to fail")) throw new Error(`the expanded code: ${source.slice(0, 200)}`);

  // Edit: from the block's link to the editor; a broken edit is refused
  // with its file and line, a good one is checked and applied.
  answerDialogs(page, {
    "A name for the proposal": "ui-proposal",
    "Describe the change": "a proposal from the browser",
    "Commit message": "count by one, edited in the browser",
  });
  await code.locator("a.edit").click();
  await page.locator("#editor .cm-content").waitFor({ timeout: WAIT_MS });
  await page.locator("#editor .cm-content").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type("\nthis is not javascript\n");
  await page.locator("#check").click();
  await page.locator("#edit-problems a.problem").first().waitFor({ timeout: WAIT_MS });
  const refused = await page.locator("#edit-problems").textContent();
  if (!refused.includes("functions/counter.js:")) throw new Error(`the broken edit's problem: ${refused}`);
  await shot(page, "files-problem");
  for (let i = 0; i < 20 && (await page.locator("#editor .cm-content").textContent()).includes("not javascript"); i++)
    await page.keyboard.press("Control+z");
  if ((await page.locator("#editor .cm-content").textContent()).includes("not javascript"))
    throw new Error("undo did not take the broken line out");
  await page.locator("#editor .cm-content").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type("\n// edited in the browser\n");
  await page.waitForFunction(() => !document.getElementById("apply").disabled, null, { timeout: WAIT_MS })
    .catch(async () => {
      throw new Error(`the edit did not register: ${await page.locator("#editor .cm-content").textContent()} / ` +
        `${await page.locator("#edit-status").textContent()}`);
    });
  await page.locator("#apply").click();
  await page.waitForFunction(() => /Deployed revision [0-9a-f]{12}/.test(document.getElementById("notice").textContent),
    null, { timeout: WAIT_MS });
  const applied = (await page.locator("#notice").textContent()).match(/[0-9a-f]{12}/)[0];
  if (!(await page.locator("#revision").textContent()).includes(applied))
    throw new Error("the header does not show the applied revision");
  console.log("APPLIED " + applied);
  await lines.next();

  // History: the edit's diff, then a roll back to the revision before it.
  await page.locator("#tab-history").click();
  const newest = page.locator(".revision").first();
  await newest.waitFor({ timeout: WAIT_MS });
  if (!(await newest.textContent()).includes("count by one, edited in the browser"))
    throw new Error(`the newest revision: ${await newest.textContent()}`);
  await newest.locator(".message").click();
  await page.waitForFunction(() => document.querySelector("#history-diff pre.diff")?.textContent.includes("+// edited in the browser"),
    null, { timeout: WAIT_MS });
  await shot(page, "history");
  await page.locator(".revision").nth(1).locator("button").click();
  await page.waitForFunction(() => /Rolled back: revision [0-9a-f]{12}/.test(document.getElementById("notice").textContent),
    null, { timeout: WAIT_MS });
  await page.waitForFunction(() => /Roll back to/.test(document.querySelector(".revision.active")?.textContent || ""),
    null, { timeout: WAIT_MS });

  // Errors: the failed call's record, discarded.
  await page.locator("#tab-errors").click();
  const record = page.locator(".error-record").first();
  await record.waitFor({ timeout: WAIT_MS });
  if (!/Exception counter\/counter key=k9/.test(await record.textContent()))
    throw new Error(`the error record: ${await record.textContent()}`);
  await shot(page, "errors");
  await record.locator("button", { hasText: "Discard" }).click();
  await page.waitForFunction(() => document.querySelectorAll(".error-record").length === 0, null, { timeout: WAIT_MS });

  // Propose a change: saved, not deployed; its tests run (this project has
  // no cases: they fail) and it cannot be merged; dropped.
  await page.goto(`${adminUrl}/#files/functions/counter.js`);
  await page.locator("#editor .cm-content").waitFor({ timeout: WAIT_MS });
  await page.locator("#editor .cm-content").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type("\n// proposed in the browser\n");
  const before = await page.locator("#revision").textContent();
  await page.locator("#propose").click();
  const proposal = page.locator('.proposal[data-proposal="ui-proposal"]');
  await proposal.waitFor({ timeout: WAIT_MS });
  if (!(await proposal.textContent()).includes("tests not run")) throw new Error(await proposal.textContent());
  await page.waitForFunction(() => document.querySelector("#proposal-detail pre.diff")?.textContent.includes("+// proposed in the browser"),
    null, { timeout: WAIT_MS });
  if ((await page.locator("#revision").textContent()) !== before) throw new Error("a proposal deployed something");
  await shot(page, "proposals");
  await proposal.locator("button", { hasText: "Run tests" }).click();
  await page.waitForFunction(() => /tests failed/.test(document.querySelector('.proposal[data-proposal="ui-proposal"]')?.textContent || ""),
    null, { timeout: 60000 });
  if (!(await proposal.locator("button", { hasText: "Merge and deploy" }).isDisabled()))
    throw new Error("a proposal whose tests failed can be merged");
  await proposal.locator("button", { hasText: "Drop" }).click();
  await page.waitForFunction(() => !document.querySelector(".proposal"), null, { timeout: WAIT_MS });

  // Graph: an embedded node draws itself as its one node.
  await page.locator("#tab-graph").click();
  await page.locator(".graph-node .actor.shard").first().waitFor({ timeout: WAIT_MS });
  const drivers = await page.locator(".graph-node .actor.driver").allTextContents();
  if (JSON.stringify(drivers) !== JSON.stringify(["http.Request counter/count", "http.Response counter/reply"]))
    throw new Error(`the driver actors: ${JSON.stringify(drivers)}`);
  await shot(page, "graph");

  // Completion from the driver kind's schema: keys of an http.Request file.
  await page.goto(`${adminUrl}/#files/drivers/count.yaml`);
  await page.locator("#editor .cm-content").waitFor({ timeout: WAIT_MS });
  await page.locator("#editor .cm-content").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type("\nrou");
  const option = page.locator(".cm-tooltip-autocomplete li", { hasText: "routes" });
  await option.waitFor({ timeout: WAIT_MS });
  await page.locator(".cm-completionInfo").waitFor({ timeout: WAIT_MS });
  const info = await page.locator(".cm-completionInfo").textContent();
  if (!info.trim()) throw new Error("the completion has no description");
  await shot(page, "files-completion");
  if (problems.length) throw new Error(`errors in the page: ${problems.join("; ")}`);
  console.log("PASS");
} finally {
  lines.close();
  await browser.close();
}

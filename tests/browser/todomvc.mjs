// Drives the TodoMVC page in Debian's chromium through playwright-core.
// Started by tests/system/test_todomvc_browser.py, which owns the node:
//
//   node todomvc.mjs URL
//     phase 1 on URL: add, complete, edit, delete, filter, toggle all, clear
//     completed, reload; prints "RESTART <list id>" and reads one line from
//     stdin: the URL of the restarted node;
//     phase 2 there: opens the same list and finds the todos as they were.
//   prints "PASS" at the end; any failure is thrown (exit code 1).
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const WAIT_MS = 20000;

// Lines from stdin, buffered from the start (the test may write early).
const lines = createInterface({ input: process.stdin });
const pending = lines[Symbol.asyncIterator]();
async function nextLine() {
  const { value, done } = await pending.next();
  if (done) throw new Error("stdin closed before the restarted node's URL came");
  return value;
}

// The todos the page shows, as [title, completed] pairs, and its counter.
function shown() {
  const todos = [...document.querySelectorAll(".todo-list li")].map((li) => [
    li.querySelector("label").textContent,
    li.classList.contains("completed"),
  ]);
  const count = document.querySelector(".footer").hidden ? "" : document.querySelector(".todo-count").textContent;
  return { todos, count };
}

async function expectShown(page, todos, count, what) {
  const want = JSON.stringify({ todos, count });
  try {
    await page.waitForFunction(
      ([fn, want]) => JSON.stringify(new Function(`return (${fn})()`)()) === want,
      [shown.toString(), want],
      { timeout: WAIT_MS },
    );
  } catch (e) {
    const got = await page.evaluate(shown);
    const problem = await page.locator(".problem").textContent();
    throw new Error(`${what}: expected ${want}, the page shows ${JSON.stringify(got)}` +
      (problem ? ` (problem shown: ${problem})` : ""));
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function addTodo(page, title) {
  await page.locator(".new-todo").fill(title);
  await page.locator(".new-todo").press("Enter");
}

const item = (page, title) => page.locator(".todo-list li", { hasText: title });

async function phase1(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector(".list-id").textContent !== "", null, { timeout: WAIT_MS });
  await expectShown(page, [], "", "a new list is empty");

  // TodoMVC's stylesheet, from npm, is served from public/node_modules/.
  const position = await page.evaluate(() => getComputedStyle(document.querySelector(".todoapp")).position);
  check(position === "relative", `todomvc-app-css is not applied (.todoapp position: ${position})`);

  await addTodo(page, "Buy milk");
  await addTodo(page, "  Buy bread  ");
  await addTodo(page, "Walk the dog");
  await expectShown(page, [["Buy milk", false], ["Buy bread", false], ["Walk the dog", false]], "3 items left", "three added");

  await item(page, "Buy bread").locator(".toggle").check();
  await expectShown(page, [["Buy milk", false], ["Buy bread", true], ["Walk the dog", false]], "2 items left", "one completed");

  await item(page, "Buy milk").locator("label").dblclick();
  await item(page, "Buy milk").locator(".edit").fill("Buy oat milk");
  await item(page, "Buy milk").locator(".edit").press("Enter");
  await expectShown(page, [["Buy oat milk", false], ["Buy bread", true], ["Walk the dog", false]], "2 items left", "renamed with Enter");

  await item(page, "Walk the dog").locator("label").dblclick();
  await item(page, "Walk the dog").locator(".edit").fill("Walk the cat");
  await item(page, "Walk the dog").locator(".edit").press("Escape");
  await expectShown(page, [["Buy oat milk", false], ["Buy bread", true], ["Walk the dog", false]], "2 items left", "Escape cancels an edit");

  await item(page, "Walk the dog").hover();
  await item(page, "Walk the dog").locator(".destroy").click();
  await expectShown(page, [["Buy oat milk", false], ["Buy bread", true]], "1 item left", "one deleted");

  await page.locator(".filters a", { hasText: "Active" }).click();
  await expectShown(page, [["Buy oat milk", false]], "1 item left", "#/active");
  await page.locator(".filters a", { hasText: "Completed" }).click();
  await expectShown(page, [["Buy bread", true]], "1 item left", "#/completed");
  await page.locator(".filters a", { hasText: "All" }).click();
  await expectShown(page, [["Buy oat milk", false], ["Buy bread", true]], "1 item left", "#/");

  await page.locator(".toggle-all").check({ force: true });
  await expectShown(page, [["Buy oat milk", true], ["Buy bread", true]], "0 items left", "toggle all on");
  await page.locator(".toggle-all").uncheck({ force: true });
  await expectShown(page, [["Buy oat milk", false], ["Buy bread", false]], "2 items left", "toggle all off");

  await addTodo(page, "Temporary");
  await item(page, "Temporary").locator(".toggle").check();
  await expectShown(page, [["Buy oat milk", false], ["Buy bread", false], ["Temporary", true]], "2 items left", "before clear");
  await page.locator(".clear-completed").click();
  await expectShown(page, [["Buy oat milk", false], ["Buy bread", false]], "2 items left", "clear completed");
  check(await page.locator(".clear-completed").isHidden(), "Clear completed stays visible with nothing completed");

  await item(page, "Buy bread").locator(".toggle").check();
  const expected = [["Buy oat milk", false], ["Buy bread", true]];
  await expectShown(page, expected, "1 item left", "bread completed again");

  // A reload finds the same list (its id is kept in localStorage).
  await page.reload();
  await expectShown(page, expected, "1 item left", "after a reload");
  return expected;
}

async function main() {
  const url = process.argv[2];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
    headless: true,
  });
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
    const expected = await phase1(page, url);
    const listId = await page.locator(".list-id").textContent();
    console.log(`RESTART ${listId}`);
    const restarted = (await nextLine()).trim();

    // The restarted node may listen on another port (another origin, so
    // another localStorage): name the list in the address.
    await page.goto(`${restarted}?list=${encodeURIComponent(listId)}`);
    await expectShown(page, expected, "1 item left", "after the node restarted");
    console.log("PASS");
  } finally {
    await browser.close();
    lines.close();
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});

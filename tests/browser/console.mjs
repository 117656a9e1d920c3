// The hosted service's console in a real browser (manager/web), driven by
// tests/system/test_console_browser.py: argv[2] is the console's URL,
// argv[3] the first operator's invitation. Each line printed is a step the
// test acts on, then answers on stdin.
import { launch, shot, stdinLines, waitText, WAIT_MS } from "./lib.mjs";

const [url, operatorInvitation] = process.argv.slice(2);
const PASSWORD = "correct horse battery";
const lines = stdinLines();
const { browser, page: op, problems } = await launch();

async function step(text) {
  console.log(text);
  return lines.next();
}

async function fill(page, formId, values) {
  for (const [name, value] of Object.entries(values)) {
    const input = page.locator(`#${formId} [name="${name}"]`);
    if ((await input.evaluate((e) => e.tagName)) === "SELECT") await input.selectOption(value);
    else await input.fill(value);
  }
  await page.locator(`#${formId} button[type=submit]`).click();
}

try {
  // The first operator signs up from the mailed invitation.
  await op.goto(`${url}/#invitation=${operatorInvitation}`);
  await fill(op, "sign-up", { email: "op@example.com", name: "Op", password: PASSWORD, team: "ops" });
  await op.locator("#nav-operator").waitFor({ timeout: WAIT_MS });

  // Ada asks for an invitation, in a browser of her own.
  const adaContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const ada = await adaContext.newPage();
  ada.on("pageerror", (e) => problems.push(e.message));
  await ada.goto(`${url}/#/request`);
  await fill(ada, "request", { email: "ada@example.com", name: "Ada", note: "devices" });
  await waitText(ada, "#requested", /ada@example.com/, "the request's thanks");

  // The operator approves it; the test reads the mail and answers its token.
  await op.goto(`${url}/#/operator`);
  await waitText(op, "#requests", /ada@example\.com.*pending/, "ada's request, pending");
  await shot(op, "console-operator");
  await op.locator("#requests button", { hasText: "Approve" }).click();
  await waitText(op, "#notice", /Approved/, "the approval");
  const adaInvitation = await step("APPROVED");

  await ada.goto(`${url}/#invitation=${adaInvitation}`);
  await fill(ada, "sign-up", { email: "ada@example.com", name: "Ada", password: PASSWORD, team: "acme" });
  await waitText(ada, "#members", /ada@example\.com\s*owner/, "ada owns acme");

  // Ada invites Dave as a developer; the test signs him up from the mail.
  await fill(ada, "invite", { email: "dave@example.com", role: "developer" });
  await waitText(ada, "#notice", /mailed to dave@example.com/, "dave's invitation");
  await step("INVITED");
  await ada.reload();
  await waitText(ada, "#members", /dave@example\.com/, "dave in acme");
  await shot(ada, "console-members");

  // An API token for the CLI: the test deploys with it.
  await ada.goto(`${url}/#/teams/acme/tokens`);
  await fill(ada, "make-token", { name: "cli", role: "developer" });
  await waitText(ada, "#token-value", /^fs_tok_/, "the new token, shown once");
  const token = await ada.locator("#token-value").textContent();
  await step("TOKEN " + token);

  // Dave becomes a viewer.
  await ada.goto(`${url}/#/teams/acme`);
  await ada.locator('#members select[data-member="dave@example.com"]').selectOption("viewer");
  await waitText(ada, "#notice", /dave@example.com is now viewer/, "dave's new role");
  await step("DEMOTED");

  // Usage against the plan.
  await ada.goto(`${url}/#/teams/acme/usage`);
  await waitText(ada, "#usage-summary", /^[1-9][\d,]* executions on the free plan/, "acme's usage");
  if ((await ada.locator("#usage-chart rect.bar").count()) < 1) throw new Error("the usage chart has no bar");
  await shot(ada, "console-usage");

  // The operator turns paid plans on and prices pro at Stripe.
  await op.goto(`${url}/#/operator`);
  await op.locator("#paid-enabled").check();
  await waitText(op, "#notice", /Paid plans are on/, "paid plans on");
  await fill(op, "change-plan", { plan: "pro", stripePrice: "price_pro_monthly" });
  await waitText(op, "#notice", /Plan pro changed/, "pro's price");

  // Ada subscribes; the test completes the checkout at the stand-in.
  await ada.goto(`${url}/#/teams/acme/billing`);
  await ada.locator("#plans button", { hasText: "Subscribe" }).first().click();
  await ada.locator("#checkout-link").waitFor({ timeout: WAIT_MS });
  await step("CHECKOUT " + (await ada.locator("#checkout-link").getAttribute("href")));
  await ada.reload();
  await waitText(ada, "#subscription", /subscription: pro: active/, "the active subscription");

  // The operator invoices the month; the test has the stand-in pay it.
  await fill(op, "run-invoices", { month: await step("MONTH?") });
  await waitText(op, "#notice", /1 invoices made, 1 charged/, "the invoice run");
  await step("INVOICED");
  await ada.reload();
  await waitText(ada, "#invoices", /\$20\.00\s*paid/, "the paid invoice");
  await shot(ada, "console-billing");

  // Dedicated nodes: the operator puts acme on the dedicated plan and a pool
  // of its own; ada's tokens page says where to deploy.
  await op.goto(`${url}/#/operator`);
  await fill(op, "set-plan", { team: "acme", plan: "dedicated" });
  await waitText(op, "#notice", /acme is on dedicated/, "acme on the dedicated plan");
  await fill(op, "set-pool", { team: "acme", pool: "acme-1" });
  await waitText(op, "#notice", /acme runs on pool acme-1/, "acme's pool");
  await waitText(op, "#teams", /acme\s*dedicated\s*acme-1/, "acme's pool in the teams table");
  await ada.goto(`${url}/#/teams/acme/tokens`);
  await waitText(ada, "#placement", /pool acme-1/, "where acme deploys");

  if (problems.length) throw new Error("page errors: " + problems.join("; "));
  console.log("PASS");
} catch (e) {
  console.error(e.stack || String(e));
  console.log("FAIL " + String(e.message || e).split("\n")[0]);
  process.exitCode = 1;
} finally {
  lines.close();
  await browser.close();
}

// The verify page in a real browser: Debian's headless Chromium, driven by playwright-core.
// A stamped file, a stripped file (manifest recovered from the registry), a tampered file and
// an unmarked photo must each show the right verdict; the page must work from the keyboard,
// name its controls, and fit a phone-sized screen.
//
// usage: node tests/browser/verify-page.mjs HALLMARK_BIN [--screenshot docs/verify-page.png]
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = resolve(process.argv[2] || join(root, "target/debug/hallmark"));
const shotAt = process.argv.indexOf("--screenshot");
const screenshot = shotAt > 0 ? resolve(process.argv[shotAt + 1]) : null;
const work = mkdtempSync(join(tmpdir(), "hallmark-browser-"));
const env = { ...process.env, NO_COLOR: "1" };

function hm(args, ok = [0]) {
  const r = spawnSync(bin, args, { env, encoding: "utf8", cwd: work });
  if (!ok.includes(r.status)) {
    throw new Error(`hallmark ${args.join(" ")} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

let failures = 0;
function check(cond, what) {
  console.log(`${cond ? "ok  " : "FAIL"} ${what}`);
  if (!cond) failures++;
}

const keys = join(work, "keys");
const db = `sqlite:${join(work, "registry.db")}`;
hm(["keygen", "--out", keys, "-q"]);
const token = hm(["serve", "token", "create", "--db", db]).stdout.trim().split("\n").pop();

const server = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--db", db, "--keys", keys], {
  env,
  stdio: ["ignore", "ignore", "pipe"],
});
const url = await new Promise((res, rej) => {
  let buf = "";
  const t = setTimeout(() => rej(new Error("server did not start:\n" + buf)), 60000);
  server.stderr.on("data", (d) => {
    buf += d;
    const m = buf.match(/listening on (http:\/\/\S+)/);
    if (m) {
      clearTimeout(t);
      res(m[1]);
    }
  });
  server.on("exit", (c) => rej(new Error(`server exited ${c}:\n${buf}`)));
});

let browser;
try {
  // The four files: stamped (registered), stripped, tampered, unmarked.
  const photo = join(root, "testdata/photos/p06_seeding_1920x1080.jpg");
  const stamped = join(work, "stamped.jpg");
  hm(["stamp", photo, "-o", stamped, "--keys", keys, "--model", "sdxl-browser-test",
      "--registry", url, "--registry-token", token]);
  const stripped = join(work, "stripped.jpg");
  hm(["strip", stamped, "-o", stripped]);
  const tampered = join(work, "tampered.jpg");
  const bytes = readFileSync(stamped);
  bytes[bytes.length - 2000] ^= 0x5a; // inside the scan, after the manifest
  writeFileSync(tampered, bytes);
  const unmarked = join(root, "testdata/photos/p02_coffee_600x400.png");

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(url + "/");

  // Accessible: the file control has a name, and the keyboard reaches it.
  const name = await page.getByLabel(/choose an image/i).count();
  check(name === 1, "the file input is labelled 'Choose an image'");
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  check(focused === "file", "Tab reaches the file input first");
  const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  check(fits, "no horizontal scrolling on a 390 px wide screen");

  async function verdictOf(file) {
    await page.evaluate(() => { document.getElementById("verdict").dataset.verdict = ""; });
    await page.setInputFiles("#file", file);
    await page.waitForFunction(() => document.getElementById("verdict").dataset.verdict, null, { timeout: 120000 });
    return page.evaluate(() => ({
      verdict: document.getElementById("verdict").dataset.verdict,
      heading: document.getElementById("verdict").textContent,
      summary: document.getElementById("summary").textContent,
      facts: document.getElementById("facts").textContent,
      reasons: document.getElementById("reasons").textContent,
    }));
  }

  let r = await verdictOf(stamped);
  check(r.verdict === "ai_generated" && r.heading === "AI-generated", `stamped: ${r.verdict} (${r.summary})`);
  check(r.facts.includes("Signer"), "stamped: the signer is shown");

  r = await verdictOf(tampered);
  check(r.verdict === "tampered", `tampered: ${r.verdict} (${r.summary})`);

  r = await verdictOf(unmarked);
  check(r.verdict === "no_evidence", `unmarked: ${r.verdict} (${r.summary})`);

  r = await verdictOf(stripped);
  check(r.verdict === "ai_generated", `stripped: ${r.verdict} (${r.summary})`);
  check(r.summary.includes("manifest recovered from the registry"), "stripped: the manifest is recovered from the registry");
  check(r.facts.includes("sdxl-browser-test"), "stripped: the model is shown");
  if (screenshot) {
    await page.setViewportSize({ width: 390, height: 1100 });
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`screenshot: ${screenshot}`);
  }

  // Bad input is an error shown in words, not a crash.
  const junk = join(work, "junk.jpg");
  writeFileSync(junk, "this is not an image");
  r = await verdictOf(junk);
  check(r.verdict === "error" && r.summary.length > 0, `not an image: ${r.verdict} (${r.summary})`);

  // No upload anywhere but this server.
  const elsewhere = requests.filter((u) => !u.startsWith(url));
  check(elsewhere.length === 0, `requests only to this server (${elsewhere.join(", ") || "none elsewhere"})`);
} finally {
  if (browser) await browser.close();
  server.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
}
if (failures > 0) {
  console.error(`${failures} browser check(s) failed`);
  process.exit(1);
}
console.log("all browser checks passed");

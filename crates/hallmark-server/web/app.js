// The verify page: sends the chosen file to this server's /v1/verify and shows the report.
// Every value from the report is set as text (textContent), never parsed as HTML.
"use strict";

const VERDICTS = {
  ai_generated: "AI-generated",
  ai_edited: "AI-edited",
  signed_no_ai_claim: "Signed, no AI claim",
  tampered: "Tampered",
  no_evidence: "No evidence found",
};

const $ = (id) => document.getElementById(id);

function fact(dl, name, value) {
  if (value === undefined || value === null || value === "") return;
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = String(value);
  dl.append(dt, dd);
}

function show(report, fileName) {
  $("result").hidden = false;
  $("status").textContent = fileName;
  const v = $("verdict");
  v.className = "verdict " + report.verdict;
  v.textContent = VERDICTS[report.verdict] || report.verdict;
  v.dataset.verdict = report.verdict;
  $("summary").textContent = report.summary;
  const facts = $("facts");
  facts.replaceChildren();
  const c = report.c2pa;
  const r = report.registry;
  const w = report.watermark;
  if (c) {
    fact(facts, "Manifest", c.validation_state === "Invalid" ? "present, does not validate" : "present, signature valid");
    fact(facts, "Signer", c.signer && (c.signer.issuer || c.signer.common_name));
    fact(facts, "Model", c.software_agent);
    fact(facts, "Signed at", c.signer && c.signer.time);
  }
  if (w) {
    fact(facts, "Watermark", w.detected ? "found, ID " + w.payload : "not found");
  }
  if (r) {
    fact(facts, "Recovered manifest", r.manifest_id);
    fact(facts, "Signer", r.signer);
    fact(facts, "Model", r.model || "not recorded");
    fact(facts, "Stamped at", r.time);
  }
  const ul = $("reasons");
  ul.replaceChildren();
  for (const why of report.reasons || []) {
    const li = document.createElement("li");
    li.textContent = why;
    ul.append(li);
  }
  $("raw").textContent = JSON.stringify(report, null, 2);
}

function fail(message, fileName) {
  $("result").hidden = false;
  $("status").textContent = fileName || "";
  const v = $("verdict");
  v.className = "verdict error";
  v.dataset.verdict = "error";
  v.textContent = "Could not check this file";
  $("summary").textContent = message;
  $("facts").replaceChildren();
  $("reasons").replaceChildren();
  $("raw").textContent = "";
}

async function check(file) {
  if (!file) return;
  $("result").hidden = false;
  $("status").textContent = "Checking " + file.name + "…";
  $("verdict").textContent = "";
  $("verdict").dataset.verdict = "";
  $("summary").textContent = "";
  try {
    const resp = await fetch("/v1/verify", {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: file,
    });
    const body = await resp.json().catch(() => null);
    if (!resp.ok || !body) {
      fail((body && body.error && body.error.message) || "The server answered " + resp.status + ".", file.name);
      return;
    }
    show(body, file.name);
  } catch (e) {
    fail("The server could not be reached.", file.name);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const input = $("file");
  const drop = $("drop");
  input.addEventListener("change", () => check(input.files[0]));
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => check(e.dataTransfer.files[0]));
});

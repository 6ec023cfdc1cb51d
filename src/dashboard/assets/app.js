// stablebuild dashboard: copy buttons and the live view of pins in flight. The pages work
// without it. Text from the server is set with textContent, never parsed as HTML.
"use strict";

function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
      } catch (_) {
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
  }
}

function pinRow(reference, value, max, text) {
  const row = document.createElement("tr");
  row.dataset.pin = reference;
  const name = document.createElement("td");
  name.textContent = reference;
  const cell = document.createElement("td");
  const bar = document.createElement("progress");
  if (max > 0) { bar.max = max; bar.value = value; }
  const label = document.createElement("span");
  label.className = "progress-text";
  label.textContent = text;
  cell.append(bar, " ", label);
  row.append(name, cell);
  return row;
}

// Poll /progress.json while the page shows pins in flight; when the pin this page was
// opened for (?pinning=) has ended, reload the cached tags to show its row and result.
function liveProgress() {
  const section = document.getElementById("in-flight");
  if (!section) return;
  const pinning = new URLSearchParams(location.search).get("pinning");
  const body = section.querySelector("tbody");
  const tick = async () => {
    let data;
    try {
      const resp = await fetch("/progress.json", { cache: "no-store" });
      if (!resp.ok) return;
      data = await resp.json();
    } catch (_) { return; }
    const rows = data.pins.map(p => pinRow(p.reference, p.bytes_done, p.bytes_total, p.text));
    for (const r of data.waiting) rows.push(pinRow(r, 0, 0, "starting…"));
    body.replaceChildren(...rows);
    const none = rows.length === 0;
    section.querySelector("table").hidden = none;
    section.querySelector(".empty").hidden = !none;
    const running = data.pins.some(p => p.reference === pinning) || data.waiting.includes(pinning);
    if (pinning && !running) location.replace("/");
  };
  tick();
  setInterval(tick, 1000);
}

document.addEventListener("DOMContentLoaded", () => { copyButtons(); liveProgress(); });

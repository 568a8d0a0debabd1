// rlaif web reviewer. Model text is only ever set with textContent: never innerHTML.
"use strict";

const $ = (id) => document.getElementById(id);
let state = null;
let busy = false;

function setStatus(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render(next) {
  state = next;
  const reviewed = state.done;
  $("progress").max = Math.max(state.total, 1);
  $("progress").value = reviewed;
  const skipped = state.skipped ? `, ${state.skipped} skipped` : "";
  $("progress-text").textContent = `${reviewed} of ${state.total} reviewed${skipped}`;
  $("reviewer").textContent = `reviewer: ${state.reviewer}`;
  const item = state.item;
  $("item").hidden = !item;
  $("done").hidden = !!item;
  if (!item) {
    $("done-text").textContent = `${reviewed} of ${state.total} sampled pairs reviewed by ${state.reviewer}.`;
    return;
  }
  const prompt = $("prompt");
  prompt.replaceChildren();
  for (const turn of item.prompt) {
    const box = el("div", "turn");
    box.append(el("div", "role", turn.role), el("div", "text", turn.content));
    prompt.append(box);
  }
  const principles = $("principles");
  principles.replaceChildren();
  item.principle_ids.forEach((pid, i) => {
    const line = el("div", "principle");
    line.append(el("span", "label", "Principle "), el("span", "pid", pid));
    const question = item.principle_questions[i];
    if (question) line.append(document.createTextNode(`: ${question}`));
    principles.append(line);
  });
  $("first").textContent = item.first;
  $("second").textContent = item.second;
  const ai = $("ai");
  ai.hidden = item.ai_preferred === null;
  if (item.ai_preferred !== null) {
    const p = item.ai_probability === null ? "" : ` (p = ${item.ai_probability.toFixed(2)})`;
    ai.textContent = `AI prefers the ${item.ai_preferred} answer${p}`;
  }
  window.scrollTo(0, 0);
}

async function call(path, body) {
  if (busy) return;
  busy = true;
  try {
    const response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
    const data = await response.json();
    if (!response.ok) {
      setStatus(data.error || `error ${response.status}`, true);
      if (data.state) render(data.state);
      return;
    }
    render(data.state);
    setStatus(data.message || "", false);
  } catch (error) {
    setStatus(`cannot reach the review server (${error}); is \`rlaif review serve\` still running?`, true);
  } finally {
    busy = false;
  }
}

function act(action) {
  if (action === "undo") return call("/api/undo", {});
  if (!state || !state.item) return;
  const pairId = state.item.pair_id;
  if (action === "skip") return call("/api/skip", { pair_id: pairId });
  const note = $("note").value;
  $("note").value = "";
  return call("/api/decide", { pair_id: pairId, verdict: action, note: note });
}

const KEYS = { "1": "first", "2": "second", t: "tie", f: "flag", s: "skip", u: "undo" };

document.addEventListener("keydown", (event) => {
  const typing = event.target instanceof HTMLTextAreaElement || event.target instanceof HTMLInputElement;
  if (typing) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  if (event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (key === "n") {
    event.preventDefault();
    $("note").focus();
  } else if (KEYS[key]) {
    event.preventDefault();
    act(KEYS[key]);
  }
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button) act(button.dataset.action);
});

call("/api/state");

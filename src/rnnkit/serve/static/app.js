// The page of `rnnkit serve`: one card per endpoint of the chosen model (from GET /models).
"use strict";

let models = [];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function show(out, value, isError) {
  out.className = isError ? "error" : "";
  out.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 1);
}

async function answer(response) {
  const body = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new Error(`${response.status}: ${body.detail ?? JSON.stringify(body)}`);
  return body;
}

function readBody(textarea) {
  try { return JSON.parse(textarea.value); } catch (e) { throw new Error(`the request is not JSON: ${e.message}`); }
}

// Server-sent events read from a POST response; each "token" event is appended as it arrives.
async function stream(path, body, out) {
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!response.ok) return answer(response);
  show(out, "");
  out.dataset.state = "streaming";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = (block.match(/^event: (.*)$/m) || [])[1];
      const data = JSON.parse((block.match(/^data: (.*)$/m) || [])[1] || "{}");
      if (event === "token") out.textContent += data.text;
      else if (event === "error") { out.className = "error"; out.textContent += `\n[${data.detail}]`; }
    }
  }
  out.dataset.state = "done";
}

function card(title, summary) {
  const box = el("div", { class: "card" }, el("h2", {}, title), el("div", { class: "muted" }, summary || ""));
  document.getElementById("endpoints").append(box);
  return box;
}

function endpointCard(model, ep) {
  const box = card(`${ep.name}`, `${ep.summary} — POST ${ep.path}`);
  const out = el("pre", { id: `out-${ep.name.replace("/", "-")}` });
  if (ep.kind === "upload") {
    const file = el("input", { type: "file", accept: (ep.accepts || []).join(",") });
    const send = el("button", { id: `send-${ep.name}` }, "Send");
    send.onclick = async () => {
      if (!file.files.length) return show(out, "choose a file first", true);
      const form = new FormData();
      form.append("file", file.files[0]);
      show(out, "…");
      try { show(out, await answer(await fetch(ep.path, { method: "POST", body: form }))); }
      catch (e) { show(out, e.message, true); }
    };
    box.append(file, " ", send, out);
    return;
  }
  const text = el("textarea", { rows: 4 });
  text.value = JSON.stringify(ep.example || {}, null, 1);
  const send = el("button", { id: `send-${ep.name.replace("/", "-")}` }, ep.kind === "stream" ? "Generate (streamed)" : "Send");
  // a JSON endpoint that takes files (e.g. images to caption): the chosen files go into the body as data: URLs
  const files = ep.files_field ? el("input", { type: "file", multiple: "", accept: (ep.accepts || []).join(","), id: `files-${ep.name}` }) : null;
  send.onclick = async () => {
    show(out, "…");
    try {
      const body = readBody(text);
      if (files && files.files.length) body[ep.files_field] = await Promise.all([...files.files].map(dataUrl));
      if (ep.kind === "stream") await stream(ep.path, body, out);
      else show(out, await answer(await fetch(ep.path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })));
    } catch (e) { show(out, e.message, true); }
  };
  if (files) box.append(el("div", { class: "muted" }, `Files for "${ep.files_field}" (they replace the example's): `), files);
  box.append(text, send, out);
}

function dataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

function sessionCard(model) {
  const s = model.sessions;
  const box = card("session", `${s.summary} — ${s.open}, ${s.feed}, ${s.close}`);
  const text = el("textarea", { rows: 3 });
  text.value = JSON.stringify(s.example, null, 1);
  const out = el("pre");
  let sid = null;
  const base = `/models/${model.name}/sessions`;
  const feed = el("button", {}, "Feed chunk");
  const close = el("button", {}, "Close session");
  feed.onclick = async () => {
    try {
      if (!sid) sid = (await answer(await fetch(base, { method: "POST" }))).session;
      show(out, await answer(await fetch(`${base}/${sid}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(readBody(text)) })));
    } catch (e) { show(out, e.message, true); }
  };
  close.onclick = async () => {
    if (!sid) return show(out, "no session open");
    try { show(out, await answer(await fetch(`${base}/${sid}`, { method: "DELETE" }))); } catch (e) { show(out, e.message, true); }
    sid = null;
  };
  box.append(text, feed, close, out);
}

function render() {
  const model = models.find((m) => m.name === document.getElementById("model").value);
  document.getElementById("endpoints").replaceChildren();
  if (!model) return;
  document.getElementById("app").textContent = `${model.app} — ${model.run}`;
  for (const ep of model.endpoints) endpointCard(model, ep);
  if (model.sessions) sessionCard(model);
}

async function start() {
  const select = document.getElementById("model");
  try { models = (await answer(await fetch("/models"))).models; }
  catch (e) { document.getElementById("endpoints").append(el("pre", { class: "error" }, e.message)); return; }
  for (const m of models) select.append(el("option", { value: m.name }, `${m.name} (${m.app})`));
  select.onchange = render;
  render();
}

start();

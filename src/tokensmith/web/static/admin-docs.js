// The admin API's docs page: lists every operation of /admin/v1/openapi.json with a form
// that sends it with the pasted access token. No third-party code; CSP script-src 'self'.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function example(schema, doc) {
  if (!schema) return {};
  if (schema.$ref) return example(doc.components.schemas[schema.$ref.split("/").pop()], doc);
  const out = {};
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    if ((schema.required || []).includes(name) || prop.default !== undefined) {
      out[name] = prop.default !== undefined ? prop.default : prop.type === "integer" ? 0 : "";
    }
  }
  return out;
}

function tryForm(method, path, op, doc) {
  const form = el("form", { class: "try" });
  const params = op.parameters || [];
  for (const p of params) {
    form.append(el("label", {}, `${p.name} (${p.in}) `, el("input", { name: p.name, "data-in": p.in })));
  }
  let body = null;
  if (op.requestBody) {
    const schema = op.requestBody.content["application/json"].schema;
    body = el("textarea", { name: "__body" });
    body.value = JSON.stringify(example(schema, doc), null, 2);
    form.append(el("label", {}, "JSON body", body));
  }
  const answer = el("pre", { class: "answer" });
  form.append(el("button", { type: "submit" }, "Send"), answer);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let url = path;
    const query = new URLSearchParams();
    for (const input of form.querySelectorAll("input[data-in]")) {
      if (!input.value) continue;
      if (input.dataset.in === "path") url = url.replace(`{${input.name}}`, encodeURIComponent(input.value));
      else query.append(input.name, input.value);
    }
    if ([...query].length) url += "?" + query;
    const headers = { Authorization: "Bearer " + document.getElementById("token").value.trim() };
    const init = { method: method.toUpperCase(), headers };
    if (body) { headers["Content-Type"] = "application/json"; init.body = body.value; }
    answer.textContent = "...";
    try {
      const response = await fetch(url, init);
      const text = await response.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
      answer.textContent = `${response.status} ${response.statusText}\n\n${shown}`;
    } catch (e) {
      answer.textContent = String(e);
    }
  });
  return form;
}

async function main() {
  const root = document.getElementById("operations");
  const doc = await (await fetch("/admin/v1/openapi.json")).json();
  root.replaceChildren();
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([method, path, op]);
    }
  }
  for (const [tag, ops] of byTag) {
    root.append(el("h2", {}, tag));
    for (const [method, path, op] of ops) {
      const scope = (op.security || [{}])[0].oauth2 || [];
      const summary = el("summary", {},
        el("span", { class: `method m-${method}` }, method.toUpperCase()),
        el("span", { class: "path" }, path), " \u2014 ", op.summary,
        el("span", { class: "scope" }, scope.join(" ")));
      const statuses = Object.keys(op.responses).join(", ");
      root.append(el("details", { class: "op", id: op.operationId }, summary,
        el("p", {}, op.description || ""), el("p", {}, "Answers: " + statuses),
        tryForm(method, path, op, doc)));
    }
  }
}

document.addEventListener("DOMContentLoaded", main);

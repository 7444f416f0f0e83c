// The domicile web UI: one page, routed by the URL's #fragment, built on
// the JSON API under /api/v1. Every piece of data is put on the page as
// text (textContent), never as HTML.
"use strict";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let csrf = null;
let resident = null;

// ---- small helpers -----------------------------------------------------

/** h("p", {class: "muted"}, "text", child, ...) builds an element. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function say(text) {
  document.getElementById("alert").textContent = "";
  document.getElementById("status").textContent = text;
}

function fail(text) {
  document.getElementById("status").textContent = "";
  document.getElementById("alert").textContent = text;
}

function clearMessages() {
  document.getElementById("status").textContent = "";
  document.getElementById("alert").textContent = "";
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** Calls the API; state-changing calls carry the session's CSRF token. */
async function api(method, path, body, options = {}) {
  const headers = {};
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  let payload;
  if (options.raw) payload = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const response = await fetch("/api/v1" + path, { method, headers, body: payload, credentials: "same-origin" });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) {
    if (response.status === 401 && path !== "/session") showSignIn();
    throw new ApiError(response.status, data.error || response.statusText);
  }
  return data;
}

/** Runs an action of a button: disables it meanwhile, reports errors. */
function action(fn) {
  return async (event) => {
    if (event) event.preventDefault();
    const button = event && event.currentTarget;
    if (button && button.disabled !== undefined) button.disabled = true;
    try { await fn(event); } catch (e) { fail(e.message); } finally { if (button) button.disabled = false; }
  };
}

function when(ms) {
  return new Date(ms).toLocaleString();
}

function page(title, ...content) {
  main.replaceChildren(h("h1", {}, title), ...content);
  document.title = title + " · domicile";
  main.focus();
}

const VERBS = { read: "read", write: "add and change", delete: "delete" };

/** One permission in words: "Read your trips (only: date, mode), because ..." */
function permissionText(p) {
  const what = p.title ? `${p.title[0].toLowerCase()}${p.title.slice(1)} (${p.doctype})` : p.doctype;
  const verbs = p.access.map((a) => VERBS[a] || a).join(", ");
  return `${verbs[0].toUpperCase()}${verbs.slice(1)} ${what}`;
}

function asksList(app) {
  const items = app.permissions.map((p) =>
    h("li", {}, h("strong", {}, permissionText(p)),
      p.fields ? ` — only the fields ${p.fields.join(", ")}` : "",
      h("br"), h("span", { class: "muted" }, "Why: " + p.purpose)));
  if (app.scratch) items.push(h("li", {}, h("strong", {}, "A private scratch folder"), h("br"), h("span", { class: "muted" }, "Why: " + app.scratch.purpose)));
  if (app.egress) {
    for (const d of app.egress.destinations) {
      items.push(h("li", {}, h("strong", {}, `Ask you to send data to ${d}`), " — each sending waits for your approval in the outbox",
        h("br"), h("span", { class: "muted" }, "Why: " + app.egress.purpose)));
    }
  }
  if (items.length === 0) items.push(h("li", {}, "No access to your data."));
  return h("ul", { class: "asks" }, items);
}

// ---- signing in ----------------------------------------------------------

function showSignIn() {
  csrf = null; resident = null; nav.hidden = true;
  const name = h("input", { type: "text", id: "sign-in-name", name: "name", autocomplete: "username", required: true });
  const password = h("input", { type: "password", id: "sign-in-password", name: "password", autocomplete: "current-password", required: true });
  const form = h("form", { id: "sign-in", class: "card" },
    h("label", { class: "block", for: "sign-in-name" }, "Your name"), name,
    h("label", { class: "block", for: "sign-in-password" }, "Password"), password,
    h("p", {}, h("button", { type: "submit" }, "Sign in")));
  form.addEventListener("submit", action(async () => {
    const session = await api("POST", "/session", { name: name.value, password: password.value });
    csrf = session.csrf; resident = session.resident;
    clearMessages();
    nav.hidden = false;
    await route();
  }));
  page("Sign in to your data home", form);
}

document.getElementById("sign-out").addEventListener("click", action(async () => {
  await api("DELETE", "/session");
  showSignIn();
  say("You are signed out.");
}));

// ---- pages -------------------------------------------------------------------

async function homePage() {
  const [apps, outbox, notifications, doctypes] = await Promise.all([
    api("GET", "/apps"), api("GET", "/outbox"), api("GET", "/notifications"), api("GET", "/doctypes")]);
  const pending = outbox.filter((i) => i.status.state === "pending").length;
  const docs = doctypes.reduce((n, d) => n + d.count, 0);
  const list = notifications.slice(-10).reverse().map((n) =>
    h("li", {}, h("strong", {}, n.title), ` (${n.app}, ${when(n.at_ms)})`, n.body ? h("br") : "", n.body));
  const names = Object.fromEntries(apps.map((a) => [a.id, a.name]));
  const day = (value) => typeof value === "string" ? value.slice(0, 10) : String(value);
  const here = doctypes.map((d) => h("li", { id: "here-" + d.doctype },
    h("a", { href: "#/data/" + encodeURIComponent(d.doctype) }, d.title || d.doctype), `: ${d.count.toLocaleString()} document${d.count === 1 ? "" : "s"}`,
    d.span && d.span.first !== null ? `, from ${day(d.span.first)} to ${day(d.span.last)}` : "",
    d.importers.length ? [" · ", ...d.importers.flatMap((id, i) => [i ? ", " : "",
      h("a", { href: "#/import/" + encodeURIComponent(id) }, `import the next file with ${names[id] || id}`)])] : ""));
  page(`Welcome home, ${resident}`,
    h("p", {}, `${docs} documents of yours are kept here; ${apps.length} apps are installed. `,
      pending ? h("a", { href: "#/outbox" }, `${pending} request(s) to send data wait for your decision.`) : "Nothing waits to be sent."),
    h("section", { class: "card", "aria-labelledby": "here" }, h("h2", { id: "here" }, "What is here"),
      here.length ? h("ul", {}, here) : h("p", {}, "Nothing yet: ", h("a", { href: "#/import" }, "import a file"), " from a data holder.")),
    h("section", { class: "card", "aria-labelledby": "notes" }, h("h2", { id: "notes" }, "Messages from your apps"),
      list.length ? h("ul", {}, list) : h("p", { class: "muted" }, "No messages.")));
}

async function cataloguePage() {
  const catalogue = await api("GET", "/catalogue");
  const cards = catalogue.apps.map((app) => h("article", { class: "card", "aria-labelledby": "app-" + app.id },
    h("h2", { id: "app-" + app.id }, app.name, " ", h("span", { class: "muted" }, app.latest)),
    h("p", {}, app.description),
    h("p", { class: "muted" }, `${app.world === "importer" ? "Importer" : "Service"} · from the catalogue ${app.catalogue} · publisher key ${app.publisher.slice(0, 16)}…`),
    h("p", {}, "It asks to:"), asksList(app),
    app.installed
      ? h("p", {}, `Installed (${app.installed}). `, h("a", { href: "#/apps" }, "See it in My apps"))
      : h("p", {}, h("a", { href: "#/install/" + encodeURIComponent(app.id), id: "install-" + app.id }, `Review and install ${app.name}`))));
  const unusable = catalogue.unusable_catalogues.map((c) => h("p", { class: "denied" }, `The catalogue ${c.name} cannot be used: ${c.error}`));
  page("Catalogue", ...unusable, ...(cards.length ? cards : [h("p", {}, "No catalogue lists any app yet.")]));
}

/** The home's campaigns: who asks what, until when. */
async function campaignsPage() {
  const listed = (await api("GET", "/campaigns")).campaigns;
  const cards = listed.map((entry) => entry.campaign
    ? h("article", { class: "card", "aria-labelledby": "campaign-" + entry.id },
      h("h2", { id: "campaign-" + entry.id }, entry.campaign.purpose),
      h("p", { class: "muted" }, `Asked by ${entry.campaign.organiser}, until ${when(entry.campaign.deadline_ms)}`),
      h("p", {}, h("a", { href: "#/campaign/" + encodeURIComponent(entry.id), id: "terms-" + entry.id }, "What taking part would mean")))
    : h("p", { class: "denied" }, `The campaign ${entry.id} is not shown: ${entry.refused}`));
  page("Campaigns", h("p", {}, "Questions residents answer together: only the total comes out, and nobody sees anybody's answer."),
    ...(cards.length ? cards : [h("p", {}, "No campaign here yet.")]));
}

/** Every term of a campaign, as the resident would consent to it, and
 * taking part or leaving. */
async function campaignPage(id) {
  const shown = await api("GET", "/campaigns/" + encodeURIComponent(id));
  const { campaign, participation } = shown;
  const path = "/campaigns/" + encodeURIComponent(id);
  const neighbourhoodKind = { postcode: "postcode (5 digits, like 44000)", iris: "IRIS code (9 characters, like 443090101)" }[campaign.neighbourhoods];
  const neighbourhood = neighbourhoodKind
    ? h("input", { id: "neighbourhood", name: "neighbourhood", autocomplete: campaign.neighbourhoods === "postcode" ? "postal-code" : "off", inputmode: campaign.neighbourhoods === "postcode" ? "numeric" : "text", size: 10 })
    : null;
  const decide = (verb, done) => action(async () => {
    const body = verb === "join" && neighbourhood && neighbourhood.value.trim() ? { neighbourhood: neighbourhood.value.trim() } : undefined;
    await api("POST", `${path}/${verb}`, body);
    await campaignPage(id);
    say(done);
  });
  const over = Date.now() >= campaign.deadline_ms;
  const bringHome = action(async () => {
    await api("POST", `${path}/result`);
    await campaignPage(id);
    say("The result is in your space: your apps may read it if you grant them.");
  });
  const standing = participation.joined
    ? h("section", { id: "participation", "aria-label": "Your participation" },
      h("p", {}, `You take part: your report left on ${when(participation.report.at_ms)} for ${participation.report.destination} (outbox #${participation.report.id}).`),
      participation.result && campaignResult(campaign, participation.result),
      over
        ? h("p", {}, h("button", { type: "button", id: "campaign-result", onclick: bringHome },
          participation.result ? "Bring the result home again" : "Bring the result home"),
          h("span", { class: "muted" }, " (checked against both aggregators' signatures, then kept in your space)"))
        : h("p", {}, `The result comes after ${when(campaign.deadline_ms)}, to every participant. Until then you may leave.`),
      !over && h("p", {}, h("button", { type: "button", class: "secondary", id: "leave-campaign", onclick: decide("leave", "You left the campaign: your report is withdrawn.") },
        "Leave: withdraw my report")))
    : over
      ? h("section", { id: "participation", "aria-label": "Your participation" },
        h("p", {}, `This campaign closed on ${when(campaign.deadline_ms)}: it takes no more answers, and its result goes to those who took part.`))
      : h("section", { id: "participation", "aria-label": "Your participation" },
      h("p", {}, `Taking part runs ${campaign.question.app} inside your space; only the two shares of its answer leave, each encrypted to one aggregator.`),
      neighbourhood && h("p", {}, h("label", { for: "neighbourhood" }, `Your neighbourhood, if you wish to compare with it: your ${neighbourhoodKind} `), neighbourhood,
        h("span", { class: "muted" }, " (optional; it goes with the shares, readable by both aggregators)")),
      h("p", {}, h("button", { type: "button", id: "join-campaign", onclick: decide("join", "You take part: your report was sent.") },
        "Take part with these terms")));
  page(campaign.purpose,
    h("ul", { id: "campaign-terms" }, shown.terms.map((t) => h("li", {}, t))),
    standing,
    h("a", { href: "#/campaigns" }, "All campaigns"));
}

/** A campaign's result as kept in the resident's space: how many took
 * part in the group their answer counts in, and its figures, labelled. */
function campaignResult(campaign, result) {
  const number = (x) => Number(x).toLocaleString(undefined, { maximumFractionDigits: 1 });
  const group = result.neighbourhood
    ? `in your neighbourhood, ${result.neighbourhood}`
    : (campaign.neighbourhoods ? "among those who gave no neighbourhood or one of too few participants" : "in all");
  const figures = Array.isArray(result.aggregate) ? result.aggregate : [result.aggregate];
  let labels;
  if (result.bounds) {
    const b = result.bounds.map(number);
    labels = figures.map((_, i) => i === 0 ? `below ${b[0]}` : i === b.length ? `${b[i - 1]} and above` : `${b[i - 1]} to ${b[i]}`);
  } else {
    labels = answerLabels(campaign.question.answers || [], figures.length);
  }
  const rows = figures.map((value, i) => {
    const average = result.bounds ? "" : `, ${number(value / Math.max(result.reports, 1))} ${result.unit} per participant on average`;
    return h("li", {}, `${labels[i]}: ${number(value)}${result.bounds ? " participants" : " " + result.unit}${average}`);
  });
  return h("section", { id: "result", "aria-label": "The result" },
    h("h2", {}, "The result"),
    h("p", {}, `${result.reports.toLocaleString()} participants ${group}; ${result.computes}:`),
    h("ul", {}, rows),
    result.noise_epsilon && h("p", { class: "muted" }, `Noise was added (epsilon ${result.noise_epsilon}): the figures are close to the true ones, not exactly them, so that nobody's answer can be told from them.`),
    result.neighbourhoods && result.neighbourhoods.length > 1 && h("p", { class: "muted" },
      `Released for ${result.neighbourhoods.length} groups: ${result.neighbourhoods.map((n) => `${n.neighbourhood || "the others"} (${n.reports})`).join(", ")}.`));
}

/** Names for a vector's figures from the JSON Pointers the campaign reads
 * them at, without what they all share: "/weeks/2026-W10/bike/km" and
 * "/weeks/2026-W10/car/km" are "bike" and "car". */
function answerLabels(pointers, n) {
  if (pointers.length !== n || n < 2) return Array.from({ length: n }, (_, i) => n === 1 ? "Total" : `Figure ${i + 1}`);
  const parts = pointers.map((p) => p.split("/").slice(1));
  let head = 0;
  while (parts.every((q) => q.length > head + 1 && q[head] === parts[0][head])) head++;
  let tail = 0;
  while (parts.every((q) => q.length > head + tail + 1 && q[q.length - 1 - tail] === parts[0][parts[0].length - 1 - tail])) tail++;
  return parts.map((q) => q.slice(head, q.length - tail).join(" ").replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** The consent screen: every permission can be granted or not, reads field by field. */
async function installPage(id) {
  const app = await api("GET", "/catalogue/" + encodeURIComponent(id));
  const sets = app.permissions.map((p, i) => {
    const boxes = p.access.map((a) => h("label", {},
      h("input", { type: "checkbox", name: `p${i}`, value: a, id: `grant-${p.doctype}-${a}` }), ` ${VERBS[a] || a}`));
    const fieldBoxes = p.access.includes("read") && p.choosable_fields.length
      ? h("fieldset", {}, h("legend", {}, "Fields it may read (uncheck to hide one)"),
        p.choosable_fields.map((f) => h("label", {},
          h("input", { type: "checkbox", name: `f${i}`, value: f, checked: true, id: `field-${p.doctype}-${f}` }), " " + f)))
      : null;
    return h("fieldset", {}, h("legend", {}, permissionText(p)),
      h("p", { class: "muted" }, "Why: " + p.purpose), boxes, fieldBoxes);
  });
  const extras = [];
  if (app.scratch) extras.push(h("p", {}, "It also gets a private scratch folder: " + app.scratch.purpose));
  if (app.egress) extras.push(h("p", {}, `It may ask to send data to ${app.egress.destinations.join(", ")}: ${app.egress.purpose}. Nothing is sent unless you approve each request in your outbox.`));
  if (app.triggers.length) {
    extras.push(h("fieldset", {}, h("legend", {}, "It can also run on its own (you can switch this later in My apps)"),
      app.triggers.map((t, i) => h("p", {}, h("label", {},
        h("input", { type: "checkbox", name: "trigger", value: String(i + 1), id: `trigger-${i + 1}` }),
        ` Let it run ${t.when}`), h("span", { class: "muted" }, " — why: " + t.purpose)))));
  }
  const form = h("form", { id: "consent" },
    h("p", {}, app.description),
    h("p", {}, "Nothing is granted unless you tick it. You can take any of it back later."),
    sets, extras,
    h("button", { type: "submit", id: "install" }, `Install ${app.name} with what I ticked`),
    h("a", { href: "#/catalogue" }, "Cancel"));
  form.addEventListener("submit", action(async () => {
    const grants = [];
    app.permissions.forEach((p, i) => {
      const chosen = [...form.querySelectorAll(`input[name=p${i}]:checked`)].map((b) => b.value);
      const fields = [...form.querySelectorAll(`input[name=f${i}]`)];
      const kept = fields.filter((b) => b.checked).map((b) => b.value);
      for (const a of chosen) {
        if (a === "read" && fields.length && kept.length < fields.length) {
          if (kept.length) grants.push(`${p.doctype}:read:${kept.join(",")}`);
        } else grants.push(`${p.doctype}:${a}`);
      }
    });
    const triggers = [...form.querySelectorAll("input[name=trigger]:checked")].map((b) => Number(b.value));
    const installed = await api("POST", "/apps", { app: app.id, grants, triggers });
    await navigate("#/apps", `Installed ${installed.name}; granted: ${installed.granted}`);
  }));
  page(`Install ${app.name} ${app.latest}?`, form);
}

async function appsPage() {
  const apps = await api("GET", "/apps");
  const cards = apps.map((app) => {
    const result = h("div", { id: "result-" + app.id, "aria-live": "polite" });
    const controls = [];
    if (app.world === "service") {
      const input = h("textarea", { id: "input-" + app.id, spellcheck: "false" }, "{}");
      controls.push(h("label", { class: "block", for: "input-" + app.id }, "Input (JSON)"), input,
        h("button", { type: "button", id: "run-" + app.id, onclick: action(async () => {
          let parsed;
          try { parsed = JSON.parse(input.value || "{}"); } catch (e) { throw new Error("The input is not JSON: " + e.message); }
          result.replaceChildren(h("p", {}, "Running…"));
          try {
            const out = await api("POST", `/apps/${encodeURIComponent(app.id)}/run`, { input: parsed });
            result.replaceChildren(h("h3", {}, "Result"), ...serviceOutput(out.output));
          } catch (e) { result.replaceChildren(h("p", { class: "denied" }, e.message)); throw e; }
        }) }, `Run ${app.name}`));
    } else {
      controls.push(h("a", { href: "#/import" }, "Import a file with it"));
    }
    const grantItems = Object.entries(app.grants).map(([doctype, g]) => {
      const asked = app.permissions.find((p) => p.doctype === doctype);
      const what = asked ? permissionText({ ...asked, access: g.access }) : `${g.access.join(", ")} ${doctype}`;
      return h("li", {}, what, g.fields ? ` (only the fields ${g.fields.join(", ")})` : "", " ",
      h("button", { type: "button", class: "secondary", id: `revoke-${app.id}-${doctype}`, "aria-label": `Take back: ${what}`, onclick: action(async () => {
        await api("POST", `/apps/${encodeURIComponent(app.id)}/revoke`, { grants: g.access.map((a) => `${doctype}:${a}`) });
        await appsPage();
        say(`${app.name} can no longer ${g.access.join(", ")} ${doctype}.`);
      }) }, "Take back"));
    });
    // What it asks for that is not granted: the resident can allow it here.
    const notGranted = app.permissions.flatMap((p) => p.access
      .filter((a) => !(app.grants[p.doctype] && app.grants[p.doctype].access.includes(a)))
      .map((a) => h("li", {}, `${permissionText({ ...p, access: [a] })} — why: ${p.purpose} `,
        h("button", { type: "button", class: "secondary", id: `allow-${app.id}-${p.doctype}-${a}`, "aria-label": `Allow: ${permissionText({ ...p, access: [a] })}`, onclick: action(async () => {
          await api("POST", `/apps/${encodeURIComponent(app.id)}/grants`, { grants: [`${p.doctype}:${a}`] });
          await appsPage();
          say(`${app.name} may now ${VERBS[a] || a} ${p.doctype}.`);
        }) }, "Allow"))));
    const updateBox = h("div", { "aria-live": "polite" });
    return h("article", { class: "card", "aria-labelledby": "h-" + app.id },
      h("h2", { id: "h-" + app.id }, app.name, " ", h("span", { class: "muted" }, app.version)),
      app.held ? h("p", { class: "hold" }, `On hold: ${app.held.reason}. `,
        h("button", { type: "button", class: "secondary", onclick: action(async () => {
          await api("POST", `/apps/${encodeURIComponent(app.id)}/enable`); await appsPage();
        }) }, "Keep using it")) : null,
      app.update_available ? h("p", {}, `Version ${app.update_available} is available. `,
        h("button", { type: "button", class: "secondary", onclick: action(async () => {
          const r = await api("POST", `/apps/${encodeURIComponent(app.id)}/update`, {});
          if (r.status !== "waiting-for-grant") {
            await appsPage();
            say(`${app.name}: ${r.status}`);
            return;
          }
          // It asks for more than the installed version: the resident decides.
          updateBox.replaceChildren(h("p", {}, `Version ${r.available} asks for more than ${r.installed}:`),
            h("ul", {}, r.asks.map((a) => h("li", {}, a))),
            h("button", { type: "button", onclick: action(async () => {
              await api("POST", `/apps/${encodeURIComponent(app.id)}/update`, { grants: [] });
              await appsPage();
              say(`${app.name} was updated without granting what it newly asks; you can allow it below.`);
            }) }, "Update without granting these"),
            h("button", { type: "button", class: "secondary", onclick: () => appsPage() }, `Keep ${r.installed}`));
        }) }, "Update")) : null,
      h("p", {}, app.description),
      h("h3", {}, "What you granted"),
      grantItems.length ? h("ul", {}, grantItems) : h("p", {}, "Nothing: it cannot touch your data."),
      notGranted.length ? [h("h3", {}, "Asked for, not granted"), h("ul", {}, notGranted)] : null,
      updateBox,
      h("details", {}, h("summary", {}, "What it asks for, and why"), asksList(app)),
      app.triggers.length ? [h("h3", {}, "When it runs on its own"), h("ul", {}, app.triggers.map((t) => triggerItem(app, t)))] : null,
      controls, result,
      h("p", {}, h("button", { type: "button", class: "danger", id: "uninstall-" + app.id, onclick: action(async () => {
        if (!confirm(`Uninstall ${app.name}? The documents it wrote stay yours.`)) return;
        await api("DELETE", `/apps/${encodeURIComponent(app.id)}`);
        await appsPage();
        say(`Uninstalled ${app.name}.`);
      }) }, "Uninstall")));
  });
  page("My apps", ...(cards.length ? cards : [h("p", {}, "No apps yet. ", h("a", { href: "#/catalogue" }, "Browse the catalogue."))]));
}

async function importPage(chosen) {
  const apps = (await api("GET", "/apps")).filter((a) => a.world === "importer");
  if (!apps.length) {
    page("Import a file", h("p", {}, "Install an importer first: ", h("a", { href: "#/catalogue" }, "see the catalogue"), "."));
    return;
  }
  const importer = h("select", { id: "importer" }, apps.map((a) => h("option", { value: a.id, selected: a.id === chosen }, `${a.name} — ${a.description}`)));
  const file = h("input", { type: "file", id: "import-file", required: true });
  const partial = h("input", { type: "checkbox", id: "import-partial" });
  const progress = h("progress", { id: "import-progress", max: "100", value: "0", hidden: true, "aria-label": "Upload progress" });
  const result = h("div", { id: "import-result", "aria-live": "polite" });
  const form = h("form", { id: "import-form", class: "card" },
    h("label", { class: "block", for: "importer" }, "Importer"), importer,
    h("label", { class: "block", for: "import-file" }, "The export file from your bank, energy supplier, school…"), file,
    h("p", {}, partial, " ", h("label", { for: "import-partial" },
      "If some records of the file are broken, import the others and list the ones left out (otherwise nothing of such a file is imported)")),
    h("p", {}, h("button", { type: "submit" }, "Import")), progress, result);
  form.addEventListener("submit", action(() => new Promise((resolve, reject) => {
    const chosen = file.files[0];
    if (!chosen) { reject(new Error("Choose a file first.")); return; }
    // XMLHttpRequest, not fetch: it reports upload progress.
    const xhr = new XMLHttpRequest();
    const mode = partial.checked ? "&partial=true" : "";
    xhr.open("POST", `/api/v1/apps/${encodeURIComponent(importer.value)}/import?file=${encodeURIComponent(chosen.name)}${mode}`);
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    progress.hidden = false; progress.value = 0;
    result.replaceChildren(h("p", {}, `Uploading ${chosen.name}…`));
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) progress.value = Math.round(100 * e.loaded / e.total); };
    // Once uploaded, how far the importer has got, every half second,
    // until the answer comes.
    let watching = null;
    const watch = async () => {
      const under = (await api("GET", "/imports").catch(() => [])).find((i) => i.app === importer.value && i.file === chosen.name);
      if (watching === null || !under) return;
      const n = under.documents.toLocaleString();
      result.replaceChildren(h("p", { id: "import-status" }, under.saving
        ? `Saving ${n} documents (all of them or none)…`
        : `The importer has read ${n} documents so far (${Math.round(under.seconds)} s)…`));
    };
    xhr.upload.onload = () => {
      progress.removeAttribute("value");
      result.replaceChildren(h("p", { id: "import-status" }, "Uploaded; the importer is reading it…"));
      watching = setInterval(watch, 500);
    };
    xhr.onloadend = () => { clearInterval(watching); watching = null; };
    xhr.onload = () => {
      clearInterval(watching); watching = null;
      progress.hidden = true;
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch (_) { data = { error: xhr.statusText }; }
      if (xhr.status >= 200 && xhr.status < 300) {
        const leftOut = data.left_out || [];
        result.replaceChildren(h("h2", {}, "Imported"), h("pre", { class: "output" }, JSON.stringify(data.output, null, 2)),
          ...(leftOut.length === 0 ? [] : [
            h("h3", {}, `${leftOut.length} broken record(s) left out`),
            h("ul", { id: "import-left-out" }, leftOut.map((r) => h("li", {}, `${r.location}: ${r.reason}`))),
          ]));
        say(`${chosen.name} imported.`);
        resolve();
      } else {
        result.replaceChildren(h("p", { class: "denied" }, data.error || "The import failed."));
        reject(new Error(data.error || "The import failed."));
      }
    };
    xhr.onerror = () => { progress.hidden = true; reject(new Error("The upload failed: the server did not answer.")); };
    xhr.send(chosen);
  })));
  page("Import a file", form);
}

async function dataPage() {
  const doctypes = await api("GET", "/doctypes");
  const rows = doctypes.map((d) => h("tr", {},
    h("td", {}, h("a", { href: "#/data/" + encodeURIComponent(d.doctype) }, d.title || d.doctype)),
    h("td", {}, d.doctype), h("td", {}, String(d.count))));
  page("My data",
    rows.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "What"), h("th", {}, "Doctype"), h("th", {}, "Documents"))), h("tbody", {}, rows))
      : h("p", {}, "No documents yet: ", h("a", { href: "#/import" }, "import a file"), "."));
}

async function documentsPage(doctype) {
  const selector = h("input", { type: "text", id: "where", size: "50", placeholder: '{"mode": "bike"}' });
  const sort = h("input", { type: "text", id: "sort", size: "15", placeholder: "-date" });
  const text = h("input", { type: "search", id: "contains", size: "20" });
  const list = h("div", { id: "documents" });
  const load = action(async () => {
    const params = new URLSearchParams({ limit: "200" });
    if (selector.value.trim()) params.set("where", selector.value);
    if (sort.value.trim()) params.set("sort", sort.value.trim());
    const found = await api("GET", `/docs/${encodeURIComponent(doctype)}?${params}`);
    const needle = text.value.trim().toLowerCase();
    const docs = found.documents.filter((d) => !needle || JSON.stringify(d.body).toLowerCase().includes(needle));
    const keys = [...new Set(docs.slice(0, 50).flatMap((d) => Object.keys(d.body)))].slice(0, 8);
    list.replaceChildren(
      h("p", {}, `${docs.length} shown${found.more ? " (more match: narrow the search)" : ""}.`),
      docs.length ? h("table", {}, h("thead", {}, h("tr", {}, keys.map((k) => h("th", {}, k)))),
        h("tbody", {}, docs.map((d) => h("tr", {}, keys.map((k) => h("td", {}, d.body[k] === undefined ? "" : typeof d.body[k] === "object" ? JSON.stringify(d.body[k]) : String(d.body[k]))))))) : null);
  });
  const form = h("form", { class: "card", role: "search" },
    h("label", { class: "block", for: "where" }, "Match (a selector, as JSON)"), selector,
    h("label", { class: "block", for: "sort" }, "Sort by field (-field for descending)"), sort,
    h("label", { class: "block", for: "contains" }, "Containing the text"), text,
    h("p", {}, h("button", { type: "submit" }, "Search")));
  form.addEventListener("submit", load);
  page(doctype, h("p", {}, h("a", { href: "#/data" }, "← My data")), form, list);
  await load();
}

async function activityPage() {
  const [summary, entries] = await Promise.all([api("GET", "/audit/summary"), api("GET", "/audit")]);
  const verdict = h("p", { id: "audit-verdict" });
  const rows = entries.slice(-300).reverse().map((e) => h("tr", {},
    h("td", {}, when(e.at_ms)), h("td", {}, `${e.app} ${e.app_version}`), h("td", {}, e.operation),
    h("td", {}, e.destination ? "to " + e.destination : `${e.documents} × ${e.doctype}`),
    h("td", { class: e.outcome === "denied" ? "denied" : "allowed" }, e.outcome === "denied" ? "DENIED" : "allowed")));
  page("What apps did with your data",
    h("section", { class: "card", "aria-labelledby": "sum" }, h("h2", { id: "sum" }, "In short"),
      summary.length ? h("ul", { id: "audit-summary" }, summary.map((g) => h("li", { class: g.outcome === "denied" ? "denied" : "" },
        g.sentence, ` (${when(g.first_ms)} – ${when(g.last_ms)})`))) : h("p", {}, "No app has accessed your data.")),
    h("p", {}, h("button", { type: "button", class: "secondary", onclick: action(async () => {
      const v = await api("GET", "/audit/verify");
      verdict.textContent = v.intact
        ? `The log is intact: ${v.check.entries} entries, each chained to the one before. Last hash ${v.check.head}.`
        : `The log was tampered with: ${v.check.problems.join("; ")}`;
    }) }, "Check the log was not rewritten")), verdict,
    h("h2", {}, "Every access, newest first"),
    rows.length ? h("table", { id: "audit" }, h("thead", {}, h("tr", {}, ["When", "App", "Did", "What", "Outcome"].map((t) => h("th", {}, t)))), h("tbody", {}, rows)) : null);
}

async function outboxPage() {
  const items = (await api("GET", "/outbox")).reverse();
  const cards = items.map((item) => {
    const pending = item.status.state === "pending" || item.status.state === "failed";
    const status = {
      pending: "Waiting for your decision",
      sent: `Sent ${item.status.at_ms ? when(item.status.at_ms) : ""} (HTTP ${item.status.http_status})`,
      denied: "Denied: never sent",
      failed: `Delivery failed: ${item.status.error}. You can approve it again.`,
    }[item.status.state];
    const decide = (verb) => action(async () => {
      await api("POST", `/outbox/${item.id}/${verb}`);
      say(verb === "approve" ? `Item ${item.id} was sent to ${item.destination}.` : `Item ${item.id} was discarded.`);
      await outboxPage();
    });
    return h("article", { class: "card", id: "outbox-" + item.id, "aria-labelledby": "o-" + item.id },
      h("h2", { id: "o-" + item.id }, item.campaign
        ? `#${item.id}: for campaign ${item.campaign}, computed by ${item.app}, to ${item.destination}`
        : `#${item.id}: ${item.app} asks to send data to ${item.destination}`),
      h("p", {}, "Why: " + item.purpose), h("p", { class: "muted" }, when(item.at_ms)),
      h("p", {}, "Exactly what would be sent:"), h("pre", { class: "payload" }, item.payload),
      h("p", { class: "outbox-status" }, status),
      pending ? h("p", {},
        h("button", { type: "button", id: "approve-" + item.id, onclick: decide("approve") }, "Approve and send"),
        h("button", { type: "button", class: "danger", id: "deny-" + item.id, onclick: decide("deny") }, "Deny")) : null);
  });
  page("Outbox", h("p", {}, "Apps cannot send anything out of your home. They can only ask; it leaves when you approve it here."),
    ...(cards.length ? cards : [h("p", {}, "Nothing was asked.")]));
}

async function exportPage() {
  const usage = await api("GET", "/usage");
  page("Export everything",
    h("p", {}, `Your home holds ${usage.usage.documents} documents (${Math.round(usage.usage.bytes / 1024)} KiB), your apps, their grants, the audit log and the outbox.`),
    h("p", {}, "The archive can be restored into any domicile home with ", h("code", {}, "domicile restore FILE"), "."),
    h("p", {}, h("a", { href: "/api/v1/export", download: "", id: "export-link" }, "Download the archive")));
}

async function accountPage() {
  const tokens = await api("GET", "/tokens");
  const current = h("input", { type: "password", id: "current-password", autocomplete: "current-password" });
  const fresh = h("input", { type: "password", id: "new-password", autocomplete: "new-password", minlength: "10" });
  const pw = h("form", { class: "card" }, h("h2", {}, "Change your password"),
    h("label", { class: "block", for: "current-password" }, "Current password"), current,
    h("label", { class: "block", for: "new-password" }, "New password (10 characters or more)"), fresh,
    h("p", {}, h("button", { type: "submit" }, "Change it")));
  pw.addEventListener("submit", action(async () => {
    await api("POST", "/password", { current: current.value, new: fresh.value });
    showSignIn();
    say("Your password was changed; sign in again.");
  }));
  const label = h("input", { type: "text", id: "token-label" });
  const shown = h("div", { "aria-live": "polite" });
  const tk = h("form", { class: "card" }, h("h2", {}, "API tokens for your scripts"),
    h("ul", {}, tokens.map((t) => h("li", {}, `${t.label || "(no label)"}, made ${when(t.created_ms)} `,
      h("button", { type: "button", class: "secondary", onclick: action(async () => {
        await api("DELETE", "/tokens/" + t.id); await accountPage();
      }) }, "Revoke")))),
    h("label", { class: "block", for: "token-label" }, "What the new token is for"), label,
    h("p", {}, h("button", { type: "submit" }, "Make a token")), shown);
  tk.addEventListener("submit", action(async () => {
    const t = await api("POST", "/tokens", { label: label.value });
    await accountPage();
    say("Copy the token now; it is shown once.");
    main.append(h("p", { class: "card" }, "New token: ", h("code", {}, t.token)));
  }));
  page(`Account: ${resident}`, pw, tk);
}

// ---- routing -------------------------------------------------------------

const ROUTES = [
  [/^#?\/?$/, homePage],
  [/^#\/catalogue$/, cataloguePage],
  [/^#\/campaigns$/, campaignsPage],
  [/^#\/campaign\/(.+)$/, campaignPage],
  [/^#\/install\/(.+)$/, installPage],
  [/^#\/apps$/, appsPage],
  [/^#\/import$/, importPage],
  [/^#\/import\/(.+)$/, importPage],
  [/^#\/data$/, dataPage],
  [/^#\/data\/(.+)$/, documentsPage],
  [/^#\/activity$/, activityPage],
  [/^#\/outbox$/, outboxPage],
  [/^#\/export$/, exportPage],
  [/^#\/account$/, accountPage],
];

async function route() {
  if (!resident) return;
  const hash = location.hash || "#/";
  for (const a of nav.querySelectorAll("a")) {
    if (a.getAttribute("href") === hash.replace(/^(#\/[a-z]*).*/, "$1")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  for (const [pattern, show] of ROUTES) {
    const m = hash.match(pattern);
    if (m) {
      try { await show(...m.slice(1).map(decodeURIComponent)); } catch (e) { if (!(e instanceof ApiError && e.status === 401)) fail(e.message); }
      return;
    }
  }
  page("Not found", h("p", {}, "There is no such page. ", h("a", { href: "#/" }, "Go home.")));
}

/** A message shown once the next page is on screen. */
let flash = null;

async function navigate(hash, message) {
  if (location.hash === hash) {
    await route();
    if (message) say(message);
  } else {
    flash = message;
    location.hash = hash;
  }
}

window.addEventListener("hashchange", async () => {
  clearMessages();
  await route();
  if (flash) { say(flash); flash = null; }
});

(async function start() {
  try {
    const session = await api("GET", "/session");
    csrf = session.csrf; resident = session.resident; nav.hidden = false;
    route();
  } catch (_) {
    showSignIn();
  }
})();

/** One trigger of an installed app: when and why, its state, and a switch. */
function triggerItem(app, t) {
  const time = (ms) => new Date(ms).toLocaleString();
  const st = t.state;
  const state = !t.enabled ? "Off."
    : st.failures ? `Failing (${st.failures} in a row): ${st.last_outcome}. Next try after ${time(st.retry_after_ms)}.`
    : st.last_run_ms ? `Last ran ${time(st.last_run_ms)}.` : "Has not run yet.";
  const next = t.enabled && t.next_run_ms ? ` Next: ${time(t.next_run_ms)}.` : "";
  return h("li", { id: `trigger-${app.id}-${t.number}` }, `Runs ${t.when}. `, h("span", { class: "muted" }, "Why: " + t.purpose + ". "),
    h("span", { class: "trigger-state" }, state + next), " ",
    h("button", { type: "button", class: "secondary", id: `switch-${app.id}-${t.number}`,
      "aria-label": `${t.enabled ? "Switch off" : "Switch on"}: ${app.name} runs ${t.when}`,
      onclick: action(async () => {
        await api("POST", `/apps/${encodeURIComponent(app.id)}/triggers`, { number: t.number, enabled: !t.enabled });
        await appsPage();
        say(`${app.name} ${t.enabled ? "will no longer" : "will again"} run ${t.when}.`);
      }) }, t.enabled ? "Switch off" : "Switch on"));
}

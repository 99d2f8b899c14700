// The console's pages, drawn from the REST API (api.js) into <main>. Routes are the URL's
// hash: #/groups, #/groups/ID/TAB, #/groups/ID/configurations/image-tasks,
// #/groups/ID/configurations/update-image, #/groups/ID/new-task, #/tasks/ID, #/image-tasks/ID,
// #/alerts, #/alerts/new, #/alerts/NAME. Every piece of data is put into the page as text
// (never as HTML).

import { ApiError, follow, get, patch, post, put, remove, session, signIn, signOut } from "./api.js";

const PROCESSES = ["ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction"];
const TEMPLATES = {
  image: "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup",
  script: "ACS-ESS-RollingUpdateByRunCommandInScalingGroup",
  package: "ACS-ESS-RollingUpdateByConfigureOOSPackage",
  containers: "ACS-ESS-RollingUpdateByUpdateContainerGroup",
};
const IMAGE_TASK_TEMPLATE = "ACS-ESS-CreateImageAndUpdateScalingConfiguration";
const LEVELS = ["CRITICAL", "WARN", "INFO"];
const EVENT_KINDS = ["Started", "BatchDone", "Paused", "InstanceFailed", "Succeeded", "Cancelled", "Failed"];
const GROUP_TABS = [
  ["instances", "Instances"],
  ["configurations", "Scaling configurations"],
  ["rolling-updates", "Rolling update"],
  ["events", "Events"],
];

const main = document.getElementById("main");
/// The page a route draws: it goes into <main> only while it is the current one (an answer
/// that comes after the next route started is dropped), and what it follows (progress streams,
/// refreshes) stops when it goes.
let currentView = { live: true, following: [] };

function newView() {
  currentView.live = false;
  for (const running of currentView.following) running.stop();
  currentView = { live: true, following: [] };
  return currentView;
}

/// Keeps `running` (something with stop()) going while `view` is shown.
function keep(view, running) {
  if (view.live) view.following.push(running);
  else running.stop();
}

/// Calls `refresh` every `ms` milliseconds while `view` is shown (one call at a time).
function every(view, ms, refresh) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    try {
      await refresh();
    } finally {
      if (!stopped) timer = setTimeout(tick, ms);
    }
  };
  timer = setTimeout(tick, ms);
  keep(view, { stop() { stopped = true; clearTimeout(timer); } });
}

/// An element: h("button", { type: "button", onclick }, "Text", child, …).
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function table(caption, headers, rows, empty) {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, rows));
}

/// An error as the API said it: code and message, in an alert.
function errorBox(error) {
  const text = error instanceof ApiError ? `${error.code}: ${error.message}` : String(error);
  return h("div", { class: "error", role: "alert", "data-code": error.code ?? "" }, text);
}

function notice(text) {
  const box = document.getElementById("notice");
  box.textContent = text;
  if (text) setTimeout(() => { if (box.textContent === text) box.textContent = ""; }, 4000);
}

function show(view, ...children) {
  if (view.live) main.replaceChildren(...children);
}

function statusText(task) {
  return task.waiting_status ? `${task.status} (${task.waiting_status})` : task.status;
}

function statusBadge(text) {
  return h("span", { class: `badge ${String(text).split(" ")[0].toLowerCase()}` }, text);
}

// ------------------------------------------------------------------------- sign in

function signInPage(problem) {
  const view = currentView;
  const id = h("input", { id: "access-key-id", name: "access-key-id", required: true, autocomplete: "username", spellcheck: "false" });
  const secret = h("input", { id: "access-key-secret", name: "access-key-secret", type: "password", required: true, autocomplete: "current-password" });
  const status = h("div", { id: "sign-in-status" }, problem ? errorBox(problem) : null);
  const button = h("button", { type: "submit", id: "sign-in" }, "Sign in");
  const form = h("form", { class: "card narrow", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("p", {}, "With an AccessKey (", h("code", {}, "rollscale configure get"), " shows the one ", h("code", {}, "rollscale up"), " made). The secret stays in this page: it signs a token and is forgotten."),
    h("label", { for: "access-key-id" }, "AccessKey ID"), id,
    h("label", { for: "access-key-secret" }, "AccessKey secret"), secret,
    button, status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    status.replaceChildren(h("p", {}, "Signing in…"));
    try {
      await signIn(id.value.trim(), secret.value);
      secret.value = "";
      header();
      location.hash = "#/groups";
      route();
    } catch (error) {
      secret.value = "";
      status.replaceChildren(errorBox(error));
    } finally {
      button.disabled = false;
    }
  });
  show(view, form);
  id.focus();
}

function header() {
  const current = session();
  document.getElementById("who").hidden = !current;
  document.getElementById("nav").hidden = !current;
  document.getElementById("who-user").textContent = current?.userName ?? "";
  document.getElementById("who-key").textContent = current?.accessKeyId ?? "";
}

document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  header();
  location.hash = "#/signin";
  route();
});

// ------------------------------------------------------------------------- groups

async function groupsPage() {
  const view = currentView;
  show(view, h("h1", {}, "Scaling groups"), h("p", {}, "Loading…"));
  const [groups, instances] = await Promise.all([get("/v1/scaling-groups"), get("/v1/instances")]);
  const rows = groups.items.map((group) => {
    const mine = instances.items.filter((i) => i.scaling_group_id === group.id);
    const inService = mine.filter((i) => i.lifecycle_state === "InService").length;
    return h("tr", { "data-group": group.id },
      h("td", {}, h("a", { href: `#/groups/${group.id}` }, group.name), h("br"), h("code", {}, group.id)),
      h("td", {}, group.group_type),
      h("td", {}, group.status),
      h("td", {}, `${group.min_size} / ${group.max_size} / ${group.desired_capacity}`),
      h("td", {}, `${mine.length} (${inService} InService)`),
      h("td", {}, group.suspended_processes.join(", ") || "none"));
  });
  show(view, h("h1", {}, "Scaling groups"),
    table("Scaling groups", ["Name / ID", "Type", "Status", "Min / max / desired", "Instances", "Suspended processes"], rows,
      "No scaling group yet. Create one with the API or the CLI (rollscale ess CreateScalingGroup …)."));
}

async function groupPage(id, tab, sub) {
  const view = currentView;
  const group = await get(`/v1/scaling-groups/${encodeURIComponent(id)}`);
  const tabs = h("nav", { class: "tabs", "aria-label": "Group" },
    GROUP_TABS.map(([name, label]) =>
      h("a", { href: `#/groups/${id}/${name}`, "aria-current": name === tab ? "page" : false }, label)));
  const body = h("section", { id: "tab" }, h("p", {}, "Loading…"));
  show(view,
    h("p", { class: "crumbs" }, h("a", { href: "#/groups" }, "Scaling groups"), " / ", group.name),
    h("h1", {}, group.name, " ", h("code", {}, group.id)),
    h("dl", { class: "facts" },
      h("dt", {}, "Type"), h("dd", {}, group.group_type),
      h("dt", {}, "Status"), h("dd", {}, group.status),
      h("dt", {}, "Min / max / desired"), h("dd", {}, `${group.min_size} / ${group.max_size} / ${group.desired_capacity}`),
      h("dt", {}, "Scaling configuration"), h("dd", {}, group.scaling_configuration_id ?? group.launch_template_id ?? "none"),
      h("dt", {}, "Suspended processes"), h("dd", {}, group.suspended_processes.join(", ") || "none")),
    tabs, body);
  const draw = { instances: instancesTab, configurations: configurationsTab, "rolling-updates": tasksTab, events: eventsTab }[tab];
  try {
    await draw(group, body, sub, view);
  } catch (error) {
    body.replaceChildren(errorBox(error));
  }
}

async function instancesTab(group, body) {
  const instances = await get(`/v1/instances?scaling_group_id=${encodeURIComponent(group.id)}`);
  body.replaceChildren(table("Instances", ["Instance", "Lifecycle state", "Health", "Image", "Weight", "Updated by"],
    instances.items.map((i) => h("tr", { "data-instance": i.id },
      h("td", {}, h("code", {}, i.id)),
      h("td", {}, i.lifecycle_state),
      h("td", {}, i.health_status),
      h("td", { class: "image" }, i.image_id),
      h("td", {}, i.load_balancer_weight ?? "–"),
      h("td", {}, i.tags.join(", ")))),
    "The group has no instance."));
}

const CONFIGURATION_TABS = [
  ["", "Scaling configurations"],
  ["image-tasks", "Update image tasks"],
];

async function configurationsTab(group, body, sub, view) {
  const nav = h("nav", { class: "tabs subtabs", "aria-label": "Scaling configurations" },
    CONFIGURATION_TABS.map(([name, label]) =>
      h("a", { href: `#/groups/${group.id}/configurations${name ? `/${name}` : ""}`,
        "aria-current": (sub === "image-tasks" ? "image-tasks" : "") === name ? "page" : false }, label)));
  const inner = h("div", { id: "subtab" }, h("p", {}, "Loading…"));
  body.replaceChildren(nav, inner);
  if (sub === "image-tasks") return imageTasksList(group, inner, view);
  if (sub === "update-image") return updateImageForm(group, inner);
  return configurationsList(group, inner);
}

/// An image's id, and its name from the catalog when that says more.
function imageCell(id, names) {
  const name = names.get(id);
  return [h("span", { class: "image" }, id), name && name !== id ? [" ", h("span", { class: "image-name" }, name)] : null];
}

async function configurationsList(group, body) {
  const [configurations, images] = await Promise.all([
    get(`/v1/scaling-configurations?scaling_group_id=${encodeURIComponent(group.id)}`),
    get("/v1/images"),
  ]);
  const names = new Map(images.items.map((image) => [image.id, image.name]));
  const rows = configurations.items.map((c) => {
    const cell = h("td", {});
    const draw = () => cell.replaceChildren(...imageCell(c.image_id, names).flat().filter(Boolean), " ",
      h("button", { type: "button", onclick: edit }, "Edit image"));
    function edit() {
      const select = imageSelect(`image-${c.id}`, images.items, c.image_id);
      const problem = h("div", {});
      cell.replaceChildren(h("label", { for: `image-${c.id}`, class: "inline" }, "Image"), select,
        h("button", { type: "button", "data-save": true, onclick: save }, "Save"),
        h("button", { type: "button", onclick: draw }, "Cancel"), problem);
      select.focus();
      async function save() {
        try {
          const changed = await patch(`/v1/scaling-configurations/${encodeURIComponent(c.id)}`, { image_id: select.value });
          c.image_id = changed.image_id;
          draw();
          notice(`${c.id} now uses ${c.image_id} for new instances`);
        } catch (error) {
          problem.replaceChildren(errorBox(error));
        }
      }
    }
    draw();
    return h("tr", { "data-configuration": c.id }, h("td", {}, c.name, h("br"), h("code", {}, c.id)), h("td", {}, c.state), cell, h("td", {}, c.instance_type));
  });
  body.replaceChildren(table("Scaling configurations", ["Name / ID", "State", "Image", "Instance type"], rows,
    "The group has no scaling configuration."),
    h("p", { class: "hint" }, "Changing a configuration's image changes new instances only; an image rolling update changes the running ones."));
}

// ------------------------------------------------------------------------- image update tasks

function imageTaskRow(t) {
  return h("tr", { "data-image-task": t.id, "data-status": t.status },
    h("td", {}, h("a", { href: `#/image-tasks/${t.id}` }, t.id)),
    h("td", {}, statusBadge(t.status)),
    h("td", {}, t.schedule),
    h("td", {}, t.next_firing_at ?? "–"),
    h("td", {}, t.timer_trigger ? t.firing_count : "–"),
    h("td", {}, t.image_id ? [h("span", { class: "image" }, t.image_id), t.image_name ? [h("br"), t.image_name] : null] : (t.image_name ?? "–")),
    h("td", {}, t.created_at));
}

async function imageTasksList(group, body, view) {
  const list = h("div", { id: "image-tasks" });
  async function refresh() {
    const tasks = await get(`/v1/image-update-tasks?scaling_group_id=${encodeURIComponent(group.id)}`);
    list.replaceChildren(table("Image update tasks, newest first",
      ["Task", "Status", "Schedule", "Next firing", "Firings", "Image made", "Created"],
      tasks.items.map(imageTaskRow),
      "No image update task yet for this group."));
  }
  body.replaceChildren(
    h("p", {}, h("a", { class: "button", href: `#/groups/${group.id}/configurations/update-image`, id: "update-image" }, "Update image")),
    h("p", { class: "hint" }, "An image update task makes a custom image from one of the group's instances and puts it into scaling configurations: now, at a time, or periodically."),
    list);
  await refresh();
  every(view, 2000, () => refresh().catch((error) => list.replaceChildren(errorBox(error))));
}

function radio(name, value, label, checked) {
  const id = `${name}-${value}`;
  return h("label", { class: "check", for: id }, h("input", { type: "radio", id, name, value, checked }), label);
}

async function updateImageForm(group, body) {
  const [instances, configurations] = await Promise.all([
    get(`/v1/instances?scaling_group_id=${encodeURIComponent(group.id)}`),
    get(`/v1/scaling-configurations?scaling_group_id=${encodeURIComponent(group.id)}`),
  ]);
  const instance = h("select", {}, instances.items.map((i) =>
    h("option", { value: i.id }, `${i.id} (${i.lifecycle_state}, ${i.image_id})`)));
  const imageName = h("input", { spellcheck: "false", maxlength: 128 });
  const placeholder = () => { imageName.placeholder = `UpdateImage_from_${instance.value}`; };
  instance.addEventListener("change", placeholder);
  placeholder();
  const chosen = h("fieldset", { id: "configurations" }, h("legend", {}, "Scaling configurations to update (at least one)"),
    configurations.items.map((c) => h("label", { class: "check" },
      h("input", { type: "checkbox", name: "configuration", value: c.id }), `${c.name} (${c.id}, ${c.image_id})`)));
  const when = h("fieldset", { id: "executed-at" }, h("legend", {}, "Executed at"),
    radio("executed", "now", "Now", true), radio("executed", "scheduled", "Scheduled", false), radio("executed", "periodic", "Periodic", false));
  const runAt = h("input", { type: "datetime-local", step: 1 });
  const recurrence = h("select", {}, h("option", { value: "cron" }, "Cron expression"), h("option", { value: "rate" }, "Rate"));
  const expression = h("input", { spellcheck: "false", placeholder: "0 0 2 21-25 * ?" });
  recurrence.addEventListener("change", () => {
    expression.placeholder = recurrence.value === "cron" ? "0 0 2 21-25 * ?" : "1 day";
  });
  const startAt = h("input", { type: "datetime-local", step: 1 });
  const expiresAt = h("input", { type: "datetime-local", step: 1 });
  const timeZone = h("input", { value: "UTC", spellcheck: "false" });
  const role = h("input", { spellcheck: "false", autocomplete: "off" });
  const scheduled = h("fieldset", {}, h("legend", {}, "Scheduled"),
    field("run-at", "Run at", runAt, "Once, at this time in the time zone below."));
  const periodic = h("fieldset", {}, h("legend", {}, "Periodic"),
    field("recurrence", "Recurrence", recurrence),
    field("expression", "Expression", expression, "Cron: Quartz fields sec min hour day-of-month month day-of-week, ? in one day field (0 0 2 21-25 * ? is 02:00 on days 21 to 25). Rate: 30 minute, 2 hour, 1 day."),
    field("start-at", "Start time", startAt, "Optional: when a rate starts counting, or the first time a cron may fire."),
    field("expires-at", "Expires at", expiresAt, "Required: no firing after this time."));
  const zone = field("time-zone", "Time zone", timeZone, "An IANA name such as Asia/Shanghai; the times above are in it.");
  const showWhen = () => {
    const value = when.querySelector("input:checked").value;
    scheduled.hidden = value !== "scheduled";
    periodic.hidden = value !== "periodic";
    zone.hidden = value === "now";
  };
  when.addEventListener("change", showWhen);
  showWhen();

  const status = h("div", { id: "update-image-status" });
  const submit = h("button", { type: "submit", id: "update-image-submit" }, "Create image update task");
  const form = h("form", { class: "card", "aria-labelledby": "update-image-title", novalidate: true },
    h("h2", { id: "update-image-title" }, "Update image"),
    h("p", {}, `A custom image is made from the source instance's system disk and put into the chosen scaling configurations of ${group.name}. Only instances created afterwards use it; a rolling update changes the running ones.`),
    field("source-instance", "Instance", instance, "The source instance: it must be running when the task fires."),
    field("image-name", "Custom image name", imageName, "Optional. Each image made is named <name>_on_<execution id>_at_<time>."),
    chosen, when, scheduled, periodic, zone,
    field("role", "RAM role (required for Scheduled and Periodic)", role, "The RAM role OOS assumes to run the task, e.g. OOSServiceRole. A task that runs now uses your own permissions."),
    h("div", { class: "row" }, submit, h("a", { href: `#/groups/${group.id}/configurations/image-tasks` }, "Back")),
    status);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ids = [...chosen.querySelectorAll("input:checked")].map((box) => box.value);
    const hints = [];
    if (!instance.value) hints.push("The group has no instance to make the image from.");
    if (ids.length === 0) hints.push("Choose at least one scaling configuration.");
    const parameters = { instanceId: instance.value, scalingConfigurationIds: ids };
    if (imageName.value.trim()) parameters.targetImageName = imageName.value.trim();
    if (role.value.trim()) parameters.OOSAssumeRole = role.value.trim();
    const executed = when.querySelector("input:checked").value;
    const zoneName = timeZone.value.trim() || "UTC";
    if (executed === "scheduled") {
      if (!runAt.value) hints.push("Give the time to run at.");
      parameters.timerTrigger = { Type: "at", Expression: runAt.value, TimeZone: zoneName };
    } else if (executed === "periodic") {
      if (!expression.value.trim()) hints.push("Give the recurrence's expression.");
      if (!expiresAt.value) hints.push("Give the time the task expires at.");
      parameters.timerTrigger = { Type: recurrence.value, Expression: expression.value.trim(), TimeZone: zoneName, EndDate: expiresAt.value };
      if (startAt.value) parameters.timerTrigger.StartDate = startAt.value;
    }
    if (hints.length) {
      status.replaceChildren(h("div", { class: "error", role: "alert" }, hints.join(" ")));
      return;
    }
    submit.disabled = true;
    status.replaceChildren();
    try {
      const task = await post("/v1/image-update-tasks", { parameters });
      location.hash = `#/image-tasks/${task.id}`;
    } catch (error) {
      status.replaceChildren(errorBox(error));
    } finally {
      submit.disabled = false;
    }
  });
  body.replaceChildren(form);
  instance.focus();
}

async function imageTaskPage(id) {
  const view = currentView;
  let task = await get(`/v1/image-update-tasks/${encodeURIComponent(id)}`);
  const group = task.scaling_group_ids[0];
  const summary = h("section", { id: "image-task-summary", "aria-live": "polite" });
  const actions = h("div", { class: "row", id: "image-task-actions" });
  const problem = h("div", { id: "image-task-error" });
  const firings = h("section", { id: "image-task-firings" });
  show(view,
    h("p", { class: "crumbs" }, h("a", { href: "#/groups" }, "Scaling groups"), " / ",
      group ? [h("a", { href: `#/groups/${group}/configurations/image-tasks` }, group), " / "] : null, task.id),
    h("h1", {}, "Image update task ", h("code", {}, task.id)),
    summary, actions, problem, firings);

  function draw() {
    summary.replaceChildren(h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", {}, h("span", { id: "image-task-status", "data-task": task.id, "data-status": task.status }, statusBadge(task.status))),
      task.status_message ? [h("dt", {}, "Message"), h("dd", {}, task.status_message)] : null,
      h("dt", {}, "Source instance"), h("dd", {}, h("code", {}, task.instance_id)),
      h("dt", {}, "Image name"), h("dd", {}, task.target_image_name),
      h("dt", {}, "Scaling configurations"), h("dd", {}, task.scaling_configuration_ids.join(", ")),
      h("dt", {}, "Schedule"), h("dd", { id: "image-task-schedule" }, task.schedule),
      task.assume_role ? [h("dt", {}, "RAM role"), h("dd", {}, task.assume_role)] : null,
      task.timer_trigger ? [
        h("dt", {}, "Next firing"), h("dd", { id: "image-task-next" }, task.next_firing_at ?? "none left"),
        h("dt", {}, "Firings"), h("dd", {}, task.firing_count)] : null,
      task.image_name ? [h("dt", {}, "Image made"), h("dd", { id: "image-task-image" }, task.image_id ? [h("span", { class: "image" }, task.image_id), " "] : null, task.image_name)] : null,
      h("dt", {}, "Created"), h("dd", {}, task.created_at, task.ended_at ? ` · ended ${task.ended_at}` : "")));
    const buttons = [];
    if (task.timer_trigger && !task.finished) {
      buttons.push(h("button", { type: "button", id: "cancel-image-task", onclick: async () => {
        if (!confirmed(`Cancel ${task.id}? No further firing (one in flight finishes).`)) return;
        problem.replaceChildren();
        try {
          task = { ...task, ...(await post(`/v1/image-update-tasks/${encodeURIComponent(task.id)}/cancel`)) };
          notice("Cancelled");
          await refresh();
        } catch (error) {
          problem.replaceChildren(errorBox(error));
        }
      } }, "Cancel"));
    }
    actions.replaceChildren(...buttons);
    firings.replaceChildren(task.timer_trigger ? table("Firings, oldest first",
      ["Firing", "Status", "Image id", "Image name", "Fired", "Ended", "Message"],
      (task.firings ?? []).map((f) => h("tr", { "data-firing": f.id, "data-status": f.status },
        h("td", {}, h("code", {}, f.id)),
        h("td", {}, statusBadge(f.status)),
        h("td", { class: "image" }, f.image_id ?? "–"),
        h("td", {}, f.image_name ?? "–"),
        h("td", {}, f.fired_at ?? "–"),
        h("td", {}, f.ended_at ?? "–"),
        h("td", {}, f.status_message || ""))),
      "No firing yet.") : null);
  }

  async function refresh() {
    task = await get(`/v1/image-update-tasks/${encodeURIComponent(task.id)}`);
    draw();
  }

  draw();
  every(view, 1000, () => refresh().catch((error) => problem.replaceChildren(errorBox(error))));
}

function imageSelect(id, images, selected) {
  return h("select", { id, name: id },
    images.map((image) => h("option", { value: image.id, selected: image.id === selected }, `${image.id} (${image.os})`)));
}

async function tasksTab(group, body) {
  const tasks = await get(`/v1/rolling-updates?scaling_group_id=${encodeURIComponent(group.id)}`);
  const rows = tasks.items.map((t) => h("tr", { "data-task": t.id },
    h("td", {}, h("a", { href: `#/tasks/${t.id}` }, t.id)),
    h("td", {}, t.kind, t.invoke_type === "rollback" ? " (rollback)" : ""),
    h("td", {}, statusBadge(statusText(t))),
    h("td", {}, `batch ${t.current_batch} of ${t.batch_count}`),
    h("td", {}, `${t.counters.success + t.counters.skipped} done · ${t.counters.failed} failed · ${t.counters.total} in all`),
    h("td", {}, t.created_at)));
  body.replaceChildren(
    h("p", {}, h("a", { class: "button", href: `#/groups/${group.id}/new-task`, id: "create-task" }, "Create execution task")),
    table("Rolling updates, newest first", ["Execution", "Type", "Status", "Batches", "Progress", "Created"], rows,
      "No rolling update yet for this group."));
}

// An event's task, or "–" for a group's own events (its health check's), which have none.
function executionLink(id) {
  return id ? h("a", { href: `#/tasks/${id}` }, id) : "–";
}

async function eventsTab(group, body) {
  const input = h("input", { id: "keywords", name: "keywords", type: "search", placeholder: "failed and i-… / rollback or cancelled" });
  const results = h("div", {});
  async function search() {
    const words = input.value.trim();
    const query = new URLSearchParams({ scaling_group_id: group.id, limit: "200" });
    if (words) query.set("keywords", words);
    try {
      const events = await get(`/v1/events?${query}`);
      const mine = events.items;
      results.replaceChildren(table("Events, newest first", ["When", "Level", "Kind", "Execution", "Content"],
        mine.map((e) => h("tr", { class: e.level.toLowerCase() },
          h("td", {}, e.created_at), h("td", {}, e.level), h("td", {}, e.kind),
          h("td", {}, executionLink(e.execution_id)), h("td", {}, e.content))),
        words ? "No event of this group matches." : "No event for this group yet."));
    } catch (error) {
      results.replaceChildren(errorBox(error));
    }
  }
  const form = h("form", { role: "search", class: "row" },
    h("label", { for: "keywords" }, "Keywords (", h("code", {}, "and"), " / ", h("code", {}, "or"), ")"), input,
    h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => { event.preventDefault(); search(); });
  body.replaceChildren(form, results);
  await search();
}

// ------------------------------------------------------------------------- create a task

function field(id, label, control, hint) {
  control.id = id;
  control.name = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("small", {}, hint) : null);
}

async function newTaskPage(id) {
  const view = currentView;
  const [group, images, packages, configurations] = await Promise.all([
    get(`/v1/scaling-groups/${encodeURIComponent(id)}`),
    get("/v1/images"),
    get("/v1/packages"),
    get(`/v1/scaling-configurations?scaling_group_id=${encodeURIComponent(id)}`),
  ]);
  const active = configurations.items.find((c) => c.id === group.scaling_configuration_id);
  const eci = group.group_type === "ECI";
  const types = [["image", "Image update"], ["script", "Script execution"], ["package", "Package"]];
  if (eci) types.push(["containers", "Container group update (ECI)"]);
  const type = h("select", {}, types.map(([value, label]) => h("option", { value }, label)));

  const image = imageSelect("image", images.items, null);
  const rollbackImage = imageSelect("rollback-image", images.items, active?.image_id);
  const maxErrors = h("input", { type: "number", min: 0, value: 0 });
  const commandType = h("select", {}, ["RunShellScript", "RunBatScript", "RunPowerShellScript"].map((t) => h("option", { value: t }, t)));
  const script = h("textarea", { rows: 4, spellcheck: "false" });
  const rollbackScript = h("textarea", { rows: 2, spellcheck: "false" });
  const workingDir = h("input", { spellcheck: "false" });
  const timeout = h("input", { type: "number", min: 1, value: 600 });
  const packageNames = [...new Set(packages.items.map((p) => p.name))];
  const packageName = h("select", {}, packageNames.map((n) => h("option", { value: n }, n)));
  const packageVersion = h("select", {});
  const fillVersions = () => packageVersion.replaceChildren(...packages.items
    .filter((p) => p.name === packageName.value).map((p) => h("option", { value: p.version }, p.version)));
  packageName.addEventListener("change", fillVersions);
  fillVersions();
  const packageAction = h("select", {}, h("option", { value: "install" }, "Install"), h("option", { value: "uninstall" }, "Uninstall"));
  const updateType = h("select", {}, h("option", { value: "RenewUpdate" }, "RenewUpdate"), h("option", { value: "IncrementalUpdate" }, "IncrementalUpdate"));
  const containers = h("textarea", { rows: 3, spellcheck: "false" }, JSON.stringify(active?.containers?.length ? active.containers : [{ name: "app", image: "" }]));

  const batches = h("input", { type: "number", min: 1, max: 100, value: 2, required: true });
  const pause = h("select", {},
    h("option", { value: "Automatic" }, "Automatic: no pause"),
    h("option", { value: "FirstBatchPause" }, "FirstBatchPause: pause after the first batch"),
    h("option", { value: "EveryBatchPause" }, "EveryBatchPause: pause after every batch but the last"));
  const processes = h("fieldset", { class: "processes" }, h("legend", {}, "Processes to suspend while it runs"),
    PROCESSES.map((p) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "process", value: p, checked: true }), p)));

  const sections = {
    image: h("fieldset", {}, h("legend", {}, "Image"),
      field("image", "Image for update", image),
      field("rollback-image", "Image for rollback", rollbackImage, "A rollback of this task uses it by default."),
      field("max-errors", "Max errors", maxErrors, "Failed instances tolerated before the task pauses (FailurePaused).")),
    script: h("fieldset", {}, h("legend", {}, "Script"),
      field("command-type", "Script type", commandType),
      field("script", "Script for execution", script),
      field("rollback-script", "Script for rollback", rollbackScript, "Optional; a rollback of this task runs it."),
      field("working-dir", "Working directory", workingDir, "Optional."),
      field("timeout", "Timeout (seconds)", timeout)),
    package: h("fieldset", {}, h("legend", {}, "Package"),
      field("package-name", "Package", packageName),
      field("package-version", "Version", packageVersion),
      field("package-action", "Action", packageAction)),
    containers: h("fieldset", {}, h("legend", {}, "Containers"),
      field("update-type", "Update type", updateType),
      field("containers", "Containers (JSON)", containers, 'e.g. [{"name":"app","image":"app:v2"}]'),
      field("max-errors-eci", "Max errors", h("input", { type: "number", min: 0, value: 0 }))),
  };
  const showType = () => {
    for (const [name, section] of Object.entries(sections)) section.hidden = name !== type.value;
  };
  type.addEventListener("change", showType);
  showType();

  const status = h("div", { id: "create-status" });
  const submit = h("button", { type: "submit", id: "create-submit" }, "Create task");
  const form = h("form", { class: "card", "aria-labelledby": "new-task-title", novalidate: true },
    h("p", { class: "crumbs" }, h("a", { href: "#/groups" }, "Scaling groups"), " / ",
      h("a", { href: `#/groups/${group.id}/rolling-updates` }, group.name), " / new task"),
    h("h1", { id: "new-task-title" }, "Create execution task"),
    h("p", {}, `On the InService instances of ${group.name} (${group.id}), batch by batch. Its scaling processes are suspended meanwhile, and each batch is put in Standby (no traffic) while it changes.`),
    field("task-type", "Task type", type),
    Object.values(sections),
    field("batches", "Execution batches", batches, "1 to 100; instances are split into this many batches, larger ones first."),
    field("pause", "Suspension policy", pause),
    processes,
    h("div", { class: "row" }, submit, h("a", { href: `#/groups/${group.id}/rolling-updates` }, "Back")),
    status);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const parameters = {
      invokeType: "invoke",
      scalingGroupId: group.id,
      batchNumber: Number(batches.value),
      batchPauseOption: pause.value,
    };
    const chosen = [...processes.querySelectorAll("input:checked")].map((box) => box.value);
    parameters.enterProcess = chosen;
    parameters.exitProcess = chosen;
    const hints = [];
    if (!(Number(batches.value) >= 1 && Number(batches.value) <= 100)) hints.push("Execution batches must be from 1 to 100.");
    switch (type.value) {
      case "image":
        if (active) parameters.scalingConfigurationId = active.id;
        parameters.imageId = image.value;
        if (rollbackImage.value) parameters.sourceImageId = rollbackImage.value;
        parameters.maxErrors = Number(maxErrors.value);
        break;
      case "script":
        parameters.commandType = commandType.value;
        parameters.invokeScript = script.value;
        if (rollbackScript.value.trim()) parameters.rollbackScript = rollbackScript.value;
        if (workingDir.value.trim()) parameters.workingDir = workingDir.value.trim();
        parameters.timeout = Number(timeout.value);
        if (!script.value.trim()) hints.push("Write the script to run.");
        break;
      case "package":
        parameters.packageName = packageName.value;
        parameters.packageVersion = packageVersion.value;
        parameters.action = packageAction.value;
        if (!packageName.value) hints.push("The catalog has no package: add one first (POST /v1/packages).");
        break;
      case "containers":
        parameters.updateType = updateType.value;
        try {
          parameters.containers = JSON.parse(containers.value);
        } catch {
          hints.push("Containers must be a JSON list, e.g. [{\"name\":\"app\",\"image\":\"app:v2\"}].");
        }
        parameters.maxErrors = Number(document.getElementById("max-errors-eci").value);
        break;
    }
    if (hints.length) {
      status.replaceChildren(h("div", { class: "error", role: "alert" }, hints.join(" ")));
      return;
    }
    submit.disabled = true;
    try {
      const task = await post("/v1/rolling-updates", { template_name: TEMPLATES[type.value], parameters });
      location.hash = `#/tasks/${task.id}`;
    } catch (error) {
      status.replaceChildren(errorBox(error));
    } finally {
      submit.disabled = false;
    }
  });
  show(view, form);
  type.focus();
}

// ------------------------------------------------------------------------- a task

async function taskPage(id) {
  const view = currentView;
  let task = await get(`/v1/rolling-updates/${encodeURIComponent(id)}`);
  const group = await get(`/v1/scaling-groups/${encodeURIComponent(task.scaling_group_id)}`).catch(() => null);
  const summary = h("section", { id: "task-summary", "aria-live": "polite" });
  const actions = h("div", { class: "row", id: "task-actions" });
  const problem = h("div", { id: "task-error" });
  const instances = h("section", { id: "task-instances" });
  const rollbackForm = h("div", { id: "rollback-form" });
  show(view,
    h("p", { class: "crumbs" }, h("a", { href: "#/groups" }, "Scaling groups"), " / ",
      h("a", { href: `#/groups/${task.scaling_group_id}/rolling-updates` }, group?.name ?? task.scaling_group_id), " / ", task.id),
    h("h1", {}, "Rolling update ", h("code", {}, task.id)),
    summary, actions, problem, rollbackForm, instances);

  async function act(promise, done) {
    problem.replaceChildren();
    try {
      await promise();
      if (done) notice(done);
      await refresh();
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
  }

  function drawSummary() {
    const c = task.counters;
    const p = task.parameters ?? {};
    const change = p.imageId ? `image ${p.imageId}` : p.invokeScript !== undefined ? `script (${p.commandType ?? "RunShellScript"})`
      : p.packageName ? `package ${p.packageName} ${p.packageVersion ?? ""} (${p.action ?? "install"})` : task.kind;
    summary.replaceChildren(h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", {}, h("span", { id: "task-status", "data-task": task.id, "data-status": task.status, "data-waiting": task.waiting_status ?? "" }, statusBadge(statusText(task)))),
      h("dt", {}, "Batch"), h("dd", { id: "task-batch" }, `batch ${task.current_batch} of ${task.batch_count}`, task.batch_sizes.length ? ` (sizes ${task.batch_sizes.join(", ")}; pause ${p.batchPauseOption ?? "Automatic"})` : ""),
      h("dt", {}, "Type"), h("dd", {}, `${task.kind}, ${task.invoke_type}: ${change}`),
      h("dt", {}, "Instances"), h("dd", { id: "task-counters" }, `${c.success} succeeded · ${c.skipped} skipped · ${c.failed} failed · ${c.cancelled} cancelled · ${c.running} running · ${c.queued} queued · ${c.total} in all`),
      task.status_message ? [h("dt", {}, "Message"), h("dd", {}, task.status_message)] : null,
      h("dt", {}, "Created"), h("dd", {}, task.created_at, task.ended_at ? ` · ended ${task.ended_at}` : "")));
    const buttons = [];
    if (task.status === "Waiting" && task.waiting_status === "BatchPaused") {
      buttons.push(h("button", { type: "button", id: "continue", class: "primary", onclick: () =>
        act(() => post(`/v1/rolling-updates/${task.id}/continue`), "Continued") }, "Continue"));
    }
    if (!task.finished) {
      const restore = h("input", { type: "checkbox", id: "cancel-restore" });
      buttons.push(h("span", { class: "group" },
        h("button", { type: "button", id: "cancel-task", onclick: () => {
          if (!confirmed(`Cancel ${task.id}?`)) return;
          act(() => post(`/v1/rolling-updates/${task.id}/cancel`, { restore: restore.checked }), "Cancelled");
        } }, "Cancel task"),
        h("label", { class: "check", for: "cancel-restore" }, restore, "restore (take instances out of Standby, resume processes)")));
    }
    if (task.invoke_type === "invoke" && (task.finished || task.status === "Waiting")) {
      buttons.push(h("button", { type: "button", id: "rollback", onclick: drawRollback }, "Roll back"));
    }
    actions.replaceChildren(...buttons);
  }

  function drawRollback() {
    const batches = h("input", { type: "number", min: 1, max: 100, value: task.batch_count || 1 });
    const pause = h("select", {}, ["Automatic", "FirstBatchPause", "EveryBatchPause"].map((v) => h("option", { value: v }, v)));
    const status = h("div", {});
    const form = h("form", { class: "card", "aria-label": "Roll back" },
      h("h2", {}, "Create rollback task"),
      h("p", {}, "The same kind of task, undoing what this one changed (its rollback image, script or previous package version). A Waiting task is cancelled first."),
      field("rollback-batches", "Execution batches", batches),
      field("rollback-pause", "Suspension policy", pause),
      h("div", { class: "row" }, h("button", { type: "submit", id: "rollback-submit" }, "Create rollback task"),
        h("button", { type: "button", onclick: () => rollbackForm.replaceChildren() }, "Close")),
      status);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const created = await post(`/v1/rolling-updates/${task.id}/rollback`, {
          parameters: { batchNumber: Number(batches.value), batchPauseOption: pause.value },
        });
        location.hash = `#/tasks/${created.id}`;
      } catch (error) {
        status.replaceChildren(errorBox(error));
      }
    });
    rollbackForm.replaceChildren(form);
    batches.focus();
  }

  async function drawInstances() {
    const works = await get(`/v1/rolling-updates/${encodeURIComponent(task.id)}/instances`);
    const deciding = !task.finished;
    const rows = works.items.map((w) => {
      const buttons = [];
      const decide = (what, label) => h("button", { type: "button", "data-action": what, "data-instance": w.instance_id,
        "aria-label": `${label} ${w.instance_id}`,
        onclick: () => act(() => post(`/v1/rolling-updates/${task.id}/instances/${w.instance_id}/${what}`), `${label}: ${w.instance_id}`) }, label);
      if (deciding && w.status === "Failed") buttons.push(decide("retry", "Retry"), decide("skip", "Skip"), decide("cancel", "Cancel"));
      if (deciding && w.status === "Queued" && task.waiting_status === "FailurePaused") buttons.push(decide("skip", "Skip"), decide("cancel", "Cancel"));
      const output = w.output || w.error_message
        ? h("details", {}, h("summary", {}, w.error_code ?? "Output"),
          w.error_message ? h("p", {}, w.error_message) : null,
          w.output ? h("pre", {}, w.output + (w.output_truncated ? "\n…" : "")) : null)
        : "–";
      return h("tr", { "data-instance": w.instance_id, "data-status": w.status },
        h("td", {}, h("code", {}, w.instance_id)),
        h("td", {}, w.batch),
        h("td", {}, statusBadge(w.status)),
        h("td", {}, w.status === "Queued" || w.status === "Aborted" ? "–" : w.step, w.attempt > 1 ? ` (attempt ${w.attempt})` : ""),
        h("td", {}, w.exit_code ?? "–"),
        h("td", {}, output),
        h("td", { class: "standby" }, w.in_standby ? "Standby" : ""),
        h("td", { class: "actions" }, buttons));
    });
    instances.replaceChildren(table("Instances", ["Instance", "Batch", "Status", "Step", "Exit code", "Output", "Standby", "Actions"], rows,
      "This task has no target instance (it changed nothing)."));
  }

  async function refresh(view) {
    task = view ?? (await get(`/v1/rolling-updates/${encodeURIComponent(task.id)}`));
    drawSummary();
    await drawInstances();
  }

  await refresh(task);
  keep(view, follow(task.id,
    (view) => refresh(view).catch((error) => problem.replaceChildren(errorBox(error))),
    () => refresh().catch(() => {}),
    (error) => problem.replaceChildren(errorBox(error))));
}

/// A confirmation the tests can answer: window.confirm, unless the page was told to skip it.
function confirmed(question) {
  return document.body.dataset.noConfirm === "true" || window.confirm(question);
}

// ------------------------------------------------------------------------- alert rules

function patternText(pattern) {
  const part = (label, list) => `${label} ${list.length ? list.join(", ") : "any"}`;
  const words = pattern.keywords.length ? `; words ${pattern.keywords.join(` ${pattern.relation ?? "or"} `)}` : "";
  return `${part("levels", pattern.levels)}; ${part("kinds", pattern.kinds)}; ${part("templates", pattern.names)}${words}`;
}

async function alertsPage() {
  const view = currentView;
  const rules = await get("/v1/alert-rules");
  const rows = rules.items.map((rule) => h("tr", { "data-rule": rule.name },
    h("td", {}, h("a", { href: `#/alerts/${encodeURIComponent(rule.name)}` }, rule.name), rule.description ? [h("br"), rule.description] : null),
    h("td", {}, statusBadge(rule.enabled ? "Enabled" : "Disabled")),
    h("td", {}, rule.patterns.map((pattern) => h("div", {}, patternText(pattern)))),
    h("td", {}, rule.webhooks.map((w) => h("div", {}, `${w.id}: ${w.method} ${w.url}`))),
    h("td", {}, rule.updated_at)));
  show(view, h("h1", {}, "Alerts"),
    h("p", {}, "Alert rules send the events they match to webhooks (CloudMonitor's event rules)."),
    h("p", {}, h("a", { class: "button", href: "#/alerts/new", id: "create-rule" }, "Create alert rule")),
    table("Alert rules", ["Rule", "State", "Patterns (any of them)", "Webhooks", "Updated"], rows, "No alert rule yet."));
}

function checkboxes(legend, name, values, chosen) {
  return h("fieldset", { "data-list": name }, h("legend", {}, legend),
    values.map((value) => h("label", { class: "check" },
      h("input", { type: "checkbox", name, value, checked: chosen.includes(value) }), value)));
}

/// One pattern's fields, and how to read them back.
function patternEditor(pattern, index, onRemove) {
  const prefix = `pattern-${index}`;
  const names = [...Object.values(TEMPLATES), IMAGE_TASK_TEMPLATE];
  const keywords = h("input", { spellcheck: "false", value: pattern.keywords.join(" ") });
  const relation = h("select", {}, ["or", "and"].map((value) =>
    h("option", { value, selected: (pattern.relation ?? "or") === value }, value === "or" ? "or: any word" : "and: every word")));
  const levels = checkboxes("Levels", `${prefix}-level`, LEVELS, pattern.levels);
  const kinds = checkboxes("Kinds", `${prefix}-kind`, EVENT_KINDS, pattern.kinds);
  const templates = checkboxes("Templates", `${prefix}-name`, names, pattern.names);
  const element = h("fieldset", { class: "pattern", "data-pattern": index },
    h("legend", {}, `Pattern ${index + 1}`),
    h("p", { class: "hint" }, "A list with nothing ticked takes any value."),
    levels, kinds, templates,
    field(`${prefix}-keywords`, "Keywords", keywords, "Words the event's text, group or execution must contain (space-separated)."),
    field(`${prefix}-relation`, "Keyword relation", relation),
    onRemove ? h("button", { type: "button", onclick: onRemove }, `Remove pattern ${index + 1}`) : null);
  const ticked = (set) => [...set.querySelectorAll("input:checked")].map((box) => box.value);
  return {
    element,
    read: () => ({
      levels: ticked(levels),
      kinds: ticked(kinds),
      names: ticked(templates),
      keywords: keywords.value.split(/[\s,]+/).filter(Boolean),
      relation: relation.value,
    }),
  };
}

async function alertRulePage(name) {
  const view = currentView;
  let rule = name ? await get(`/v1/alert-rules/${encodeURIComponent(name)}`) : null;
  const path = () => `/v1/alert-rules/${encodeURIComponent(rule.name)}`;
  const summary = h("section", { id: "rule-summary", "aria-live": "polite" });
  const problem = h("div", { id: "rule-error" });
  const webhooks = h("section", { id: "rule-webhooks" });
  const deliveries = h("section", { id: "rule-deliveries" });

  async function act(promise, done) {
    problem.replaceChildren();
    try {
      const changed = await promise();
      if (changed) rule = changed;
      if (done) notice(done);
      drawSummary();
      drawWebhooks();
    } catch (error) {
      problem.replaceChildren(errorBox(error));
    }
  }

  // The editor: a new rule's name, description and patterns.
  const ruleName = h("input", { spellcheck: "false", required: true, maxlength: 64 });
  const description = h("input", { value: rule?.description ?? "" });
  const patternList = h("div", {});
  let editors = [];
  let patterns = (rule?.patterns.length ? rule.patterns : [{ levels: [], kinds: [], names: [], keywords: [] }]);
  const drawPatterns = () => {
    editors = patterns.map((pattern, index) => patternEditor(pattern, index, patterns.length > 1 ? () => {
      patterns = editors.map((e) => e.read()).filter((_, i) => i !== index);
      drawPatterns();
    } : null));
    patternList.replaceChildren(...editors.map((e) => e.element));
  };
  drawPatterns();
  const editStatus = h("div", { id: "rule-edit-status" });
  const editor = h("form", { class: "card", "aria-labelledby": "rule-edit-title", novalidate: true },
    h("h2", { id: "rule-edit-title" }, rule ? "Patterns" : "New alert rule"),
    rule ? null : field("rule-name", "Rule name", ruleName, "1 to 64 letters, digits, -, _ or ., starting with a letter or digit."),
    field("rule-description", "Description", description, "Optional."),
    h("p", {}, "The rule matches an event when any of its patterns does."),
    patternList,
    h("div", { class: "row" },
      h("button", { type: "button", id: "add-pattern", onclick: () => {
        patterns = [...editors.map((e) => e.read()), { levels: [], kinds: [], names: [], keywords: [] }];
        drawPatterns();
      } }, "Add pattern"),
      h("button", { type: "submit", id: "rule-save" }, rule ? "Save patterns" : "Create rule")),
    editStatus);
  editor.addEventListener("submit", async (event) => {
    event.preventDefault();
    editStatus.replaceChildren();
    const target = rule?.name ?? ruleName.value.trim();
    if (!target) {
      editStatus.replaceChildren(h("div", { class: "error", role: "alert" }, "Give the rule a name."));
      return;
    }
    try {
      const saved = await put(`/v1/alert-rules/${encodeURIComponent(target)}`,
        { description: description.value, patterns: editors.map((e) => e.read()) });
      if (!rule) {
        location.hash = `#/alerts/${encodeURIComponent(saved.name)}`;
        return;
      }
      rule = saved;
      notice("Patterns saved");
      drawSummary();
    } catch (error) {
      editStatus.replaceChildren(errorBox(error));
    }
  });

  const crumbs = h("p", { class: "crumbs" }, h("a", { href: "#/alerts" }, "Alerts"), " / ", rule?.name ?? "new rule");
  if (!rule) {
    show(view, crumbs, h("h1", {}, "Create alert rule"), editor);
    ruleName.focus();
    return;
  }

  function drawSummary() {
    summary.replaceChildren(h("dl", { class: "facts" },
      h("dt", {}, "State"), h("dd", {}, h("span", { id: "rule-state", "data-enabled": String(rule.enabled) }, statusBadge(rule.enabled ? "Enabled" : "Disabled"))),
      rule.description ? [h("dt", {}, "Description"), h("dd", {}, rule.description)] : null,
      h("dt", {}, "Patterns"), h("dd", {}, rule.patterns.map((pattern) => h("div", {}, patternText(pattern)))),
      h("dt", {}, "Updated"), h("dd", {}, rule.updated_at)),
    h("div", { class: "row" },
      h("button", { type: "button", id: "rule-toggle", onclick: () =>
        act(() => post(`${path()}/state`, { action: rule.enabled ? "disable" : "enable" }), rule.enabled ? "Disabled" : "Enabled") },
      rule.enabled ? "Disable" : "Enable"),
      h("button", { type: "button", id: "rule-delete", onclick: async () => {
        if (!confirmed(`Delete the alert rule ${rule.name}? Its pending deliveries are dropped.`)) return;
        problem.replaceChildren();
        try {
          await remove(path());
          notice(`Deleted ${rule.name}`);
          location.hash = "#/alerts";
        } catch (error) {
          problem.replaceChildren(errorBox(error));
        }
      } }, "Delete rule")));
  }

  const hookId = h("input", { spellcheck: "false", maxlength: 64 });
  const hookUrl = h("input", { type: "url", spellcheck: "false", placeholder: "http://127.0.0.1:9000/hooks/rollscale" });
  const hookMethod = h("select", {}, h("option", { value: "POST" }, "POST: the event as JSON"), h("option", { value: "GET" }, "GET: as query parameters"));
  const hookStatus = h("div", { id: "webhook-status" });
  const hookForm = h("form", { class: "card", "aria-labelledby": "webhook-title", novalidate: true },
    h("h2", { id: "webhook-title" }, "Add or change a webhook"),
    field("webhook-id", "Webhook id", hookId, "The same id changes that webhook."),
    field("webhook-url", "URL", hookUrl, "http:// or https://."),
    field("webhook-method", "Method", hookMethod),
    h("div", { class: "row" }, h("button", { type: "submit", id: "webhook-save" }, "Save webhook")),
    hookStatus);
  hookForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    hookStatus.replaceChildren();
    if (!hookId.value.trim()) {
      hookStatus.replaceChildren(h("div", { class: "error", role: "alert" }, "Give the webhook an id."));
      return;
    }
    try {
      rule = await put(`${path()}/webhooks/${encodeURIComponent(hookId.value.trim())}`, { url: hookUrl.value.trim(), method: hookMethod.value });
      notice(`Webhook ${hookId.value.trim()} saved`);
      hookId.value = "";
      hookUrl.value = "";
      drawWebhooks();
    } catch (error) {
      hookStatus.replaceChildren(errorBox(error));
    }
  });

  function drawWebhooks() {
    webhooks.replaceChildren(table("Webhooks", ["Id", "Method", "URL", "Actions"],
      rule.webhooks.map((w) => h("tr", { "data-webhook": w.id },
        h("td", {}, h("code", {}, w.id)), h("td", {}, w.method), h("td", {}, w.url),
        h("td", { class: "actions" }, h("button", { type: "button", "data-remove-webhook": w.id, "aria-label": `Remove webhook ${w.id}`,
          onclick: () => act(() => remove(`${path()}/webhooks/${encodeURIComponent(w.id)}`), `Webhook ${w.id} removed`) }, "Remove")))),
    "No webhook yet: the rule sends nothing."), hookForm);
  }

  async function drawDeliveries() {
    const listed = await get(`${path()}/deliveries?limit=100`);
    deliveries.replaceChildren(table("Deliveries, newest first",
      ["Status", "Webhook", "Attempts", "Last error", "Event", "Created", "Delivered / next try"],
      listed.items.map((d) => h("tr", { "data-delivery": d.id, "data-status": d.status },
        h("td", {}, statusBadge(d.status)),
        h("td", {}, h("code", {}, d.webhook_id)),
        h("td", {}, d.attempts),
        h("td", {}, d.last_error ?? "–"),
        h("td", {}, `${d.event.kind} (${d.event.level}) `, executionLink(d.event.execution_id), h("br"), d.event.content),
        h("td", {}, d.created_at),
        h("td", {}, d.delivered_at ?? (d.next_attempt_at ? `next ${d.next_attempt_at}` : "–")))),
      "Nothing sent yet: the rule applies to events recorded after it was made."));
  }

  show(view, crumbs, h("h1", {}, "Alert rule ", h("code", {}, rule.name)), summary, problem, webhooks, deliveries, editor);
  drawSummary();
  drawWebhooks();
  await drawDeliveries();
  every(view, 1500, () => drawDeliveries().catch((error) => deliveries.replaceChildren(errorBox(error))));
}

// ------------------------------------------------------------------------- routing

async function route() {
  const view = newView();
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  header();
  if (!session() || parts[0] === "signin") {
    if (session()) location.hash = "#/groups";
    else return signInPage();
  }
  try {
    if (parts[0] === "groups" && parts[1] && parts[2] === "new-task") await newTaskPage(parts[1]);
    else if (parts[0] === "groups" && parts[1]) {
      const tab = GROUP_TABS.some(([name]) => name === parts[2]) ? parts[2] : "instances";
      await groupPage(parts[1], tab, parts[3]);
    } else if (parts[0] === "tasks" && parts[1]) await taskPage(parts[1]);
    else if (parts[0] === "image-tasks" && parts[1]) await imageTaskPage(parts[1]);
    else if (parts[0] === "alerts" && parts[1] === "new") await alertRulePage(null);
    else if (parts[0] === "alerts" && parts[1]) await alertRulePage(parts[1]);
    else if (parts[0] === "alerts") await alertsPage();
    else await groupsPage();
  } catch (error) {
    if (error instanceof ApiError && (error.code === "InvalidToken" || error.code === "TokenExpired" || error.code === "NotSignedIn")) {
      signOut();
      header();
      return signInPage(error);
    }
    show(view, h("h1", {}, "Something went wrong"), errorBox(error), h("p", {}, h("a", { href: "#/groups" }, "Back to the scaling groups")));
  }
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
route();

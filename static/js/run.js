// Run panel: streams a snippet's output over a WebSocket as the program produces it.
// Progressive enhancement: without JavaScript the page shows the last verified output.
// Everything from the server is shown as text (textContent), never parsed as HTML.
// Once the page works, the code editor (static/editor/) is loaded and replaces the plain
// listing: Run then runs what is in the editor.
"use strict";

// CodeMirror adds style elements: they carry this script's nonce past the page's CSP.
const NONCE = document.currentScript?.nonce || "";

// How a run ended, in a reader's words; `limits` are the run's, from its start event.
const ENDINGS = {
  ok: (exit) => `Finished in ${exit.wall_ms} ms`,
  error: (exit) =>
    `Exited with an error in ${exit.wall_ms} ms` +
    (exit.code !== null ? `, exit code ${exit.code}` : `, signal ${exit.signal}`),
  timeout: (exit, limits) => `Stopped: wall-clock time limit, ${limits.wall_seconds} s`,
  cpu: (exit, limits) => `Stopped: CPU time limit, ${limits.cpu_seconds} s`,
  memory: (exit, limits) => `Stopped: memory limit, ${limits.memory_mb} MB`,
  output_limit: (exit, limits) => `Stopped: output limit, ${limits.output_kb} KiB`,
  cancelled: (exit) => `Stopped in ${exit.wall_ms} ms`,
  lost: (exit) => exit.message,
};

// Just enough SQL highlighting for the query panel, with the colours of highlight.css.
const SQL_KEYWORDS = [
  "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "IS", "NULL", "AS", "ON", "JOIN",
  "INNER", "LEFT", "OUTER", "INSERT", "INTO", "VALUES", "UPDATE", "SET", "DELETE", "CREATE",
  "TABLE", "INDEX", "DROP", "ORDER", "BY", "GROUP", "HAVING", "LIMIT", "OFFSET", "DISTINCT",
  "CASE", "WHEN", "THEN", "ELSE", "END", "EXISTS", "LIKE", "ESCAPE", "BEGIN", "COMMIT",
  "ROLLBACK", "SAVEPOINT", "RELEASE", "RETURNING", "UNION", "ALL", "WITH", "OVER",
  "PARTITION", "ASC", "DESC", "FOR", "NOWAIT", "EXPLAIN", "CAST", "COUNT", "SUM", "AVG",
];
const SQL_TOKEN = new RegExp(
  `('(?:[^']|'')*')|("[^"]*")|\\b(\\d+(?:\\.\\d+)?)\\b|\\b(${SQL_KEYWORDS.join("|")})\\b`,
  "gi",
);
const SQL_CLASSES = ["s1", "nv", "mi", "k"];
const SQL_GROUP_COLOURS = 6;

function highlightSql(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(SQL_TOKEN)) {
    fragment.append(text.slice(last, match.index));
    fragment.append(element("span", SQL_CLASSES[match.slice(1).findIndex((g) => g !== undefined)], match[0]));
    last = match.index + match[0].length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ANSI escape sequences of one stream: colours and bold/italic/underline become classes,
// anything else (cursor moves, clearing) is dropped. A sequence may arrive in two pieces.
const ESCAPE = /\x1b\[([0-9;?]*)[ -/]*([@-~])|\x1b[@-Z\\-_]?/g;
const UNFINISHED_ESCAPE = /\x1b(\[[0-9;?]*[ -/]*)?$/;

class AnsiStream {
  constructor() {
    this.style = {};
    this.held = "";
  }

  // [[text, classes]...] for the next piece of the stream.
  pieces(text) {
    text = this.held + text;
    const unfinished = text.match(UNFINISHED_ESCAPE);
    this.held = unfinished ? unfinished[0] : "";
    text = text.slice(0, text.length - this.held.length);
    const pieces = [];
    let last = 0;
    for (const match of text.matchAll(ESCAPE)) {
      pieces.push([text.slice(last, match.index), this.classes()]);
      if (match[2] === "m") this.apply(match[1]);
      last = match.index + match[0].length;
    }
    pieces.push([text.slice(last), this.classes()]);
    return pieces.filter(([piece]) => piece);
  }

  apply(parameters) {
    const codes = parameters.split(";").map((code) => Number(code || 0));
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i];
      if (code === 0) this.style = {};
      else if (code === 1) this.style.bold = true;
      else if (code === 3) this.style.italic = true;
      else if (code === 4) this.style.underline = true;
      else if (code === 22) delete this.style.bold;
      else if (code === 23) delete this.style.italic;
      else if (code === 24) delete this.style.underline;
      else if (code >= 30 && code <= 37) this.style.colour = code - 30;
      else if (code >= 90 && code <= 97) this.style.colour = code - 90 + 8;
      else if (code === 39) delete this.style.colour;
      else if (code === 38 || code === 48) i += codes[i + 1] === 5 ? 2 : 4; // 256/RGB: skipped
    }
  }

  classes() {
    const names = ["bold", "italic", "underline"].filter((name) => this.style[name]);
    const classes = names.map((name) => `ansi-${name}`);
    if (this.style.colour !== undefined) classes.push(`ansi-colour-${this.style.colour}`);
    return classes;
  }
}

// One result set of an SQL snippet; NULL shown as such, unlike the text "NULL".
function resultTable(event) {
  const table = element("table", "run-table", "");
  const head = table.createTHead().insertRow();
  for (const column of event.columns) head.append(element("th", "", column));
  const body = table.createTBody();
  for (const values of event.rows) {
    const row = body.insertRow();
    for (const value of values) {
      row.append(element("td", value === null ? "run-table__null" : "", value === null ? "NULL" : String(value)));
    }
  }
  if (event.truncated) {
    table.createCaption().textContent = `The first ${event.rows.length} rows`;
  }
  return table;
}

function socketUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}${path}`;
}

// The editor bundle, loaded once for the whole page.
let editorLoading = null;

function loadEditor(src) {
  editorLoading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.nonce = NONCE;
    script.addEventListener("load", () => resolve(window.GlossaryEditor));
    script.addEventListener("error", reject);
    document.head.append(script);
  });
  return editorLoading;
}

// Mark a line of the plain listing that sent a query, and bring it into view.
function markLine(code, number) {
  const line = code ? code.querySelectorAll(".line")[number - 1] : null;
  if (!line) return;
  for (const marked of code.querySelectorAll(".line.is-target")) {
    marked.classList.remove("is-target");
  }
  line.classList.add("is-target");
  line.scrollIntoView({ block: "center", behavior: "smooth" });
}

// The SQL panel: each query laid out (the server does that), marked when it is one of
// several similar queries (the same SQL) or a duplicate (the same SQL and parameters),
// and runs of similar queries one after another folded under their first.
class SqlPanel {
  // showLine(number): bring the code line that sent a query into view.
  constructor(details, showLine) {
    this.details = details;
    this.list = details.querySelector("[data-sql]");
    this.heading = details.querySelector("[data-sql-heading]");
    this.showLine = showLine;
    this.clear();
  }

  clear() {
    this.list.replaceChildren();
    this.count = 0;
    this.ms = 0;
    this.shapes = new Map(); // SQL: {count, tags, colour}
    this.copies = new Map(); // SQL and parameters: {count, tags}
    this.lastGroup = null;
    this.updateHeading();
  }

  add(event) {
    this.details.hidden = false;
    this.count += 1;
    this.ms += Number(event.ms) || 0;
    const shape = this.entry(this.shapes, event.sql, { colour: this.shapes.size % SQL_GROUP_COLOURS });
    const copy = this.entry(this.copies, `${event.sql}\u0000${JSON.stringify(event.params)}`, {});
    if (this.lastGroup && this.lastGroup.sql === event.sql) {
      this.addRepeat(event, shape, copy);
    } else {
      this.addQuery(event, shape, copy);
    }
    this.updateTags(shape, "similar");
    this.updateTags(copy, "duplicated");
    this.updateHeading();
  }

  entry(map, key, fields) {
    if (!map.has(key)) map.set(key, { count: 0, tags: [], ...fields });
    const found = map.get(key);
    found.count += 1;
    return found;
  }

  addQuery(event, shape, copy) {
    const item = element("li", `sql-query sql-colour-${shape.colour}`);
    item.append(this.meta(event, shape, copy));
    const shown = event.short || event.formatted || event.sql;
    // Wrapped, never scrolled: nothing here needs a keyboard user to scroll it.
    const text = element("pre", "sql-text highlight");
    text.append(highlightSql(shown));
    item.append(text);
    if (event.short) {
      const toggle = element("button", "sql-toggle", "Show every column");
      toggle.type = "button";
      toggle.setAttribute("aria-expanded", "false");
      toggle.addEventListener("click", () => {
        const expanded = toggle.getAttribute("aria-expanded") !== "true";
        text.replaceChildren(highlightSql(expanded ? event.formatted : event.short));
        toggle.setAttribute("aria-expanded", String(expanded));
        toggle.textContent = expanded ? "Collapse the columns" : "Show every column";
      });
      item.append(toggle);
    }
    if (event.plan) {
      item.append(element("p", "sql-label", "Query plan"));
      item.append(element("pre", "sql-plan", event.plan));
    }
    this.list.append(item);
    this.lastGroup = { sql: event.sql, item, repeats: null, count: 1 };
  }

  addRepeat(event, shape, copy) {
    const group = this.lastGroup;
    if (!group.repeats) {
      const repeats = element("details", "sql-repeats");
      repeats.append(element("summary"), element("ol", "sql-repeat-list"));
      group.item.append(repeats);
      group.repeats = repeats;
    }
    group.count += 1;
    group.repeats.querySelector("summary").textContent =
      `${group.count - 1} more like it, one after another`;
    const row = element("li");
    row.append(this.meta(event, shape, copy));
    if (event.params && event.params.length) {
      row.append(element("p", "sql-params", `parameters: ${JSON.stringify(event.params)}`));
    }
    group.repeats.querySelector("ol").append(row);
  }

  meta(event, shape, copy) {
    const meta = element("p", "sql-meta");
    meta.append(`#${this.count} · `);
    if (event.line) {
      const line = element("button", "sql-line", `line ${event.line}`);
      line.type = "button";
      line.addEventListener("click", () => this.showLine(event.line));
      meta.append(line);
    } else {
      meta.append("line ?");
    }
    meta.append(` · ${event.ms} ms`);
    const similar = element("span", "sql-tag sql-tag--similar");
    const duplicate = element("span", "sql-tag sql-tag--duplicate");
    shape.tags.push(similar);
    copy.tags.push(duplicate);
    meta.append(" ", similar, " ", duplicate);
    return meta;
  }

  updateTags(group, word) {
    for (const tag of group.tags) {
      tag.hidden = group.count < 2;
      tag.textContent = `${word} ×${group.count}`;
    }
  }

  updateHeading() {
    const groupSize = (map) =>
      [...map.values()].filter((g) => g.count > 1).reduce((sum, g) => sum + g.count, 0);
    const parts = [`${this.count} ${this.count === 1 ? "query" : "queries"}`, `${this.ms.toFixed(1)} ms`];
    const similar = groupSize(this.shapes);
    const duplicates = groupSize(this.copies);
    if (similar) parts.push(`${similar} similar`);
    if (duplicates) parts.push(`${duplicates} duplicate${duplicates === 1 ? "" : "s"}`);
    this.heading.textContent = parts.join(" · ");
  }
}

// A run panel. `source` says what a run runs: socketPath() is the socket to run on,
// message(action) the message of a "run" (or an exercise's "check"), showLine(number)
// brings a line of the code into view. An exercise's check streams the run, then one
// `check` event per check and a `verdict` that ends it: source.onCheck and onVerdict.
function setupRunPanel(panel, source) {
  const runButton = panel.querySelector("[data-run]");
  const startButtons = panel.querySelectorAll("[data-run], [data-check]");
  const stopButton = panel.querySelector("[data-stop]");
  const output = panel.querySelector("[data-output]");
  const status = panel.querySelector("[data-status]");
  const sqlDetails = panel.querySelector(".sql-panel");
  const sql = sqlDetails ? new SqlPanel(sqlDetails, (number) => source.showLine(number)) : null;
  let socket = null;
  let limits = {};
  let streams = {};
  let checking = false; // a check goes on after the run's exit, up to its verdict

  // aria-disabled, not disabled: a disabled button would drop the keyboard focus.
  function setRunning(running) {
    for (const button of startButtons) button.setAttribute("aria-disabled", String(running));
    stopButton.setAttribute("aria-disabled", String(!running));
  }

  function isDisabled(button) {
    return button.getAttribute("aria-disabled") === "true";
  }

  function setStatus(text, state) {
    status.textContent = text;
    status.dataset.state = state;
  }

  // Follow new output only while the reader is at the bottom of the box.
  function atBottom() {
    return output.scrollHeight - output.scrollTop - output.clientHeight < 4;
  }

  function write(nodes) {
    const follow = atBottom();
    output.append(...nodes);
    if (follow) output.scrollTop = output.scrollHeight;
  }

  function append(kind, text) {
    output.querySelector(".run-note--waiting")?.remove();
    streams[kind] ??= new AnsiStream();
    write(
      streams[kind]
        .pieces(text)
        .map(([piece, classes]) => element("span", [`run-${kind}`, ...classes].join(" "), piece)),
    );
  }

  function note(text, kind) {
    output.querySelector(".run-note--waiting")?.remove();
    write([element("span", `run-note run-note--${kind}`, text)]);
  }

  function finish() {
    setRunning(false);
    source.onFinish?.();
    if (socket) {
      const closing = socket;
      socket = null;
      closing.close();
    }
  }

  function handle(event) {
    switch (event.type) {
      case "queued":
        setStatus(`Waiting for a free slot: number ${event.position} in the queue…`, "queued");
        note(`Waiting for a free slot: number ${event.position} in the queue.`, "waiting");
        break;
      case "start":
        limits = event.limits || {};
        output.querySelector(".run-note--waiting")?.remove();
        setStatus("Running…", "running");
        break;
      case "stdout":
      case "stderr":
        append(event.type, event.text);
        break;
      case "sql":
        if (sql) sql.add(event);
        break;
      case "table":
        output.querySelector(".run-note--waiting")?.remove();
        write([resultTable(event)]);
        break;
      case "exit": {
        const ending = ENDINGS[event.reason] || ((exit) => `Ended: ${exit.reason}`);
        if (event.truncated) {
          note(
            `Output cut here: the run reached its ${limits.output_kb} KiB output limit.`,
            "cut",
          );
        }
        if (checking) {
          setStatus(`${ending(event, limits)}. Checking the answer…`, "checking");
          stopButton.setAttribute("aria-disabled", "true");
        } else {
          setStatus(ending(event, limits), event.reason);
          finish();
        }
        break;
      }
      case "check":
        source.onCheck?.(event);
        break;
      case "verdict":
        setStatus(
          event.passed ? "Every check passed." : event.message || "Some checks failed.",
          event.passed ? "ok" : "error",
        );
        source.onVerdict?.(event);
        finish();
        break;
      case "error":
        // Nothing ran: the panel is ready for another try.
        setStatus(event.message, "error");
        finish();
        break;
    }
  }

  function run(action = "run") {
    if (isDisabled(runButton)) return;
    output.replaceChildren();
    if (sql) sql.clear();
    streams = {};
    checking = action === "check";
    output.hidden = false;
    setRunning(true);
    setStatus("Connecting…", "connecting");
    source.onStart?.(action);
    const message = JSON.stringify(source.message(action));
    const own = new WebSocket(socketUrl(source.socketPath()));
    socket = own;
    own.addEventListener("open", () => own.send(message));
    own.addEventListener("message", (event) => {
      if (socket === own) handle(JSON.parse(event.data));
    });
    own.addEventListener("close", () => {
      if (socket === own) {
        const unfinished = checking ? "the checks" : "the run";
        setStatus(`The connection closed before ${unfinished} ended.`, "error");
        socket = null;
        setRunning(false);
      }
    });
  }

  runButton.addEventListener("click", () => run());
  panel.querySelector("[data-check]")?.addEventListener("click", () => run("check"));
  stopButton.addEventListener("click", () => {
    if (isDisabled(stopButton)) return;
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ action: "cancel" }));
      stopButton.setAttribute("aria-disabled", "true");
    }
  });

  setRunning(false);
  panel.hidden = false;
  return { run };
}

// A snippet's panel. Its code is the listing's until the editor replaces the listing;
// code that differs from the curated code is sent with the run message.
function setupSnippet(panel) {
  const block = panel.closest(".snippet")?.querySelector(".code-block");
  const listing = block?.querySelector(".highlight");
  const pre = block?.querySelector("pre");
  // Pygments ends the listing with a newline the curated code may not have.
  const curated = pre ? pre.textContent.replace(/\n$/, "") : "";
  let editor = null;
  const controls = setupRunPanel(panel, {
    socketPath: () => `/ws/snippets/${encodeURIComponent(panel.dataset.slug)}/`,
    message() {
      const code = editor?.getCode();
      return code === undefined || code === curated ? { action: "run" } : { action: "run", code };
    },
    showLine: (number) => (editor ? editor.revealLine(number) : markLine(pre, number)),
  });
  if (!panel.dataset.editor || !listing) return;

  const reset = panel.querySelector("[data-reset]");
  const edited = panel.querySelector("[data-edited]");
  const note = panel.closest(".snippet").querySelector("[data-editor-note]");
  function showEdited(code) {
    const changed = code !== curated;
    edited.hidden = !changed;
    reset.setAttribute("aria-disabled", String(!changed));
  }
  loadEditor(panel.dataset.editor).then(
    (Editor) => {
      const holder = element("div", "code-editor");
      listing.after(holder);
      editor = Editor.create({
        parent: holder,
        doc: curated,
        language: block.dataset.language,
        label: `${pre.getAttribute("aria-label")} (editable)`,
        nonce: NONCE,
        onRun: controls.run,
        onChange: showEdited,
      });
      listing.hidden = true;
      block.editorText = () => editor.getCode(); // what the Copy button copies
      reset.hidden = false;
      showEdited(curated);
      if (note) note.hidden = false;
      reset.addEventListener("click", () => {
        if (reset.getAttribute("aria-disabled") === "true") return;
        editor.setCode(curated);
        editor.focus();
      });
    },
    () => {}, // without the editor the listing stays, and Run runs the curated code
  );
}

// The playground: a runtime picker, the reader's code, Run and Share. Without
// JavaScript the form still shares the code in its text box.
function setupPlayground(panel) {
  const form = document.querySelector("[data-play-form]");
  const picker = form.elements.runtime;
  const textarea = form.elements.code;
  const shared = document.querySelector("[data-share-result]");
  const starters = JSON.parse(document.getElementById("play-starters").textContent);
  let Editor = null;
  let editor = null;
  let runtime = picker.value;
  const code = () => (editor ? editor.getCode() : textarea.value);
  const controls = setupRunPanel(panel, {
    socketPath: () => `/ws/play/${encodeURIComponent(picker.value)}/`,
    message: () => ({ action: "run", code: code() }),
    showLine: (number) => editor?.revealLine(number),
  });

  function mount(text) {
    editor?.view.destroy();
    editor = Editor.create({
      parent: form.querySelector("[data-play-editor]"),
      doc: text,
      language: starters[picker.value]?.language,
      label: "Your code",
      nonce: NONCE,
      onRun: controls.run,
      onChange: (changed) => {
        textarea.value = changed;
      },
    });
  }

  // A new runtime brings its starter, unless the reader has written code of their own.
  picker.addEventListener("change", () => {
    const current = code();
    const text =
      !current.trim() || current === starters[runtime]?.code ? starters[picker.value].code : current;
    runtime = picker.value;
    textarea.value = text;
    if (Editor) mount(text);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    textarea.value = code();
    shared.hidden = false;
    shared.replaceChildren("Sharing…");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
      });
      const answer = await response.json();
      if (!response.ok) {
        shared.replaceChildren(answer.error || "The code could not be shared.");
        return;
      }
      const link = element("a", "share-link", answer.url);
      link.href = answer.url;
      shared.replaceChildren("Shared: ", link);
    } catch {
      shared.replaceChildren("The code could not be shared; try again.");
    }
  });

  loadEditor(panel.dataset.editor).then(
    (loaded) => {
      Editor = loaded;
      mount(textarea.value);
      textarea.hidden = true;
    },
    () => {}, // the text box stays
  );
}

// An exercise: the reader's answer in the editor (the starter code to begin with), Run
// and Check, the checks' results as they come, hints one at a time. A passing verdict is
// announced as a "glossary:solved" event (static/js/progress.js keeps it).
function setupExercise(panel) {
  const exercise = panel.closest("[data-exercise]");
  const slug = exercise.dataset.exercise;
  const block = exercise.querySelector("[data-answer]");
  const listing = block.querySelector(".highlight");
  // Pygments ends the listing with a newline the starter code may not have.
  const starter = listing.querySelector("pre").textContent.replace(/\n$/, "");
  const checks = exercise.querySelector("[data-checks]");
  const checkList = checks.querySelector("ol");
  const verdict = checks.querySelector("[data-verdict]");
  let editor = null;
  let reported = 0; // check events so far in this check
  let verdictSeen = false;

  // The i-th check event reports on the i-th check listed; an unlisted one is added.
  function checkItem(index, name) {
    let item = checkList.querySelectorAll("[data-check-item]")[index];
    if (!item) {
      item = element("li", "check-result");
      item.dataset.checkItem = "";
      const head = element("p", "check-result__name");
      head.append(element("span", "check-result__mark"), ` ${name}`);
      head.firstChild.dataset.checkMark = "";
      const detail = element("pre", "check-result__detail");
      detail.dataset.checkDetail = "";
      item.append(head, detail);
      checkList.append(item);
    }
    return item;
  }

  const controls = setupRunPanel(panel, {
    socketPath: () => `/ws/exercises/${encodeURIComponent(slug)}/`,
    message: (action) => ({ action, code: editor ? editor.getCode() : starter }),
    showLine: (number) => editor?.revealLine(number),
    onStart(action) {
      if (action !== "check") return;
      reported = 0;
      verdictSeen = false;
      for (const item of checkList.querySelectorAll("[data-check-item]")) {
        item.dataset.state = "checking";
        item.querySelector("[data-check-mark]").textContent = "";
        item.querySelector("[data-check-detail]").hidden = true;
      }
      verdict.dataset.passed = "";
      verdict.textContent = "Checking…";
    },
    onCheck(event) {
      const item = checkItem(reported, event.name);
      reported += 1;
      item.dataset.state = event.passed ? "pass" : "fail";
      item.querySelector("[data-check-mark]").textContent = event.passed ? "Pass" : "Fail";
      const detail = item.querySelector("[data-check-detail]");
      detail.textContent = event.detail || "";
      detail.hidden = !event.detail;
    },
    onVerdict(event) {
      verdictSeen = true;
      const failed = checkList.querySelectorAll('[data-state="fail"]').length;
      verdict.dataset.passed = String(event.passed);
      // A verdict with a message and no checks: the answer was not checked (stopped, lost).
      const notChecked = event.message && !reported;
      verdict.textContent = event.passed
        ? "Solved: every check passed."
        : notChecked
          ? `Not checked: ${event.message}`
          : `Not yet: ${failed} of ${reported} check${reported === 1 ? "" : "s"} failed.`;
      if (notChecked) {
        for (const item of checkList.querySelectorAll('[data-state="checking"]')) item.dataset.state = "pending";
      }
      if (event.passed) {
        document.dispatchEvent(new CustomEvent("glossary:solved", { detail: { exercise: slug } }));
      }
    },
    onFinish() {
      if (verdict.textContent === "Checking…" && !verdictSeen) {
        verdict.textContent = "The check did not finish: see why above, then try again.";
        for (const item of checkList.querySelectorAll('[data-state="checking"]')) {
          item.dataset.state = "pending";
        }
      }
    },
  });

  setupHints(exercise.querySelector("[data-hints]"));
  const reset = panel.querySelector("[data-reset]");
  const edited = panel.querySelector("[data-edited]");
  // The answer so far stays in this browser, so a reload or a visit later loses nothing.
  const draftKey = `glossary-answer:${slug}`;
  function showEdited(code) {
    edited.hidden = code === starter;
    reset.setAttribute("aria-disabled", String(code === starter));
    try {
      if (code === starter) localStorage.removeItem(draftKey);
      else localStorage.setItem(draftKey, code);
    } catch {} // storage refused (private mode, full): the answer just is not kept
  }
  let draft = null;
  try {
    draft = localStorage.getItem(draftKey);
  } catch {}
  loadEditor(panel.dataset.editor).then(
    (Editor) => {
      const holder = element("div", "code-editor");
      listing.after(holder);
      editor = Editor.create({
        parent: holder,
        doc: draft ?? starter,
        language: block.dataset.language,
        label: "Your answer",
        nonce: NONCE,
        onRun: controls.run,
        onChange: showEdited,
      });
      listing.hidden = true;
      reset.hidden = false;
      showEdited(editor.getCode());
      reset.addEventListener("click", () => {
        if (reset.getAttribute("aria-disabled") === "true") return;
        editor.setCode(starter);
        editor.focus();
      });
    },
    () => {}, // without the editor, Run and Check send the starter code
  );
}

// Hints are all in the page (a disclosure without JavaScript); here they come one at a
// time, in order, each behind a press of the button.
function setupHints(hints) {
  if (!hints) return;
  const items = [...hints.querySelectorAll("[data-hint]")];
  const list = hints.querySelector("ol");
  const button = element("button", "hint-button");
  button.type = "button";
  const holder = element("div", "hints");
  holder.setAttribute("aria-label", "Hints");
  holder.setAttribute("role", "region");
  for (const item of items) item.hidden = true;
  holder.append(list, button);
  hints.replaceWith(holder);
  let shown = 0;
  function update() {
    button.hidden = shown === items.length;
    button.textContent = `Show a hint (${shown + 1} of ${items.length})`;
  }
  button.addEventListener("click", () => {
    const hint = items[shown];
    hint.hidden = false;
    shown += 1;
    update();
    if (button.hidden) {
      // The button is gone: keyboard focus goes to the last hint instead of the page's top.
      hint.tabIndex = -1;
      hint.focus();
    }
  });
  update();
}

document.querySelectorAll(".run-panel[data-slug]").forEach(setupSnippet);
document.querySelectorAll(".run-panel[data-exercise-panel]").forEach(setupExercise);
document.querySelectorAll(".run-panel[data-play]").forEach(setupPlayground);

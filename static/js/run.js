// Run panel: streams a snippet's output over a WebSocket as the program produces it.
// Progressive enhancement: without JavaScript the page shows the last verified output.
"use strict";

const REASONS = {
  ok: "Finished",
  error: "Exited with an error",
  timeout: "Stopped: time limit reached",
  memory: "Stopped: memory limit reached",
  output_limit: "Stopped: output limit reached",
  cancelled: "Stopped",
};

// Just enough SQL highlighting for the query panel, with the colours of highlight.css.
// Built from text nodes and spans: nothing from the server is parsed as HTML.
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

function highlightSql(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(SQL_TOKEN)) {
    fragment.append(text.slice(last, match.index));
    const span = document.createElement("span");
    span.className = SQL_CLASSES[match.slice(1).findIndex((group) => group !== undefined)];
    span.textContent = match[0];
    fragment.append(span);
    last = match.index + match[0].length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

function socketUrl(slug) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}/ws/snippets/${encodeURIComponent(slug)}/`;
}

function setupPanel(panel) {
  const slug = panel.dataset.slug;
  const runButton = panel.querySelector("[data-run]");
  const stopButton = panel.querySelector("[data-stop]");
  const output = panel.querySelector("[data-output]");
  const status = panel.querySelector("[data-status]");
  const sqlList = panel.querySelector("[data-sql]");
  let socket = null;

  function setStatus(text, state) {
    status.textContent = text;
    status.dataset.state = state;
  }

  function append(kind, text) {
    const span = document.createElement("span");
    span.className = `run-${kind}`;
    span.textContent = text;
    output.append(span);
    output.scrollTop = output.scrollHeight;
  }

  function appendSql(event) {
    if (!sqlList) return;
    sqlList.closest("details").hidden = false;
    const item = document.createElement("li");
    const meta = document.createElement("p");
    meta.className = "sql-meta";
    meta.textContent = `line ${event.line ?? "?"} · ${event.ms} ms`;
    const sql = document.createElement("pre");
    sql.className = "sql-text highlight";
    sql.append(highlightSql(event.sql));
    item.append(meta, sql);
    if (event.params && event.params.length) {
      const params = document.createElement("p");
      params.className = "sql-meta";
      params.textContent = `parameters: ${JSON.stringify(event.params)}`;
      item.append(params);
    }
    if (event.plan) {
      const plan = document.createElement("pre");
      plan.className = "sql-plan";
      plan.textContent = event.plan;
      item.append(plan);
    }
    sqlList.append(item);
  }

  function finish() {
    runButton.disabled = false;
    stopButton.disabled = true;
    socket = null;
  }

  function handle(event) {
    switch (event.type) {
      case "queued":
        setStatus(`Waiting for a free slot (position ${event.position})…`, "queued");
        break;
      case "start":
        setStatus("Running…", "running");
        break;
      case "stdout":
      case "stderr":
        append(event.type, event.text);
        break;
      case "sql":
        appendSql(event);
        break;
      case "exit": {
        const reason = REASONS[event.reason] || event.reason;
        const code = event.code === null ? "" : `, exit code ${event.code}`;
        const cut = event.truncated ? " (output truncated)" : "";
        setStatus(`${reason} in ${event.wall_ms} ms${code}${cut}`, event.reason);
        socket.close();
        finish();
        break;
      }
      case "error":
        setStatus(event.message, "error");
        break;
    }
  }

  runButton.addEventListener("click", () => {
    output.replaceChildren();
    if (sqlList) sqlList.replaceChildren();
    output.hidden = false;
    runButton.disabled = true;
    stopButton.disabled = false;
    setStatus("Connecting…", "connecting");
    socket = new WebSocket(socketUrl(slug));
    socket.addEventListener("open", () => socket.send(JSON.stringify({ action: "run" })));
    socket.addEventListener("message", (message) => handle(JSON.parse(message.data)));
    socket.addEventListener("close", () => {
      if (socket !== null) {
        if (status.dataset.state === "running" || status.dataset.state === "connecting") {
          setStatus("Connection closed before the run ended.", "error");
        }
        finish();
      }
    });
  });

  stopButton.addEventListener("click", () => {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ action: "cancel" }));
      stopButton.disabled = true;
    }
  });

  panel.hidden = false;
}

document.querySelectorAll(".run-panel[data-slug]").forEach(setupPanel);

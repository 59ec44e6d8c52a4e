// A reader's progress, kept in this browser only (localStorage), no account: the exercises
// solved and the path steps read. Pages mark what is done; Export and Import move it to
// another browser as a JSON file. Steps are named by what they show ("topic:acid",
// "snippet:…", "exercise:…"), so a step read in one path counts in every path.
"use strict";

(() => {
  const KEY = "glossary-progress";
  const FORMAT = "db-glossary-progress";
  const MAX_BYTES = 1024 * 1024;
  const MAX_ENTRIES = 10000;

  class ProgressError extends Error {}

  function empty() {
    return { solved: new Set(), read: new Set() };
  }

  // The progress in text (a file's or localStorage's), or a ProgressError saying why not.
  function parse(text) {
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      throw new ProgressError("This file is not a progress file: it is not JSON.");
    }
    if (data === null || typeof data !== "object" || data.format !== FORMAT) {
      throw new ProgressError("This file is not a DB Glossary progress file.");
    }
    if (data.version !== 1) {
      throw new ProgressError(`This progress file has version ${data.version}; this site reads version 1.`);
    }
    const progress = empty();
    for (const name of ["solved", "read"]) {
      const list = data[name];
      const valid =
        Array.isArray(list) &&
        list.length <= MAX_ENTRIES &&
        list.every((entry) => typeof entry === "string" && entry.length <= 200);
      if (!valid) throw new ProgressError(`This progress file is damaged: "${name}" is not a list of names.`);
      for (const entry of list) progress[name].add(entry);
    }
    return progress;
  }

  function serialise(progress) {
    return JSON.stringify({
      format: FORMAT,
      version: 1,
      saved: new Date().toISOString(),
      solved: [...progress.solved].sort(),
      read: [...progress.read].sort(),
    });
  }

  function load() {
    try {
      const stored = localStorage.getItem(KEY);
      return stored ? parse(stored) : empty();
    } catch {
      return empty(); // storage refused (private mode) or damaged: start afresh, never fail
    }
  }

  function save(progress) {
    try {
      localStorage.setItem(KEY, serialise(progress));
      return true;
    } catch {
      return false;
    }
  }

  // Whether the thing a [data-progress-item] names is done: an exercise when solved, a
  // topic or snippet when its step was read.
  function isDone(progress, item) {
    return item.startsWith("exercise:") ? progress.solved.has(item.slice(9)) : progress.read.has(item);
  }

  function show(progress) {
    for (const mark of document.querySelectorAll("[data-progress-item]")) {
      const done = isDone(progress, mark.dataset.progressItem);
      mark.dataset.done = String(done);
      const label = mark.querySelector("[data-progress-label]");
      if (label) label.textContent = done ? (mark.dataset.progressItem.startsWith("exercise:") ? "Solved" : "Read") : "";
    }
    for (const counter of document.querySelectorAll("[data-progress-count]")) {
      const items = counter.dataset.progressCount.split(" ").filter(Boolean);
      const done = items.filter((item) => isDone(progress, item)).length;
      counter.textContent = `${done} of ${items.length} done`;
      counter.dataset.done = String(done);
      counter.hidden = false;
    }
    // A path's way back in: the first step not done yet.
    const resume = document.querySelector("[data-progress-resume]");
    const next = document.querySelector('.path-step[data-done="false"] a');
    if (resume && next && document.querySelector('.path-step[data-done="true"]')) {
      resume.href = next.href;
      resume.textContent = `Continue with step ${next.closest(".path-step").dataset.number}: ${next.textContent}`;
    }
    const solution = document.querySelector("[data-solution]");
    if (solution && progress.solved.has(solution.dataset.solution)) {
      solution.open = true;
      solution.querySelector("summary").textContent = "Solved: the worked explanation and a reference solution";
    }
  }

  function update(change) {
    const progress = load();
    change(progress);
    save(progress);
    show(progress);
  }

  function download(progress) {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([serialise(progress)], { type: "application/json" }));
    link.download = "db-glossary-progress.json";
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  async function importFile(file, message) {
    let imported;
    try {
      if (file.size > MAX_BYTES) throw new ProgressError("This file is too large to be a progress file.");
      imported = parse(await file.text());
    } catch (error) {
      message.dataset.state = "error";
      message.textContent = `${error instanceof ProgressError ? error.message : "The file could not be read."} Your progress here is unchanged.`;
      return;
    }
    // Merged, never replaced: importing loses nothing this browser already had.
    update((progress) => {
      for (const name of ["solved", "read"]) for (const entry of imported[name]) progress[name].add(entry);
    });
    message.dataset.state = "ok";
    message.textContent = `Imported ${imported.solved.size} solved exercise${imported.solved.size === 1 ? "" : "s"} and ${imported.read.size} read step${imported.read.size === 1 ? "" : "s"}.`;
  }

  function setupTools(tools) {
    const message = tools.querySelector("[data-progress-message]");
    tools.querySelector("[data-progress-export]").addEventListener("click", () => download(load()));
    const input = tools.querySelector("[data-progress-import]");
    input.addEventListener("change", () => {
      if (input.files.length) importFile(input.files[0], message).finally(() => (input.value = ""));
    });
    tools.hidden = false;
  }

  document.addEventListener("glossary:solved", (event) => {
    update((progress) => progress.solved.add(event.detail.exercise));
  });
  const reading = document.querySelector("[data-progress-read]");
  if (reading) {
    update((progress) => progress.read.add(reading.dataset.progressRead));
  } else {
    show(load());
  }
  document.querySelectorAll("[data-progress-tools]").forEach(setupTools);
})();

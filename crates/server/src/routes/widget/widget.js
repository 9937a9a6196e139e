// <evalmint-feedback investigation="TRACE_ID" endpoint="https://evalmint.example.com" key="em_…">
// A dependency-free feedback widget: thumbs up, not quite, thumbs down, an optional 1-5 rating,
// and a correction box that opens on a negative verdict. Every text is set with textContent.
// A submission keeps its idempotency key in localStorage until the server acknowledges it, so a
// page that was offline (or reloaded) retries the same feedback, never a duplicate; a page whose
// origin the key refuses says so and does not retry.
// Theme it with CSS variables on the element: --evalmint-accent, --evalmint-bg, --evalmint-fg,
// --evalmint-border, --evalmint-radius, --evalmint-font.
(() => {
  "use strict";
  if (customElements.get("evalmint-feedback")) return;

  const QUEUE = "evalmint-feedback-queue";
  const VERDICTS = [
    ["up", "\u{1F44D}", "Thumbs up: the conclusion was right"],
    ["not_quite", "\u{1F914}", "Not quite: partly right"],
    ["down", "\u{1F44E}", "Thumbs down: the conclusion was wrong"],
  ];
  const STYLE = `
    :host { display: inline-block; font: 14px/1.4 var(--evalmint-font, system-ui, sans-serif);
      color: var(--evalmint-fg, #1d2430); }
    .box { background: var(--evalmint-bg, #fff); border: 1px solid var(--evalmint-border, #d5dae1);
      border-radius: var(--evalmint-radius, 8px); padding: .6rem .8rem; }
    .row { display: flex; gap: .4rem; align-items: center; flex-wrap: wrap; margin: .2rem 0; }
    button { font: inherit; cursor: pointer; border: 1px solid var(--evalmint-border, #d5dae1);
      background: transparent; color: inherit; border-radius: var(--evalmint-radius, 8px); padding: .2rem .55rem; }
    button[aria-pressed="true"] { background: var(--evalmint-accent, #2f6fdf); color: #fff;
      border-color: var(--evalmint-accent, #2f6fdf); }
    button:focus-visible, textarea:focus-visible { outline: 2px solid var(--evalmint-accent, #2f6fdf); outline-offset: 2px; }
    textarea { font: inherit; width: 100%; min-height: 4rem; box-sizing: border-box; }
    .status { min-height: 1.2em; margin: .2rem 0 0; font-size: .9em; }
    [hidden] { display: none !important; }`;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function newKey() {
    if (crypto.randomUUID) return "widget-" + crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return "widget-" + Array.from(bytes, b => b.toString(16).padStart(2, "0")).join("");
  }

  function readQueue() {
    try { return JSON.parse(localStorage.getItem(QUEUE) || "[]"); } catch { return []; }
  }
  function writeQueue(items) {
    try { localStorage.setItem(QUEUE, JSON.stringify(items)); } catch { /* private mode: memory only */ }
  }

  class EvalmintFeedback extends HTMLElement {
    constructor() {
      super();
      this.verdict = null;
      this.rating = null;
      this.retryDelay = 1000;
      this.timer = null;
      this.onOnline = () => this.flush();
      const root = this.attachShadow({ mode: "open" });
      root.append(el("style", {}, STYLE));
      const box = el("div", { class: "box", part: "box", role: "group", "aria-label": "Feedback on this investigation" });
      box.append(el("p", { class: "row", part: "question" }, this.getAttribute("question") || "Was this investigation right?"));
      const verdicts = el("div", { class: "row", part: "verdicts" });
      this.verdictButtons = VERDICTS.map(([value, icon, label]) => {
        const button = el("button", { type: "button", "data-verdict": value, "aria-label": label, "aria-pressed": "false", title: label }, icon);
        button.addEventListener("click", () => this.choose(value));
        verdicts.append(button);
        return button;
      });
      box.append(verdicts);
      const ratings = el("div", { class: "row", part: "rating", role: "group", "aria-label": "Rating from 1 to 5 (optional)" });
      ratings.append(el("span", {}, "Rating:"));
      this.ratingButtons = [1, 2, 3, 4, 5].map(n => {
        const button = el("button", { type: "button", "data-rating": String(n), "aria-label": `Rate ${n} of 5`, "aria-pressed": "false" }, String(n));
        button.addEventListener("click", () => this.rate(n));
        ratings.append(button);
        return button;
      });
      box.append(ratings);
      this.form = el("form", { part: "correction", hidden: "" });
      const label = el("label", {}, "What was the actual cause?");
      this.textarea = el("textarea", { name: "correction", maxlength: "10000" });
      label.append(el("br"), this.textarea);
      this.form.append(label, el("button", { type: "submit" }, "Send feedback"));
      this.form.addEventListener("submit", event => { event.preventDefault(); this.submit(); });
      box.append(this.form);
      this.status = el("p", { class: "status", part: "status", role: "status", "aria-live": "polite" });
      box.append(this.status);
      root.append(box);
    }

    connectedCallback() {
      window.addEventListener("online", this.onOnline);
      this.flush();
    }
    disconnectedCallback() {
      window.removeEventListener("online", this.onOnline);
      clearTimeout(this.timer);
    }

    choose(verdict) {
      this.verdict = verdict;
      for (const b of this.verdictButtons) b.setAttribute("aria-pressed", String(b.dataset.verdict === verdict));
      if (verdict === "up") {
        this.form.hidden = true;
        this.submit();
      } else {
        this.form.hidden = false;
        this.textarea.focus();
      }
    }

    rate(n) {
      this.rating = n;
      for (const b of this.ratingButtons) b.setAttribute("aria-pressed", String(Number(b.dataset.rating) === n));
    }

    submit() {
      const body = { investigation_id: this.getAttribute("investigation"), verdict: this.verdict, idempotency_key: newKey() };
      if (this.rating) body.rating = this.rating;
      const correction = this.textarea.value.trim();
      if (correction && this.verdict !== "up") body.correction = correction;
      const user = this.getAttribute("user");
      if (user) body.user_id = user;
      const item = { endpoint: this.endpoint(), key: this.getAttribute("key"), body };
      writeQueue(readQueue().concat([item]));
      this.say("Sending…");
      this.flush();
    }

    endpoint() {
      return (this.getAttribute("endpoint") || location.origin).replace(/\/+$/, "");
    }

    say(text) { this.status.textContent = text; }

    async flush() {
      clearTimeout(this.timer);
      for (const item of readQueue()) {
        if (item.endpoint !== this.endpoint()) continue;
        let response;
        try {
          response = await fetch(item.endpoint + "/api/v1/feedback", {
            method: "POST",
            headers: { "Authorization": "Bearer " + item.key, "Content-Type": "application/json", "X-Evalmint-Origin": "widget" },
            body: JSON.stringify(item.body),
          });
        } catch {
          // A refused origin gets an answer the page may not read, which fetch reports like a
          // network failure. If the server answers an opaque request, it is reachable: the
          // origin was refused, and retrying would never help.
          if (await this.reachable(item.endpoint)) {
            writeQueue(readQueue().filter(q => q.body.idempotency_key !== item.body.idempotency_key));
            this.say("Feedback was refused: this page (" + location.origin + ") is not among the allowed origins of the widget's key.");
            this.dispatchEvent(new CustomEvent("evalmint-feedback-refused", { detail: item.body, bubbles: true }));
            continue;
          }
          this.retryLater("Offline: your feedback will be sent when the connection is back.");
          return;
        }
        if (response.status === 429 || response.status >= 500) {
          this.retryLater("The server is busy: retrying.");
          return;
        }
        writeQueue(readQueue().filter(q => q.body.idempotency_key !== item.body.idempotency_key));
        if (response.ok) {
          this.retryDelay = 1000;
          this.say("Thanks for your feedback!");
          this.dispatchEvent(new CustomEvent("evalmint-feedback-sent", { detail: item.body, bubbles: true }));
        } else {
          let message = "Feedback was refused (" + response.status + ")";
          try { const error = await response.json(); message += ": " + error.error.message; } catch { /* not JSON */ }
          this.say(message);
        }
      }
    }

    async reachable(endpoint) {
      try {
        await fetch(endpoint + "/healthz", { mode: "no-cors", cache: "no-store" });
        return true;
      } catch {
        return false;
      }
    }

    retryLater(message) {
      this.say(message);
      this.timer = setTimeout(() => this.flush(), this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, 60000);
    }
  }

  customElements.define("evalmint-feedback", EvalmintFeedback);
})();

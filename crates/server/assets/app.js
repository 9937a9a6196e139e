// Keyboard shortcuts for review: j/k move through the queue, a approves, e edits and r rejects in
// a form opened right under the row (Enter saves, Escape closes it), Enter opens. Keys typed into
// a field are left alone.
(function () {
  "use strict";
  function typing(e) {
    var t = e.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue tr.item"));
  }
  var selected = 0;
  function select(i) {
    var all = rows();
    if (!all.length) { return; }
    selected = Math.max(0, Math.min(i, all.length - 1));
    all.forEach(function (r, n) { r.classList.toggle("selected", n === selected); r.setAttribute("aria-selected", n === selected ? "true" : "false"); });
    all[selected].focus();
  }
  function current() { return rows()[selected]; }

  // The queue's inline edit or reject form: one at a time, in a row of its own.
  function inlineForm() { return document.getElementById("inline-form"); }
  function closeInline() {
    var open = inlineForm();
    if (open) { open.parentNode.removeChild(open); }
  }
  function focusFirstField(scope) {
    var field = scope.querySelector("[aria-invalid=true]") ||
      scope.querySelector("textarea, input:not([type=hidden]), select");
    if (field) { field.focus(); }
  }
  function openInline(row, kind) {
    closeInline();
    var url = "/review/" + encodeURIComponent(row.dataset.id) + "/" + kind + "-form?row=" + encodeURIComponent(row.dataset.n);
    window.htmx.ajax("GET", url, { target: row, swap: "afterend" });
  }

  document.addEventListener("keydown", function (e) {
    var open = inlineForm();
    if (open && open.contains(e.target)) {
      if (e.key === "Escape") {
        closeInline(); select(selected); e.preventDefault();
      } else if (e.key === "Enter" && e.target.tagName === "SELECT" && !e.ctrlKey && !e.metaKey && !e.altKey) {
        // Enter saves from a select as it does from a text field.
        e.target.form.requestSubmit(); e.preventDefault();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) { return; }
    var queue = document.getElementById("queue");
    if (queue) {
      var row = current();
      if (e.key === "Escape" && open) { closeInline(); select(selected); e.preventDefault(); }
      else if (e.key === "j") { closeInline(); select(selected + 1); e.preventDefault(); }
      else if (e.key === "k") { closeInline(); select(selected - 1); e.preventDefault(); }
      else if (e.key === "a" && row) {
        closeInline();
        var form = row.querySelector("form.approve");
        var button = form && form.querySelector("button");
        if (button && !button.disabled) { form.requestSubmit(); }
        e.preventDefault();
      }
      else if ((e.key === "e" || e.key === "r") && row) {
        openInline(row, e.key === "e" ? "edit" : "reject");
        e.preventDefault();
      }
      else if (e.key === "Enter" && row && document.activeElement === row) {
        window.location.href = row.dataset.href; e.preventDefault();
      }
      return;
    }
    var approve = document.getElementById("approve-form");
    if (!approve) { return; }
    if (e.key === "a") {
      var b = approve.querySelector("button");
      if (b && !b.disabled) { approve.requestSubmit(); }
      e.preventDefault();
    } else if (e.key === "e" || e.key === "r") {
      var panel = document.getElementById(e.key === "e" ? "edit" : "reject");
      panel.open = true;
      var field = panel.querySelector("textarea, input:not([type=hidden]), select");
      if (field) { field.focus(); }
      e.preventDefault();
    }
  });
  document.addEventListener("click", function (e) {
    var open = inlineForm();
    if (open && e.target.classList && e.target.classList.contains("cancel") && open.contains(e.target)) {
      closeInline(); select(selected);
    }
  });
  function focusOpenPanel() {
    var open = document.querySelector("details[open]#edit, details[open]#reject");
    if (open) {
      var field = open.querySelector("textarea, input:not([type=hidden]), select");
      if (field) { field.focus(); }
    }
  }
  // A refused decision (422 names a field, 409 a stale version) comes back as the inline form
  // with the error, retargeted by the server onto the form's own row.
  document.addEventListener("htmx:beforeSwap", function (e) {
    var status = e.detail.xhr.status;
    if (status >= 400 && e.detail.target && e.detail.target.id === "inline-form") {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    var open = inlineForm();
    var config = e.detail.requestConfig || {};
    var decided = config.verb === "post" && e.detail.xhr.status < 300;
    if (open && decided && config.elt && open.contains(config.elt)) {
      // The decision replaced the candidate's row; its form goes with it.
      closeInline();
      select(selected);
    } else if (open) {
      focusFirstField(open);
    } else {
      select(selected);
    }
  });
  document.addEventListener("DOMContentLoaded", function () { select(0); focusOpenPanel(); });
})();

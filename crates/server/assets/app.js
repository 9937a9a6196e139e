// Keyboard shortcuts for review: j/k move through the queue, a approves, e edits, r rejects,
// Enter opens. Keys typed into a field are left alone.
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
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) { return; }
    var queue = document.getElementById("queue");
    if (queue) {
      var row = current();
      if (e.key === "j") { select(selected + 1); e.preventDefault(); }
      else if (e.key === "k") { select(selected - 1); e.preventDefault(); }
      else if (e.key === "a" && row) {
        var form = row.querySelector("form.approve");
        var button = form && form.querySelector("button");
        if (button && !button.disabled) { form.requestSubmit(); }
        e.preventDefault();
      }
      else if ((e.key === "e" || e.key === "r") && row) {
        window.location.href = row.dataset.href + "?open=" + (e.key === "e" ? "edit" : "reject");
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
  function focusOpenPanel() {
    var open = document.querySelector("details[open]#edit, details[open]#reject");
    if (open) {
      var field = open.querySelector("textarea, input:not([type=hidden]), select");
      if (field) { field.focus(); }
    }
  }
  document.addEventListener("DOMContentLoaded", function () { select(0); focusOpenPanel(); });
  document.addEventListener("htmx:afterSwap", function () { select(selected); });
})();

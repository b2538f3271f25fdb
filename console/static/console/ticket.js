// The ticket page's reply box: what the chosen channel needs (Cc and attachments for email, the SMS segment count,
// whether the chat visitor is online) and canned responses. Keyboard shortcuts and live updates are console.js's.
(function () {
  "use strict";

  function kindOf(select) {
    var option = select && select.options[select.selectedIndex];
    return option ? option.getAttribute("data-kind") : "";
  }

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  var segmentTimer = null;
  function updateSegments(form) {
    var select = form.querySelector("#reply-channel");
    var output = form.querySelector("#sms-segments");
    var option = select && select.options[select.selectedIndex];
    if (!output || !option || kindOf(select) !== "sms") return;
    var url = option.getAttribute("data-segments-url");
    var text = form.querySelector("#reply-text").value;
    clearTimeout(segmentTimer);
    // The server counts (channels_app/sms/segments.py is the truth); wait for a pause in typing.
    segmentTimer = setTimeout(function () {
      fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken(form)},
        body: JSON.stringify({text: text}),
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (data) {
        if (!data) return;
        output.querySelector("[data-sms-count]").textContent = data.segments;
        output.querySelector("[data-sms-encoding]").textContent = data.encoding;
      }).catch(function () { /* the count stays as it was; sending is unaffected */ });
    }, 250);
  }

  function applyChannel(form) {
    var select = form.querySelector("#reply-channel");
    if (!select) return;
    var kind = kindOf(select);
    form.querySelectorAll("[data-show-for]").forEach(function (element) {
      element.hidden = element.getAttribute("data-show-for") !== kind;
    });
    form.querySelectorAll("[data-presence-for]").forEach(function (element) {
      element.hidden = element.getAttribute("data-presence-for") !== select.value;
    });
    updateSegments(form);
  }

  function insertAtCursor(textarea, text) {
    var start = textarea.selectionStart || 0;
    var end = textarea.selectionEnd || 0;
    textarea.value = textarea.value.slice(0, start) + text + textarea.value.slice(end);
    textarea.selectionStart = textarea.selectionEnd = start + text.length;
    textarea.focus();
    textarea.dispatchEvent(new Event("input", {bubbles: true}));
  }

  function setUp(root) {
    var form = root.id === "reply-form" ? root : root.querySelector && root.querySelector("#reply-form");
    if (!form || form.dataset.ready) return;
    form.dataset.ready = "1";
    applyChannel(form);
    form.addEventListener("change", function (event) {
      if (event.target.id === "reply-channel") applyChannel(form);
      if (event.target.id === "canned-picker" && event.target.value) {
        var option = event.target.options[event.target.selectedIndex];
        insertAtCursor(form.querySelector("#reply-text"), option.getAttribute("data-text") || "");
        event.target.value = "";
      }
    });
    form.addEventListener("input", function (event) {
      if (event.target.id === "reply-text") updateSegments(form);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  // The forms answer errors with 400/409 and the form again: let htmx swap those in (it skips 4xx by default).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if ((status === 400 || status === 409) && event.detail.elt.closest("#ticket-page")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSwap", function () { setUp(document); });
})();

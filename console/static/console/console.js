// Console behaviour shared by every page: the live connection (/ws/agent/), collision detection on the ticket page,
// live queues, and the keyboard shortcuts. Plain script, no build step; every feature checks that its elements are
// there, so any console page (or none of them) may carry them.
//
// Pushes are best-effort (realtime/publish.py): after a reconnect the page catches up by re-fetching what the
// pushes would have changed (the queue table, the ticket timeline), because events sent while offline are lost.
//
// Page contract (see the console's templates):
//   <body data-ws-url data-user-id>, #live-status, <dialog id="keys-help">, [data-keys-help] buttons;
//   queue pages: #queue-results[data-refresh-url] holding rows <tr data-ticket-row data-ticket-id> with <a data-open>;
//   ticket page: #ticket-page[data-ticket-id][data-last-message-id], #collision, #reply-form (#reply-text, hidden
//   last_seen_message_id), #note-form (#note-text), #ticket-form (hidden version, #id_assignee, #id_status), #timeline,
//   whose contents GET <ticket url>?partial=timeline answers.
(function () {
  "use strict";

  if (window.HelpdeskConsole) {
    return; // loaded again by an htmx swap of the whole body: the first copy keeps running
  }

  var QUEUE_REFRESH_MS = 2000; // at most one queue re-fetch per this long, however many events arrive
  var TYPING_IDLE_MS = 5000; // the reply box untouched this long: "stopped typing"
  var TYPING_REFRESH_MS = 3000; // while typing, say so again this often (others let it lapse after TYPING_LAPSE_MS)
  var TYPING_LAPSE_MS = 7000;
  var BACKOFF_FIRST_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  var CLOSE_FORBIDDEN = 4403; // the server refuses this session: retrying with the same cookie cannot help

  var body = document.body;
  var myUserId = body ? parseInt(body.getAttribute("data-user-id") || "", 10) : NaN;

  function byId(id) {
    return document.getElementById(id);
  }

  function intAttr(element, name) {
    var value = element ? parseInt(element.getAttribute(name) || "", 10) : NaN;
    return isNaN(value) ? null : value;
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    if (text) {
      node.textContent = text; // never innerHTML: names and texts come from users
    }
    return node;
  }

  function hasHtmx() {
    return typeof window.htmx !== "undefined" && typeof window.htmx.ajax === "function";
  }

  // --- Live connection ---------------------------------------------------------------------------------------

  var live = {
    socket: null,
    attempts: 0,
    hasBeenOpen: false, // a later open is a reconnect: catch up
    retryTimer: null,
    isRefused: false,
    subscribedTicketId: null,
  };

  function wsUrl() {
    var path = body && body.getAttribute("data-ws-url");
    if (!path) {
      return null;
    }
    if (/^wss?:\/\//.test(path)) {
      return path;
    }
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + path;
  }

  function statusShow(state, text) {
    var status = byId("live-status");
    if (!status) {
      return;
    }
    status.setAttribute("data-state", state);
    status.textContent = text;
  }

  function send(event) {
    if (live.socket && live.socket.readyState === WebSocket.OPEN) {
      live.socket.send(JSON.stringify(event));
      return true;
    }
    return false;
  }

  function connect() {
    var url = wsUrl();
    if (!url || typeof WebSocket === "undefined") {
      return;
    }
    if (live.retryTimer) {
      clearTimeout(live.retryTimer);
      live.retryTimer = null;
    }
    if (live.socket && live.socket.readyState <= WebSocket.OPEN) {
      return; // connecting or open already
    }
    statusShow("connecting", "Connecting…");
    var socket;
    try {
      socket = new WebSocket(url);
    } catch (error) {
      retryLater();
      return;
    }
    live.socket = socket;
    socket.addEventListener("open", function () {
      if (live.socket !== socket) {
        return;
      }
      var isReconnect = live.hasBeenOpen;
      live.attempts = 0;
      live.hasBeenOpen = true;
      live.subscribedTicketId = null; // a new connection follows nothing yet
      statusShow("live", "Live");
      ticketSubscribe();
      if (isReconnect) {
        catchUp();
      }
    });
    socket.addEventListener("message", function (message) {
      if (live.socket !== socket) {
        return;
      }
      var event;
      try {
        event = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (event && typeof event.type === "string") {
        dispatch(event);
      }
    });
    socket.addEventListener("close", function (close) {
      if (live.socket !== socket) {
        return;
      }
      live.socket = null;
      live.subscribedTicketId = null;
      collisionForget();
      if (close.code === CLOSE_FORBIDDEN) {
        live.isRefused = true;
        statusShow("offline", "Offline: sign in again");
        return;
      }
      retryLater();
    });
  }

  function retryLater() {
    // Exponential backoff with jitter: after a server restart, the agents' consoles do not all come back at once.
    var ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * Math.pow(2, live.attempts));
    var delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    live.attempts += 1;
    statusShow("offline", "Offline: reconnecting in " + Math.max(1, Math.round(delay / 1000)) + " s");
    live.retryTimer = setTimeout(function () {
      live.retryTimer = null;
      connect();
    }, delay);
  }

  function reconnectNow() {
    if (!live.isRefused && !live.socket) {
      live.attempts = 0;
      connect();
    }
  }

  function dispatch(event) {
    if (event.type === "message" && event.message) {
      queueRefreshSoon();
      ticketMessageArrived(event.message);
    } else if (event.type === "ticket" && event.ticket) {
      queueRefreshSoon();
      ticketChanged(event.ticket);
    } else if (event.type === "viewers") {
      viewersShow(event);
    } else if (event.type === "typing") {
      typingShow(event);
    }
  }

  function catchUp() {
    queueRefreshSoon();
    if (ticketPage()) {
      timelineRefresh();
    }
  }

  // --- Queue pages -------------------------------------------------------------------------------------------

  var queue = { lastRefreshAt: 0, timer: null };

  function queueResults() {
    var results = byId("queue-results");
    return results && results.getAttribute("data-refresh-url") ? results : null;
  }

  function queueRefreshSoon() {
    if (!queueResults() || queue.timer) {
      return;
    }
    var wait = Math.max(0, queue.lastRefreshAt + QUEUE_REFRESH_MS - Date.now());
    queue.timer = setTimeout(function () {
      queue.timer = null;
      queueRefresh();
    }, wait);
  }

  function queueRefresh() {
    var results = queueResults();
    if (!results || !hasHtmx()) {
      return;
    }
    queue.lastRefreshAt = Date.now();
    // The selection is restored by ticket id after the swap (htmx:afterSwap below).
    window.htmx.ajax("GET", results.getAttribute("data-refresh-url"), {
      target: "#queue-results",
      swap: "innerHTML",
    });
  }

  // --- Selection in a list (j / k / Enter) ------------------------------------------------------------------

  var selection = { ticketId: null };

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-ticket-row]"));
  }

  function rowSelect(row) {
    rows().forEach(function (other) {
      if (other !== row && other.getAttribute("aria-selected") === "true") {
        other.setAttribute("aria-selected", "false");
      }
    });
    if (!row) {
      selection.ticketId = null;
      return;
    }
    row.setAttribute("aria-selected", "true");
    selection.ticketId = row.getAttribute("data-ticket-id");
    if (typeof row.scrollIntoView === "function") {
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function selectedRow() {
    return document.querySelector('[data-ticket-row][aria-selected="true"]');
  }

  function selectionMove(step) {
    var all = rows();
    if (!all.length) {
      return false;
    }
    var index = all.indexOf(selectedRow());
    var next = index < 0 ? 0 : Math.min(all.length - 1, Math.max(0, index + step));
    rowSelect(all[next]);
    return true;
  }

  function selectionRestore() {
    if (selection.ticketId === null) {
      return;
    }
    var row = rows().filter(function (candidate) {
      return candidate.getAttribute("data-ticket-id") === selection.ticketId;
    })[0];
    if (row) {
      row.setAttribute("aria-selected", "true");
    } else {
      selection.ticketId = null; // the ticket left the queue
    }
  }

  function selectionOpen() {
    var row = selectedRow();
    var link = row && row.querySelector("[data-open]");
    if (!link) {
      return false;
    }
    link.click();
    return true;
  }

  // --- Ticket page: presence, typing, collisions --------------------------------------------------------------

  var collision = {
    viewers: [], // names of other agents viewing
    typing: {}, // key -> {label, timer}
    staleReplyMessageId: null,
  };
  var typingOut = { isTyping: false, sentAt: 0, idleTimer: null };
  // While the agent's own change is on its way, a "ticket" event may be that change: judged once its answer is in.
  var ticketForm = { isPending: false, pendingXhr: null, latestVersion: null, mergedIntoId: null };

  function ticketPage() {
    var page = byId("ticket-page");
    return page && intAttr(page, "data-ticket-id") !== null ? page : null;
  }

  function currentTicketId() {
    return intAttr(ticketPage(), "data-ticket-id");
  }

  function ticketSubscribe() {
    var ticketId = currentTicketId();
    if (live.subscribedTicketId !== null && live.subscribedTicketId !== ticketId) {
      send({ type: "unsubscribe", ticket_id: live.subscribedTicketId });
      live.subscribedTicketId = null;
      collisionForget();
    }
    if (ticketId !== null && live.subscribedTicketId === null && send({ type: "subscribe", ticket_id: ticketId })) {
      live.subscribedTicketId = ticketId;
    }
  }

  function collisionArea() {
    var area = byId("collision");
    if (!area) {
      return null;
    }
    ["viewers", "typing", "warnings"].forEach(function (part) {
      if (!area.querySelector('[data-live="' + part + '"]')) {
        area.appendChild(element("div", { "data-live": part, class: "collision-" + part }));
      }
    });
    return area;
  }

  function collisionPart(part) {
    var area = collisionArea();
    return area ? area.querySelector('[data-live="' + part + '"]') : null;
  }

  function collisionForget() {
    // Offline, presence is unknown: show nothing rather than a stale list.
    collision.viewers = [];
    Object.keys(collision.typing).forEach(function (key) {
      clearTimeout(collision.typing[key].timer);
    });
    collision.typing = {};
    collisionRender();
  }

  function collisionRender() {
    var viewersPart = collisionPart("viewers");
    if (viewersPart) {
      viewersPart.textContent = collision.viewers.length ? "Also viewing: " + collision.viewers.join(", ") : "";
    }
    var typingPart = collisionPart("typing");
    if (typingPart) {
      var labels = Object.keys(collision.typing).map(function (key) {
        return collision.typing[key].label;
      });
      typingPart.textContent = labels.length ? labels.join(", ") + (labels.length > 1 ? " are" : " is") + " typing…" : "";
    }
  }

  function viewersShow(event) {
    if (event.ticket_id !== currentTicketId() || !Array.isArray(event.agents)) {
      return;
    }
    collision.viewers = event.agents
      .filter(function (agent) {
        var id = agent.id !== undefined ? agent.id : agent.user_id;
        return id !== myUserId;
      })
      .map(function (agent) {
        return String(agent.name || "An agent");
      });
    collisionRender();
  }

  function typingShow(event) {
    if (event.ticket_id !== currentTicketId()) {
      return;
    }
    var isVisitor = event.who === "visitor";
    var key = (isVisitor ? "visitor:" : "agent:") + String(event.name || "");
    var current = collision.typing[key];
    if (current) {
      clearTimeout(current.timer);
      delete collision.typing[key];
    }
    if (event.is_typing) {
      var label = event.name ? String(event.name) : isVisitor ? "The customer" : "An agent";
      if (isVisitor) {
        label += " (customer)";
      }
      collision.typing[key] = {
        label: label,
        // A lost "stopped" must not leave the indicator on for ever: the typist repeats "typing" while typing.
        timer: setTimeout(function () {
          delete collision.typing[key];
          collisionRender();
        }, TYPING_LAPSE_MS),
      };
    }
    collisionRender();
  }

  function typingSend(isTyping) {
    var ticketId = live.subscribedTicketId;
    if (ticketId === null || ticketId !== currentTicketId()) {
      return;
    }
    if (send({ type: "typing", ticket_id: ticketId, is_typing: isTyping })) {
      typingOut.isTyping = isTyping;
      typingOut.sentAt = Date.now();
    }
  }

  function typingStop() {
    if (typingOut.idleTimer) {
      clearTimeout(typingOut.idleTimer);
      typingOut.idleTimer = null;
    }
    if (typingOut.isTyping) {
      typingSend(false);
      typingOut.isTyping = false;
    }
  }

  function replyTyped(textarea) {
    if (!textarea.value.trim()) {
      typingStop();
      return;
    }
    if (!typingOut.isTyping || Date.now() - typingOut.sentAt >= TYPING_REFRESH_MS) {
      typingSend(true);
    }
    if (typingOut.idleTimer) {
      clearTimeout(typingOut.idleTimer);
    }
    typingOut.idleTimer = setTimeout(typingStop, TYPING_IDLE_MS);
  }

  function replyIsBeingWritten() {
    var textarea = byId("reply-text");
    return Boolean(textarea && textarea.value.trim());
  }

  function lastSeenInput() {
    var form = byId("reply-form");
    return form ? form.querySelector('input[name="last_seen_message_id"]') : null;
  }

  function warningShow(name, build) {
    var part = collisionPart("warnings");
    if (!part) {
      return null;
    }
    var existing = part.querySelector('[data-warning="' + name + '"]');
    if (existing) {
      existing.parentNode.removeChild(existing);
    }
    var warning = element("div", { class: "alert alert-warning", role: "alert", "data-warning": name });
    build(warning);
    part.appendChild(warning);
    return warning;
  }

  function warningRemove(name) {
    var part = collisionPart("warnings");
    var existing = part && part.querySelector('[data-warning="' + name + '"]');
    if (existing) {
      existing.parentNode.removeChild(existing);
    }
  }

  function ticketMessageArrived(message) {
    var page = ticketPage();
    if (!page || message.ticket_id !== currentTicketId()) {
      return;
    }
    var isOthersReply =
      message.direction === "outbound" && typeof message.author_id === "number" && message.author_id !== myUserId;
    if (isOthersReply && replyIsBeingWritten()) {
      // Not loaded into the timeline by itself: the agent acknowledges it (and so the reply form's
      // last_seen_message_id moves) only by choosing to see it. The server refuses a stale reply either way.
      collision.staleReplyMessageId = Math.max(collision.staleReplyMessageId || 0, message.id);
      warningShow("replied", function (warning) {
        warning.appendChild(
          document.createTextNode((message.author_name || "Another agent") + " replied while you were writing. ")
        );
        var show = element("button", { type: "button", "data-show-reply": "" }, "Show their reply");
        show.addEventListener("click", function () {
          var input = lastSeenInput();
          var seen = collision.staleReplyMessageId;
          if (input && seen && seen > (parseInt(input.value, 10) || 0)) {
            input.value = String(seen);
          }
          collision.staleReplyMessageId = null;
          warningRemove("replied");
          timelineRefresh();
        });
        warning.appendChild(show);
      });
      return;
    }
    timelineRefresh();
  }

  function timelineUrl() {
    var url = new URL(window.location.href);
    url.hash = "";
    url.search = "?partial=timeline";
    return url.pathname + url.search;
  }

  function timelineRefresh() {
    if (!ticketPage()) {
      return;
    }
    if (!byId("timeline") || !hasHtmx()) {
      reloadBannerShow();
      return;
    }
    window.htmx.ajax("GET", timelineUrl(), { target: "#timeline", swap: "innerHTML" });
  }

  function reloadBannerShow() {
    warningShow("reload", function (warning) {
      warning.appendChild(document.createTextNode("New message. "));
      var reload = element("button", { type: "button" }, "Reload");
      reload.addEventListener("click", function () {
        window.location.reload();
      });
      warning.appendChild(reload);
    });
  }

  function pageVersion() {
    var form = byId("ticket-form");
    var input = form && form.querySelector('input[name="version"]');
    var value = input ? parseInt(input.value, 10) : NaN;
    return isNaN(value) ? null : value;
  }

  function ticketChanged(ticket) {
    if (!ticketPage() || ticket.id !== currentTicketId()) {
      return;
    }
    ticketForm.latestVersion = Math.max(ticketForm.latestVersion || 0, ticket.version);
    if (typeof ticket.merged_into_id === "number") {
      ticketForm.mergedIntoId = ticket.merged_into_id;
    }
    if (!ticketForm.isPending) {
      staleCheck();
    } // else: our own change may be what bumped the version; checked once its answer has been swapped in
  }

  function staleCheck() {
    var version = pageVersion();
    var form = byId("ticket-form");
    var notice = byId("ticket-stale");
    if (!form || version === null || ticketForm.latestVersion === null || ticketForm.latestVersion <= version) {
      if (notice && form && version !== null) {
        notice.parentNode.removeChild(notice); // the form has been brought up to date since
      }
      return;
    }
    if (notice) {
      return;
    }
    notice = element("div", { id: "ticket-stale", class: "alert alert-warning", role: "alert" });
    notice.appendChild(
      document.createTextNode(
        ticketForm.mergedIntoId
          ? "This ticket was merged into #" + ticketForm.mergedIntoId + " by someone else. "
          : "This ticket was changed by someone else. "
      )
    );
    var reload = element("button", { type: "button" }, "Reload");
    reload.addEventListener("click", function () {
      window.location.reload();
    });
    notice.appendChild(reload);
    form.parentNode.insertBefore(notice, form);
  }

  function isTicketFormRequest(event) {
    var form = byId("ticket-form");
    var source = event.detail && event.detail.elt;
    return Boolean(form && source && (source === form || form.contains(source)));
  }

  // --- Keyboard shortcuts ------------------------------------------------------------------------------------

  function isEditable(target) {
    if (!target || target.nodeType !== 1) {
      return false;
    }
    return Boolean(target.isContentEditable || target.closest("input, textarea, select, [contenteditable]"));
  }

  function focusField(ids) {
    for (var i = 0; i < ids.length; i += 1) {
      var field = byId(ids[i]);
      if (field && !field.disabled && field.getClientRects().length) {
        field.focus();
        if (typeof field.select === "function" && field.tagName === "INPUT") {
          field.select();
        }
        return true;
      }
    }
    return false;
  }

  function keysHelpOpen() {
    var dialog = byId("keys-help");
    if (!dialog || dialog.open) {
      return Boolean(dialog);
    }
    if (typeof dialog.showModal === "function") {
      dialog.showModal();
    } else {
      dialog.setAttribute("open", "");
    }
    return true;
  }

  function anyDialogOpen() {
    return Boolean(document.querySelector("dialog[open]"));
  }

  function onKeydown(event) {
    if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    var target = event.target;
    if (isEditable(target)) {
      if (event.key === "Escape" && !anyDialogOpen()) {
        target.blur(); // out of the field, so the shortcuts work again
      }
      return;
    }
    if (anyDialogOpen()) {
      return; // the dialog's own keys (Escape closes it)
    }
    var handled = false;
    switch (event.key) {
      case "j":
        handled = selectionMove(1);
        break;
      case "k":
        handled = selectionMove(-1);
        break;
      case "Enter":
      case "o":
        // Enter on a focused link or button is theirs.
        if (event.key === "o" || !(target.closest && target.closest("a, button, summary, [role=button]"))) {
          handled = selectionOpen();
        }
        break;
      case "r":
        handled = focusField(["reply-text"]);
        break;
      case "n":
        handled = focusField(["note-text"]);
        break;
      case "a":
        handled = focusField(["id_assignee"]);
        break;
      case "s":
        handled = focusField(["id_status"]);
        break;
      case "/":
        handled = focusField(["queue-search", "customer-search"]);
        break;
      case "?":
        handled = keysHelpOpen();
        break;
      default:
        break;
    }
    if (handled) {
      event.preventDefault(); // the key does not also land in the field it focused
    }
  }

  // --- Wiring ------------------------------------------------------------------------------------------------

  document.addEventListener("keydown", onKeydown);

  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-keys-help]");
    if (opener) {
      event.preventDefault();
      keysHelpOpen();
    }
  });

  document.addEventListener("input", function (event) {
    if (event.target && event.target.id === "reply-text") {
      replyTyped(event.target);
    }
  });

  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (form && form.id === "reply-form") {
        typingStop();
        warningRemove("replied");
      } else if (form && form.id === "ticket-form") {
        ticketForm.isPending = true;
      }
    },
    true
  );

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (isTicketFormRequest(event)) {
      ticketForm.isPending = true;
      ticketForm.pendingXhr = event.detail.xhr || null;
    }
  });

  // Restored as soon as the new rows are in (afterSwap runs in the same task as the swap), not after the settle
  // delay: in between, the list would show no selection and a key pressed then would start again from the top.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "queue-results") {
      selectionRestore();
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "queue-results") {
      selectionRestore();
    }
    if (target === body || (target && target.id === "main")) {
      ticketSubscribe(); // a boosted navigation brought another page
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    // By the request, not the element: the answer may have replaced the form that sent it.
    if (ticketForm.pendingXhr && event.detail && event.detail.xhr === ticketForm.pendingXhr) {
      ticketForm.isPending = false;
      ticketForm.pendingXhr = null;
      setTimeout(staleCheck, 100); // after htmx has settled the answer (and its new version) into the page
    }
  });

  // The queue's fallback poll (hx-trigger="every 30s" on [data-poll-unless-live]) is for a page without its live
  // connection: while it is live, pushes refresh the queue and the poll's request is cancelled.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail && event.detail.elt;
    var status = byId("live-status");
    if (source && source.hasAttribute("data-poll-unless-live") && status && status.getAttribute("data-state") === "live") {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || target.id !== "timeline") {
      return;
    }
    var xhr = event.detail.xhr;
    var text = (xhr && xhr.responseText) || "";
    // A server without the timeline partial answers the whole page: never nest a page in the timeline.
    if (!event.detail.shouldSwap || /<html[\s>]|id="ticket-page"/i.test(text)) {
      event.detail.shouldSwap = false;
      reloadBannerShow();
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "timeline") {
      reloadBannerShow();
    }
  });

  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      reconnectNow();
    }
  });
  window.addEventListener("pagehide", function () {
    typingStop();
  });

  window.HelpdeskConsole = {
    // For tests and the browser console: the live connection's state, and a way to drop it (it reconnects).
    get state() {
      var status = byId("live-status");
      return status ? status.getAttribute("data-state") : null;
    },
    dropConnection: function () {
      if (live.socket) {
        live.socket.close();
      }
    },
  };

  connect();
})();

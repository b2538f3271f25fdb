/*
 * Helpdesk live chat widget: one file, plain JavaScript (ES2017), no framework, no build step, nothing fetched from
 * anywhere but the desk that serves this file.
 *
 * Embed it on any page of a site listed in the chat channel's allowed origins:
 *
 *   <script src="{desk}/static/chat/widget.js" data-channel="{channel public key}" defer></script>
 *
 * The desk's base URL is derived from this script's own src (everything before "/static/"), so the same file works
 * on any desk. A host site that knows its logged-in user may vouch for them before the script loads (the hmac is
 * hex HMAC-SHA256(channel identity secret, user id), computed by the site's server, never in the browser), in a
 * JSON data block, which a Content-Security-Policy without inline script allows (it is data, never run):
 *
 *   <script type="application/json" id="helpdesk-chat-user">{"id": "42", "email": "ann@shop.example",
 *     "name": "Ann", "hmac": "..."}</script>
 *
 * or, on a page that allows inline script, window.HelpdeskChat = {user: {...the same...}}.
 *
 * The widget needs no inline script or style on the host page: its styles are a constructed stylesheet inside its
 * Shadow DOM. A host page with a Content-Security-Policy lets the desk in with script-src {desk}, connect-src
 * {desk} and its websocket origin (wss://{desk host}), and img-src blob: (pictures sent in the chat).
 *
 * Rules this file keeps, on purpose:
 * - Everything renders inside a Shadow DOM with its own styles: the host page's CSS cannot break the widget and the
 *   widget's CSS cannot leak into the page.
 * - Every text that came from the network (messages, names, channel settings) is set with textContent, never
 *   parsed as markup: a message that looks like HTML is shown as the characters it is.
 * - The database is the truth; the websocket is only a hint. After any reconnect the widget asks the REST API for
 *   the messages after the last id it has, so nothing pushed while it was away is lost.
 */
(function () {
  "use strict";

  var script = document.currentScript || document.querySelector("script[data-channel][src*='chat/widget.js']");
  if (!script || !script.getAttribute("data-channel")) {
    return;
  }
  var CHANNEL_KEY = script.getAttribute("data-channel");
  var loaded = (window.__helpdeskChatLoaded = window.__helpdeskChatLoaded || {});
  if (loaded[CHANNEL_KEY]) {
    return; // the snippet was pasted twice: one widget per channel
  }
  loaded[CHANNEL_KEY] = true;

  // --- Where the desk is ----------------------------------------------------------------------------------------
  var scriptUrl = new URL(script.src, document.baseURI);
  var staticAt = scriptUrl.pathname.lastIndexOf("/static/");
  var DESK_BASE = scriptUrl.origin + (staticAt > 0 ? scriptUrl.pathname.slice(0, staticAt) : "");
  var API_BASE = DESK_BASE + "/chat/api/" + encodeURIComponent(CHANNEL_KEY) + "/";
  var WS_BASE = DESK_BASE.replace(/^http/, "ws") + "/chat/ws/" + encodeURIComponent(CHANNEL_KEY) + "/";

  // --- Texts ----------------------------------------------------------------------------------------------------
  // English is complete; other languages may leave keys out (English is used for those). The channel's config
  // `texts` overrides any key, either flat ({"send": "Go"}) or per language ({"fr": {"send": "Envoyer"}}).
  // The purposes a desk-started message may have (chat_message_data's "card"): each has its card_<purpose> label.
  var CARD_PURPOSES = ["notice", "incident", "survey"];

  var TEXTS = {
    en: {
      launcher: "Chat with us",
      launcherUnread: "Chat with us ({count} unread)",
      card_notice: "Update",
      card_incident: "Service status",
      card_survey: "Quick question",
      closeChat: "Close chat",
      online: "We're online",
      away: "We're away right now",
      replyIn: "Usually replies in {minutes} min",
      conversation: "Conversation",
      you: "You",
      agent: "Support",
      typing: "{name} is typing…",
      composerLabel: "Your message",
      composerPlaceholder: "Write a message…",
      composerHint: "Enter to send, Shift+Enter for a new line",
      send: "Send",
      attach: "Attach a file",
      sending: "Sending…",
      seen: "Seen",
      preChatIntro: "Before we start, tell us who you are.",
      name: "Name",
      email: "Email",
      startChat: "Start chat",
      offerEmail: "Nobody can answer right now. Leave your email and we'll reply by email.",
      continueByEmail: "Continue by email",
      emailLabel: "Your email",
      emailSubmit: "Email me the replies",
      emailThanks: "Thanks! We'll reply to {email}.",
      cancel: "Cancel",
      invalidEmail: "Please enter a valid email address.",
      errorTooLong: "Your message is too long (at most {max} characters).",
      errorTooLarge: "This file is too large (at most {size}).",
      errorRate: "You're sending messages too fast. Please wait {seconds} seconds.",
      errorForbidden: "The chat is not available on this page.",
      errorGeneric: "Something went wrong. Please try again.",
      errorOffline: "Can't reach the chat. Check your connection and try again.",
      reconnecting: "Reconnecting…",
      download: "Download {filename}",
    },
    fr: {
      launcher: "Discuter avec nous",
      launcherUnread: "Discuter avec nous ({count} non lus)",
      card_notice: "Information",
      card_incident: "État du service",
      card_survey: "Une petite question",
      closeChat: "Fermer le chat",
      online: "Nous sommes en ligne",
      away: "Nous sommes absents pour le moment",
      replyIn: "Répond en général en {minutes} min",
      conversation: "Conversation",
      you: "Vous",
      agent: "Support",
      typing: "{name} est en train d'écrire…",
      composerLabel: "Votre message",
      composerPlaceholder: "Écrivez un message…",
      composerHint: "Entrée pour envoyer, Maj+Entrée pour aller à la ligne",
      send: "Envoyer",
      attach: "Joindre un fichier",
      sending: "Envoi…",
      seen: "Vu",
      preChatIntro: "Avant de commencer, dites-nous qui vous êtes.",
      name: "Nom",
      email: "E-mail",
      startChat: "Démarrer le chat",
      offerEmail: "Personne ne peut répondre pour le moment. Laissez votre e-mail, nous vous répondrons par e-mail.",
      continueByEmail: "Continuer par e-mail",
      emailLabel: "Votre e-mail",
      emailSubmit: "Recevoir les réponses par e-mail",
      emailThanks: "Merci ! Nous répondrons à {email}.",
      cancel: "Annuler",
      invalidEmail: "Veuillez saisir une adresse e-mail valide.",
      errorTooLong: "Votre message est trop long ({max} caractères au plus).",
      errorTooLarge: "Ce fichier est trop volumineux ({size} au plus).",
      errorRate: "Vous envoyez des messages trop vite. Patientez {seconds} secondes.",
      errorForbidden: "Le chat n'est pas disponible sur cette page.",
      errorGeneric: "Une erreur s'est produite. Veuillez réessayer.",
      errorOffline: "Le chat est injoignable. Vérifiez votre connexion et réessayez.",
      reconnecting: "Reconnexion…",
      download: "Télécharger {filename}",
    },
    de: {
      launcher: "Mit uns chatten",
      launcherUnread: "Mit uns chatten ({count} ungelesen)",
      card_notice: "Neuigkeit",
      card_incident: "Dienststatus",
      card_survey: "Kurze Frage",
      closeChat: "Chat schließen",
      online: "Wir sind online",
      away: "Wir sind gerade nicht da",
      replyIn: "Antwortet meist in {minutes} Min.",
      conversation: "Unterhaltung",
      you: "Sie",
      agent: "Support",
      typing: "{name} schreibt…",
      composerLabel: "Ihre Nachricht",
      composerPlaceholder: "Nachricht schreiben…",
      composerHint: "Enter zum Senden, Umschalt+Enter für eine neue Zeile",
      send: "Senden",
      attach: "Datei anhängen",
      sending: "Wird gesendet…",
      seen: "Gelesen",
      preChatIntro: "Bevor es losgeht: Wer sind Sie?",
      name: "Name",
      email: "E-Mail",
      startChat: "Chat starten",
      offerEmail: "Gerade kann niemand antworten. Hinterlassen Sie Ihre E-Mail, wir antworten per E-Mail.",
      continueByEmail: "Per E-Mail fortsetzen",
      emailLabel: "Ihre E-Mail",
      emailSubmit: "Antworten per E-Mail erhalten",
      emailThanks: "Danke! Wir antworten an {email}.",
      cancel: "Abbrechen",
      invalidEmail: "Bitte geben Sie eine gültige E-Mail-Adresse ein.",
      errorTooLong: "Ihre Nachricht ist zu lang (höchstens {max} Zeichen).",
      errorTooLarge: "Diese Datei ist zu groß (höchstens {size}).",
      errorRate: "Sie senden zu schnell. Bitte warten Sie {seconds} Sekunden.",
      errorForbidden: "Der Chat ist auf dieser Seite nicht verfügbar.",
      errorGeneric: "Etwas ist schiefgegangen. Bitte versuchen Sie es erneut.",
      errorOffline: "Der Chat ist nicht erreichbar. Prüfen Sie Ihre Verbindung.",
      reconnecting: "Verbindung wird wiederhergestellt…",
      download: "{filename} herunterladen",
    },
  };

  function pickLanguage() {
    var wanted = [script.getAttribute("data-lang")].concat(navigator.languages || [], [navigator.language]);
    for (var i = 0; i < wanted.length; i++) {
      var code = String(wanted[i] || "").toLowerCase().split("-")[0];
      if (TEXTS[code]) {
        return code;
      }
    }
    return "en";
  }

  var LANG = pickLanguage();
  var texts = Object.assign({}, TEXTS.en, TEXTS[LANG]);

  function applyTextOverrides(overrides) {
    if (!overrides || typeof overrides !== "object") {
      return;
    }
    Object.keys(overrides).forEach(function (key) {
      if (typeof overrides[key] === "string" && key in TEXTS.en) {
        texts[key] = overrides[key];
      }
    });
    if (overrides[LANG] && typeof overrides[LANG] === "object") {
      applyTextOverrides(overrides[LANG]);
    }
  }

  function t(key, values) {
    return String(texts[key] || TEXTS.en[key] || key).replace(/\{(\w+)\}/g, function (all, name) {
      return values && name in values ? String(values[name]) : all;
    });
  }

  // --- Small helpers --------------------------------------------------------------------------------------------
  var storage = (function () {
    // localStorage can be missing or throw (privacy modes, sandboxed frames): then the visitor lasts one page view.
    var memory = {};
    function safe(fn, fallback) {
      try {
        return fn();
      } catch (error) {
        return fallback();
      }
    }
    return {
      get: function (key) {
        return safe(function () { return window.localStorage.getItem(key); }, function () { return memory[key] || null; });
      },
      set: function (key, value) {
        safe(function () { window.localStorage.setItem(key, value); }, function () { memory[key] = value; });
      },
      remove: function (key) {
        safe(function () { window.localStorage.removeItem(key); }, function () { delete memory[key]; });
      },
    };
  })();
  var TOKEN_KEY = "helpdesk-chat:" + CHANNEL_KEY + ":token";
  var LEFT_KEY = "helpdesk-chat:" + CHANNEL_KEY + ":left";

  function uuid4() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      var value = attributes[name];
      if (value === false || value === null || value === undefined) {
        return;
      }
      if (name === "text") {
        node.textContent = value; // the only way text gets into the widget
      } else if (name.slice(0, 2) === "on") {
        node.addEventListener(name.slice(2), value);
      } else {
        node.setAttribute(name, value === true ? "" : value);
      }
    });
    (children || []).forEach(function (child) {
      if (child) {
        node.appendChild(child);
      }
    });
    return node;
  }

  function icon(pathData) {
    var ns = "http://www.w3.org/2000/svg"; // an XML namespace name, never fetched
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", pathData);
    svg.appendChild(path);
    return svg;
  }
  var ICON_CHAT = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z";
  var ICON_CLOSE = "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z";
  var ICON_CLIP =
    "M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z";
  var ICON_SEND = "M3 20.5 21 12 3 3.5V10l12 2-12 2z";
  var ICON_MAIL = "M3 5h18v14H3zm2 2v.5l7 4.5 7-4.5V7zm0 2.9V17h14V9.9l-7 4.5z";

  function formatBytes(bytes) {
    if (bytes >= 1048576) {
      return Math.round((bytes / 1048576) * 10) / 10 + " MB";
    }
    return Math.max(1, Math.round(bytes / 1024)) + " KB";
  }

  function isEmail(value) {
    return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value);
  }

  function safeColor(value) {
    return /^#[0-9a-f]{6}$/i.test(value || "") ? value : "#2563eb";
  }

  function textColorOn(hex) {
    // WCAG relative luminance: dark text on light accents, white on dark ones.
    var channels = [1, 3, 5].map(function (i) {
      var c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
    return luminance > 0.4 ? "#111827" : "#ffffff";
  }

  // --- REST API -------------------------------------------------------------------------------------------------
  function ApiError(status, body, retryAfter) {
    this.status = status;
    this.body = body || {};
    this.retryAfter = retryAfter;
  }

  function api(method, path, body, isForm) {
    var headers = {};
    if (state.token) {
      headers["X-Visitor-Token"] = state.token;
    }
    if (body !== undefined && !isForm) {
      headers["Content-Type"] = "application/json";
    }
    return fetch(API_BASE + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : isForm ? body : JSON.stringify(body),
      mode: "cors",
      credentials: "omit", // the desk's cookies are the agents' business, never the widget's
      cache: "no-store",
    }).then(
      function (response) {
        if (response.status === 204) {
          return null;
        }
        return response.json().then(
          function (data) { return finish(response, data); },
          function () { return finish(response, null); }
        );
      },
      function () {
        throw new ApiError(0, null, null);
      }
    );
  }

  function finish(response, data) {
    if (!response.ok) {
      throw new ApiError(response.status, data, response.headers.get("Retry-After"));
    }
    return data;
  }

  function errorText(error, context) {
    var status = error && error.status;
    var detail = error && error.body && typeof error.body.detail === "string" ? error.body.detail : "";
    if (status === 0) {
      return t("errorOffline");
    }
    if (status === 413 || (status === 400 && context === "file" && /large|size/i.test(detail))) {
      return t("errorTooLarge", { size: formatBytes(state.config.max_upload_bytes || 0) });
    }
    if (status === 429) {
      return t("errorRate", { seconds: parseInt(error.retryAfter, 10) || 30 });
    }
    if (status === 400 && context === "message" && /long|length|characters|max/i.test(detail + " " + (error.body.code || ""))) {
      return t("errorTooLong", { max: state.config.max_message_chars });
    }
    if (status === 403) {
      return t("errorForbidden");
    }
    return detail || t("errorGeneric");
  }

  function hostOptionsRead() {
    if (window.HelpdeskChat && typeof window.HelpdeskChat === "object") {
      return window.HelpdeskChat;
    }
    var block = document.getElementById("helpdesk-chat-user");
    if (block && block.type === "application/json") {
      try {
        var user = JSON.parse(block.textContent);
        return user && typeof user === "object" ? { user: user } : {};
      } catch (error) {
        return {}; // a malformed block: the visitor is anonymous, as with none
      }
    }
    return {};
  }

  // --- State ----------------------------------------------------------------------------------------------------
  var hostOptions = hostOptionsRead();
  var state = {
    config: null,
    token: storage.get(TOKEN_KEY),
    visitor: null,
    isOpen: false,
    lastId: 0,
    messages: {}, // id -> element, so a message pushed and fetched is shown once
    pending: [], // {clientId, text, element} sent but not yet confirmed
    unread: 0,
    agentsOnline: false,
    hasLeft: storage.get(LEFT_KEY) === "1",
    socket: null,
    socketWanted: false,
    reconnectDelay: 1000,
    reconnectTimer: null,
    typingSentAt: 0,
    typingStopTimer: null,
    typingHideTimer: null,
    lastOwnMessage: null,
    agentReadUpTo: 0,
    readSent: 0,
    hadSocket: false,
  };

  // --- DOM ------------------------------------------------------------------------------------------------------
  var host = el("div", { "data-helpdesk-chat": CHANNEL_KEY });
  var root = host.attachShadow({ mode: "open" });
  var ui = {};

  var CSS = [
    // !important on the host: the page's own "!important" rules (say "div{display:none!important}") match the host
    // element too, and only important declarations from inside the shadow tree beat them.
    ":host{all:initial!important;display:block!important;position:fixed!important;right:20px!important;bottom:20px!important;z-index:2147483000!important;--accent:#2563eb;--on-accent:#fff}",
    "*{box-sizing:border-box}",
    ".panel,.launcher{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#111827;text-align:left}",
    "button,textarea,input{margin:0;font:inherit;color:inherit}",
    "[hidden]{display:none!important}",
    ":focus-visible{outline:3px solid var(--accent);outline-offset:2px}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "svg{width:20px;height:20px;fill:currentColor;display:block}",
    ".launcher{position:relative;width:56px;height:56px;border-radius:50%;border:0;background:var(--accent);color:var(--on-accent);cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center;margin-left:auto}",
    ".launcher svg{width:26px;height:26px}",
    ".badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;background:#dc2626;color:#fff;font-size:12px;line-height:20px;text-align:center}",
    ".panel{width:min(370px,calc(100vw - 24px));height:min(560px,calc(100vh - 110px));margin-bottom:12px;background:#fff;border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden}",
    ".head{background:var(--accent);color:var(--on-accent);padding:12px 12px 12px 16px;display:flex;align-items:flex-start;gap:8px}",
    ".head h2{margin:0;font-size:16px;font-weight:600}",
    ".head p{margin:2px 0 0;font-size:12px;opacity:.9}",
    ".dot{display:inline-block;width:8px;height:8px;border-radius:50%;background:#9ca3af;margin-right:6px;vertical-align:middle}",
    ".dot.on{background:#22c55e}",
    ".titles{flex:1;min-width:0}",
    ".icon-btn{border:0;background:transparent;color:inherit;padding:6px;border-radius:8px;cursor:pointer}",
    ".icon-btn:hover{background:rgba(127,127,127,.2)}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f9fafb}",
    ".greeting{align-self:center;text-align:center;color:#4b5563;font-size:13px;margin:4px 12px}",
    ".msg{max-width:82%;display:flex;flex-direction:column}",
    ".msg.in{align-self:flex-end;align-items:flex-end}",
    ".msg.out{align-self:flex-start;align-items:flex-start}",
    ".bubble{padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word}",
    ".in .bubble{background:var(--accent);color:var(--on-accent);border-bottom-right-radius:4px}",
    ".out .bubble{background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:4px}",
    ".meta{font-size:11px;color:#6b7280;margin:2px 4px 0}",
    ".pending .bubble{opacity:.6}",
    ".card{max-width:92%}",
    ".card .bubble{background:#eff6ff;border:1px solid #bfdbfe;border-left:4px solid var(--accent);border-radius:10px}",
    ".card-title{display:block;margin-bottom:4px;font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#1e3a8a}",
    ".att{display:block;margin-top:4px;color:inherit;text-decoration:underline;background:none;border:0;padding:0;cursor:pointer;text-align:left}",
    ".att img{max-width:220px;max-height:200px;border-radius:8px;display:block}",
    ".typing{min-height:20px;padding:0 14px;font-size:12px;color:#6b7280;background:#f9fafb}",
    ".alert{margin:0;padding:8px 12px;background:#fef2f2;color:#991b1b;font-size:13px;border-top:1px solid #fecaca}",
    ".note{margin:0;padding:8px 12px;background:#eff6ff;color:#1e3a8a;font-size:13px;border-top:1px solid #bfdbfe}",
    "form.composer{display:flex;align-items:flex-end;gap:6px;padding:8px;border-top:1px solid #e5e7eb;background:#fff}",
    "textarea{flex:1;resize:none;min-height:40px;max-height:120px;padding:9px 10px;border:1px solid #d1d5db;border-radius:10px;background:#fff}",
    ".send{border:0;border-radius:10px;background:var(--accent);color:var(--on-accent);padding:10px;cursor:pointer}",
    ".send:disabled{opacity:.5;cursor:default}",
    ".composer .icon-btn{color:#4b5563;padding:10px}",
    ".form{padding:16px;display:flex;flex-direction:column;gap:10px;background:#fff;border-top:1px solid #e5e7eb}",
    ".form p{margin:0;color:#374151}",
    ".form label{display:flex;flex-direction:column;gap:4px;font-size:13px;color:#374151}",
    ".form input{padding:9px 10px;border:1px solid #d1d5db;border-radius:10px;background:#fff}",
    ".row{display:flex;gap:8px;justify-content:flex-end}",
    ".primary{border:0;border-radius:10px;background:var(--accent);color:var(--on-accent);padding:9px 14px;cursor:pointer}",
    ".secondary{border:1px solid #d1d5db;border-radius:10px;background:#fff;padding:9px 14px;cursor:pointer}",
    "@media (prefers-reduced-motion:no-preference){.panel{animation:rise .16s ease-out}@keyframes rise{from{opacity:0;transform:translateY(8px)}}}",
  ].join("\n");

  function stylesApply() {
    // A constructed stylesheet is not markup: a host page whose CSP allows no inline style still applies it. A
    // browser without constructed stylesheets (before 2023) gets a <style>, which such a CSP would block.
    if (typeof CSSStyleSheet === "function" && "adoptedStyleSheets" in root && "replaceSync" in CSSStyleSheet.prototype) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.appendChild(el("style", { text: CSS }));
    }
  }

  function buildDom() {
    stylesApply();

    ui.title = el("h2", { id: "hd-title" });
    ui.statusDot = el("span", { class: "dot", "aria-hidden": "true" });
    ui.statusText = el("span");
    ui.status = el("p", {}, [ui.statusDot, ui.statusText]);
    ui.emailButton = el("button", {
      type: "button",
      class: "icon-btn",
      "aria-label": t("continueByEmail"),
      title: t("continueByEmail"),
      onclick: function () { showEmailForm(true); },
    }, [icon(ICON_MAIL)]);
    ui.closeButton = el("button", {
      type: "button",
      class: "icon-btn",
      "aria-label": t("closeChat"),
      title: t("closeChat"),
      onclick: function () { setOpen(false); },
    }, [icon(ICON_CLOSE)]);
    var head = el("div", { class: "head" }, [
      el("div", { class: "titles" }, [ui.title, ui.status]),
      ui.emailButton,
      ui.closeButton,
    ]);

    ui.log = el("div", {
      class: "log",
      role: "log",
      "aria-live": "polite",
      "aria-relevant": "additions",
      "aria-label": t("conversation"),
      tabindex: "0",
    });
    ui.greeting = el("p", { class: "greeting", hidden: true });
    ui.log.appendChild(ui.greeting);
    ui.typing = el("div", { class: "typing", "aria-live": "polite" });
    ui.alert = el("p", { class: "alert", role: "alert", hidden: true });
    ui.note = el("p", { class: "note", role: "status", hidden: true });

    ui.preChat = buildPreChatForm();
    ui.emailForm = buildEmailForm();
    ui.composer = buildComposer();

    ui.panel = el("section", {
      class: "panel",
      id: "hd-panel",
      role: "dialog",
      "aria-modal": "false",
      "aria-labelledby": "hd-title",
      hidden: true,
      onkeydown: function (event) {
        if (event.key === "Escape") {
          event.stopPropagation();
          setOpen(false);
        }
      },
    }, [head, ui.log, ui.typing, ui.alert, ui.note, ui.preChat, ui.emailForm, ui.composer]);

    ui.badge = el("span", { class: "badge", "aria-hidden": "true", hidden: true });
    ui.launcher = el("button", {
      type: "button",
      class: "launcher",
      "aria-expanded": "false",
      "aria-controls": "hd-panel",
      "aria-label": t("launcher"),
      onclick: function () { setOpen(!state.isOpen); },
    }, [icon(ICON_CHAT), ui.badge]);

    root.appendChild(ui.panel);
    root.appendChild(ui.launcher);
  }

  function buildComposer() {
    ui.textarea = el("textarea", {
      id: "hd-text",
      rows: "1",
      placeholder: t("composerPlaceholder"),
      "aria-describedby": "hd-hint",
      onkeydown: function (event) {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          sendText();
        }
      },
      oninput: function () {
        autoGrow();
        typingChanged();
      },
    });
    ui.file = el("input", {
      type: "file",
      hidden: true,
      tabindex: "-1",
      onchange: function () {
        var file = ui.file.files && ui.file.files[0];
        ui.file.value = "";
        if (file) {
          sendFile(file);
        }
      },
    });
    ui.attachButton = el("button", {
      type: "button",
      class: "icon-btn",
      "aria-label": t("attach"),
      title: t("attach"),
      onclick: function () { ui.file.click(); },
    }, [icon(ICON_CLIP)]);
    ui.sendButton = el("button", { type: "submit", class: "send", "aria-label": t("send"), title: t("send") }, [
      icon(ICON_SEND),
    ]);
    return el("form", {
      class: "composer",
      onsubmit: function (event) {
        event.preventDefault();
        sendText();
      },
    }, [
      el("label", { class: "sr", for: "hd-text", text: t("composerLabel") }),
      el("span", { class: "sr", id: "hd-hint", text: t("composerHint") }),
      ui.attachButton,
      ui.file,
      ui.textarea,
      ui.sendButton,
    ]);
  }

  function buildPreChatForm() {
    ui.preName = el("input", { id: "hd-pre-name", type: "text", autocomplete: "name", maxlength: "200" });
    ui.preEmail = el("input", { id: "hd-pre-email", type: "email", autocomplete: "email", maxlength: "320" });
    return el("form", {
      class: "form",
      hidden: true,
      novalidate: true,
      "aria-label": t("startChat"),
      onsubmit: function (event) {
        event.preventDefault();
        var email = ui.preEmail.value.trim();
        if (email && !isEmail(email)) {
          showAlert(t("invalidEmail"));
          ui.preEmail.focus();
          return;
        }
        startSession({ name: ui.preName.value.trim(), email: email }).then(function (ok) {
          if (ok) {
            showChat();
            ui.textarea.focus();
          }
        });
      },
    }, [
      el("p", { text: t("preChatIntro") }),
      el("label", {}, [el("span", { text: t("name") }), ui.preName]),
      el("label", {}, [el("span", { text: t("email") }), ui.preEmail]),
      el("div", { class: "row" }, [el("button", { type: "submit", class: "primary", text: t("startChat") })]),
    ]);
  }

  function buildEmailForm() {
    ui.emailIntro = el("p", { text: t("offerEmail") });
    ui.leaveEmail = el("input", { id: "hd-leave-email", type: "email", autocomplete: "email", maxlength: "320", required: true });
    ui.emailCancel = el("button", {
      type: "button",
      class: "secondary",
      text: t("cancel"),
      onclick: function () {
        showEmailForm(false);
        ui.textarea.focus();
      },
    });
    return el("form", {
      class: "form",
      hidden: true,
      novalidate: true,
      "aria-label": t("continueByEmail"),
      onsubmit: function (event) {
        event.preventDefault();
        leaveWithEmail(ui.leaveEmail.value.trim());
      },
    }, [
      ui.emailIntro,
      el("label", {}, [el("span", { text: t("emailLabel") }), ui.leaveEmail]),
      el("div", { class: "row" }, [ui.emailCancel, el("button", { type: "submit", class: "primary", text: t("emailSubmit") })]),
    ]);
  }

  function autoGrow() {
    ui.textarea.style.height = "auto";
    ui.textarea.style.height = Math.min(ui.textarea.scrollHeight + 2, 120) + "px";
  }

  function showAlert(message) {
    ui.alert.textContent = message || "";
    ui.alert.hidden = !message;
  }

  function showNote(message) {
    ui.note.textContent = message || "";
    ui.note.hidden = !message;
  }

  // --- Header: name, presence, expected reply time --------------------------------------------------------------
  function offersEmail() {
    return !state.config.is_open || !state.agentsOnline;
  }

  function renderHeader() {
    var config = state.config;
    ui.title.textContent = config.name || "";
    ui.statusDot.className = "dot" + (state.agentsOnline && config.is_open ? " on" : "");
    var parts = [state.agentsOnline && config.is_open ? t("online") : t("away")];
    if (config.expected_reply_minutes) {
      parts.push(t("replyIn", { minutes: config.expected_reply_minutes }));
    }
    ui.statusText.textContent = parts.join(" · ");
  }

  // --- Open / close, focus ----------------------------------------------------------------------------------------
  function setOpen(open) {
    state.isOpen = open;
    ui.panel.hidden = !open;
    ui.launcher.setAttribute("aria-expanded", String(open));
    ui.launcher.replaceChild(icon(open ? ICON_CLOSE : ICON_CHAT), ui.launcher.firstChild);
    if (!open) {
      updateLauncherLabel();
      ui.launcher.focus();
      return;
    }
    state.unread = 0;
    updateLauncherLabel();
    if (!state.token && needsPreChat()) {
      showPreChat();
      ui.preName.focus();
      return;
    }
    showChat();
    ui.textarea.focus();
    ensureSession().then(function (ok) {
      if (ok) {
        markRead();
      }
    });
  }

  function updateLauncherLabel() {
    var count = state.isOpen ? 0 : state.unread;
    ui.badge.hidden = count === 0;
    ui.badge.textContent = String(count);
    // One name whatever the state (aria-expanded says open or closed), as a disclosure button should.
    ui.launcher.setAttribute("aria-label", count ? t("launcherUnread", { count: count }) : t("launcher"));
  }

  function needsPreChat() {
    return Boolean(state.config.pre_chat_form) && !identityFromHost();
  }

  function showPreChat() {
    ui.preChat.hidden = false;
    ui.composer.hidden = true;
    ui.emailForm.hidden = true;
  }

  function showChat() {
    ui.preChat.hidden = true;
    ui.composer.hidden = false;
    if (offersEmail() && !state.hasLeft) {
      showEmailForm(true, true);
    }
  }

  function showEmailForm(show, keepFocus) {
    ui.emailForm.hidden = !show;
    ui.emailIntro.hidden = !offersEmail();
    if (show && !ui.leaveEmail.value && state.visitor && state.visitor.email) {
      ui.leaveEmail.value = state.visitor.email;
    }
    if (show && !keepFocus) {
      ui.leaveEmail.focus();
    }
  }

  // --- Session ----------------------------------------------------------------------------------------------------
  function identityFromHost() {
    var user = hostOptions.user;
    if (!user || user.id === undefined || user.id === null || !user.hmac) {
      return null;
    }
    var identity = { user_id: String(user.id), hmac: String(user.hmac) };
    if (user.email) {
      identity.email = String(user.email);
    }
    if (user.name) {
      identity.name = String(user.name);
    }
    return identity;
  }

  var sessionPromise = null;

  function ensureSession() {
    if (state.visitor) {
      return Promise.resolve(true);
    }
    if (!state.token && needsPreChat()) {
      return Promise.resolve(false);
    }
    return startSession({});
  }

  function startSession(details) {
    if (sessionPromise) {
      return sessionPromise;
    }
    var body = {};
    if (details.name) {
      body.name = details.name;
    }
    if (details.email) {
      body.email = details.email;
    }
    var identity = identityFromHost();
    if (identity) {
      body.identity = identity;
    }
    function attempt(withToken) {
      if (withToken && state.token) {
        body.visitor_token = state.token;
      } else {
        delete body.visitor_token;
        state.token = null;
      }
      return api("POST", "session", body).catch(function (error) {
        // A token this channel no longer accepts (expired, another channel's): start over as a new visitor.
        if (error.status === 403 && withToken && body.visitor_token) {
          storage.remove(TOKEN_KEY);
          return attempt(false);
        }
        throw error;
      });
    }
    sessionPromise = attempt(true)
      .then(function (data) {
        state.token = data.visitor_token;
        state.visitor = data.visitor || null;
        storage.set(TOKEN_KEY, state.token);
        showAlert("");
        return loadMessages().then(function () {
          connect();
          return true;
        });
      })
      .catch(function (error) {
        showAlert(errorText(error, "session"));
        return false;
      })
      .then(function (ok) {
        sessionPromise = null;
        return ok;
      });
    return sessionPromise;
  }

  // --- Messages ---------------------------------------------------------------------------------------------------
  function loadMessages() {
    // Pages of at most 100, oldest first; keep asking until a page comes back short.
    return api("GET", "messages?after=" + encodeURIComponent(state.lastId)).then(function (data) {
      var list = (data && data.messages) || [];
      list.forEach(function (message) { addMessage(message, false); });
      if (list.length >= 100) {
        return loadMessages();
      }
      return null;
    });
  }

  function timeText(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) {
      return "";
    }
    try {
      return date.toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit" });
    } catch (error) {
      return date.toTimeString().slice(0, 5);
    }
  }

  function messageElement(message, isPending) {
    var fromVisitor = message.direction === "inbound";
    var author = fromVisitor ? t("you") : message.author_name || t("agent");
    var card = CARD_PURPOSES.indexOf(message.card) >= 0 ? message.card : "";
    var bubble = el("div", { class: "bubble" }, [
      card ? el("strong", { class: "card-title", text: t("card_" + card) }) : null,
      el("span", { class: "sr", text: author + ": " }),
      el("span", { class: "text", text: message.text || "" }),
    ]);
    (message.attachments || []).forEach(function (attachment) {
      bubble.appendChild(attachmentElement(attachment));
    });
    var meta = el("div", { class: "meta" });
    meta.textContent = isPending ? t("sending") : (fromVisitor ? "" : author + " · ") + timeText(message.created_at);
    return el("div", {
      class: "msg " + (fromVisitor ? "in" : "out") + (isPending ? " pending" : "") + (card ? " card" : ""),
      "data-id": message.id ? String(message.id) : false,
    }, [bubble, meta]);
  }

  function attachmentElement(attachment) {
    var filename = String(attachment.filename || "file");
    var url;
    try {
      url = new URL(String(attachment.url || ""), DESK_BASE + "/");
    } catch (error) {
      url = null;
    }
    // The download needs the visitor token (a header, so it never lands in logs or history): fetch it as a blob.
    // Only from the desk this script came from, so the token is never sent anywhere else; a link to this channel's
    // API under another name of the desk (its canonical address) is fetched from here.
    if (url && url.origin !== scriptUrl.origin && url.pathname.indexOf(new URL(API_BASE).pathname) === 0) {
      url = new URL(url.pathname + url.search, scriptUrl.origin);
    }
    if (!url || url.origin !== scriptUrl.origin) {
      return el("span", { class: "att", text: filename });
    }
    var isImage = /^image\/(png|jpeg|gif|webp)$/i.test(attachment.content_type || "");
    var button = el("button", {
      type: "button",
      class: "att",
      "aria-label": t("download", { filename: filename }),
      onclick: function () { download(url.href, filename); },
    });
    if (isImage) {
      var image = el("img", { alt: filename });
      button.appendChild(image);
      fetchBlob(url.href).then(function (blobUrl) { image.src = blobUrl; }, function () { image.replaceWith(document.createTextNode(filename)); });
    } else {
      button.textContent = filename + " (" + formatBytes(attachment.size || 0) + ")";
    }
    return button;
  }

  function fetchBlob(href) {
    return fetch(href, { headers: { "X-Visitor-Token": state.token || "" }, mode: "cors", credentials: "omit" })
      .then(function (response) {
        if (!response.ok) {
          throw new ApiError(response.status, null, null);
        }
        return response.blob();
      })
      .then(function (blob) { return URL.createObjectURL(blob); });
  }

  function download(href, filename) {
    fetchBlob(href).then(function (blobUrl) {
      var link = el("a", { href: blobUrl, download: filename });
      root.appendChild(link);
      link.click();
      link.remove();
    }, function (error) { showAlert(errorText(error, "file")); });
  }

  function addMessage(message, fromSocket) {
    if (!message || !message.id || state.messages[message.id]) {
      return;
    }
    var element = messageElement(message, false);
    var pending = message.direction === "inbound" ? takePending(message.text) : null;
    if (pending) {
      ui.log.replaceChild(element, pending.element);
    } else {
      ui.log.appendChild(element);
    }
    state.messages[message.id] = element;
    state.lastId = Math.max(state.lastId, Number(message.id));
    if (message.direction === "inbound") {
      state.lastOwnMessage = element;
      renderSeen();
    } else {
      setTyping(null);
      if (fromSocket && !state.isOpen) {
        state.unread += 1;
        updateLauncherLabel();
      }
      if (state.isOpen) {
        markRead();
      }
    }
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function takePending(text) {
    for (var i = 0; i < state.pending.length; i++) {
      if (state.pending[i].text === text) {
        return state.pending.splice(i, 1)[0];
      }
    }
    return null;
  }

  function renderSeen() {
    var own = state.lastOwnMessage;
    if (!own) {
      return;
    }
    var previous = ui.log.querySelector(".seen");
    if (previous && previous !== own) {
      previous.classList.remove("seen");
      previous.querySelector(".meta").textContent = previous.getAttribute("data-time") || "";
    }
    var id = Number(own.getAttribute("data-id"));
    if (id && state.agentReadUpTo >= id) {
      var meta = own.querySelector(".meta");
      own.setAttribute("data-time", meta.textContent);
      own.classList.add("seen");
      meta.textContent = meta.textContent + " · " + t("seen");
    }
  }

  function sendText() {
    var text = ui.textarea.value.replace(/^\s+|\s+$/g, "");
    if (!text) {
      return;
    }
    ensureSession().then(function (ok) {
      if (!ok) {
        return;
      }
      var clientId = uuid4();
      var element = messageElement({ direction: "inbound", text: text }, true);
      var pending = { clientId: clientId, text: text, element: element };
      state.pending.push(pending);
      ui.log.appendChild(element);
      ui.log.scrollTop = ui.log.scrollHeight;
      ui.textarea.value = "";
      autoGrow();
      sendTyping(false);
      showAlert("");
      reopenAfterLeave();
      api("POST", "messages", { client_id: clientId, text: text }).then(
        function (message) {
          var index = state.pending.indexOf(pending);
          if (index >= 0) {
            state.pending.splice(index, 1);
          }
          if (state.messages[message.id]) {
            element.remove(); // the websocket was faster and its copy is already shown
          } else {
            addMessageReplacing(message, element);
          }
        },
        function (error) {
          var index = state.pending.indexOf(pending);
          if (index >= 0) {
            state.pending.splice(index, 1);
          }
          element.remove();
          if (!ui.textarea.value) {
            ui.textarea.value = text; // nothing typed is lost on an error
            autoGrow();
          }
          var tooLong = error.status === 400 && text.length > state.config.max_message_chars;
          showAlert(tooLong ? t("errorTooLong", { max: state.config.max_message_chars }) : errorText(error, "message"));
        }
      );
    });
  }

  function addMessageReplacing(message, element) {
    var fresh = messageElement(message, false);
    ui.log.replaceChild(fresh, element);
    state.messages[message.id] = fresh;
    state.lastId = Math.max(state.lastId, Number(message.id));
    state.lastOwnMessage = fresh;
    renderSeen();
  }

  function sendFile(file) {
    var limit = state.config.max_upload_bytes;
    if (limit && file.size > limit) {
      showAlert(t("errorTooLarge", { size: formatBytes(limit) }));
      return;
    }
    ensureSession().then(function (ok) {
      if (!ok) {
        return;
      }
      var form = new FormData();
      form.append("file", file, file.name);
      form.append("client_id", uuid4());
      var element = messageElement({ direction: "inbound", text: file.name }, true);
      ui.log.appendChild(element);
      showAlert("");
      api("POST", "attachments", form, true).then(
        function (message) {
          if (state.messages[message.id]) {
            element.remove();
          } else {
            addMessageReplacing(message, element);
          }
        },
        function (error) {
          element.remove();
          showAlert(errorText(error, "file"));
        }
      );
    });
  }

  function markRead() {
    if (!state.visitor || !state.lastId || document.visibilityState === "hidden") {
      return;
    }
    if (state.readSent >= state.lastId) {
      return;
    }
    state.readSent = state.lastId;
    if (!sendSocket({ type: "read", up_to: state.lastId })) {
      api("POST", "read", { up_to: state.lastId }).catch(function () {});
    }
  }

  // --- Continue by email ------------------------------------------------------------------------------------------
  function leaveWithEmail(email) {
    if (!isEmail(email)) {
      showAlert(t("invalidEmail"));
      ui.leaveEmail.focus();
      return;
    }
    var sessionReady = state.visitor || state.token ? ensureSession() : startSession({ email: email });
    sessionReady.then(function (ok) {
      if (!ok) {
        return;
      }
      api("POST", "leave", { email: email }).then(
        function () {
          showAlert("");
          showEmailForm(false);
          showNote(t("emailThanks", { email: email }));
          state.hasLeft = true;
          storage.set(LEFT_KEY, "1");
          // The visitor chose email: stop being "online" here, so the desk sends the next replies by email.
          disconnect();
          ui.textarea.focus();
        },
        function (error) { showAlert(errorText(error, "leave")); }
      );
    });
  }

  function reopenAfterLeave() {
    if (state.hasLeft) {
      state.hasLeft = false;
      storage.remove(LEFT_KEY);
      showNote("");
      connect();
    }
  }

  // --- Websocket --------------------------------------------------------------------------------------------------
  function connect() {
    if (!state.token || state.hasLeft) {
      return;
    }
    state.socketWanted = true;
    if (state.socket && state.socket.readyState <= 1) {
      return;
    }
    clearTimeout(state.reconnectTimer);
    var socket;
    try {
      socket = new WebSocket(WS_BASE + "?token=" + encodeURIComponent(state.token));
    } catch (error) {
      scheduleReconnect();
      return;
    }
    state.socket = socket;
    var wasReconnect = state.hadSocket;
    socket.onopen = function () {
      state.reconnectDelay = 1000;
      state.hadSocket = true;
      showNote(state.hasLeft ? ui.note.textContent : "");
      if (wasReconnect) {
        // Pushes sent while we were away are gone; the REST API has them all.
        loadMessages().catch(function () {});
      }
    };
    socket.onmessage = function (event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      handleEvent(data);
    };
    socket.onclose = function (event) {
      if (state.socket === socket) {
        state.socket = null;
      }
      if (event.code === 4403) {
        // Refused (origin or token): retrying would be refused again. Start a fresh session on the next action.
        state.visitor = null;
        state.socketWanted = false;
        return;
      }
      if (state.socketWanted) {
        scheduleReconnect();
      }
    };
  }

  function scheduleReconnect() {
    clearTimeout(state.reconnectTimer);
    if (state.hadSocket && state.isOpen) {
      showNote(t("reconnecting"));
    }
    var delay = state.reconnectDelay * (0.75 + Math.random() * 0.5); // jitter, so a restarted desk is not stampeded
    state.reconnectDelay = Math.min(state.reconnectDelay * 2, 30000);
    state.reconnectTimer = setTimeout(connect, delay);
  }

  function disconnect() {
    state.socketWanted = false;
    clearTimeout(state.reconnectTimer);
    if (state.socket) {
      state.socket.close(1000);
      state.socket = null;
    }
  }

  function sendSocket(payload) {
    if (state.socket && state.socket.readyState === 1) {
      state.socket.send(JSON.stringify(payload));
      return true;
    }
    return false;
  }

  function handleEvent(data) {
    if (data.type === "message") {
      addMessage(data.message, true);
    } else if (data.type === "typing" && data.who === "agent") {
      setTyping(data.is_typing ? data.name || t("agent") : null);
    } else if (data.type === "read" && data.who === "agent") {
      state.agentReadUpTo = Math.max(state.agentReadUpTo, Number(data.up_to) || 0);
      renderSeen();
    } else if (data.type === "presence") {
      state.agentsOnline = Boolean(data.agents_online);
      renderHeader();
      if (state.isOpen && !ui.composer.hidden && offersEmail() && !state.hasLeft && ui.emailForm.hidden) {
        showEmailForm(true, true);
      }
      ui.emailIntro.hidden = !offersEmail();
    }
  }

  function setTyping(name) {
    clearTimeout(state.typingHideTimer);
    ui.typing.textContent = name ? t("typing", { name: name }) : "";
    if (name) {
      // If the "stopped typing" event is lost, do not show the agent typing forever.
      state.typingHideTimer = setTimeout(function () { setTyping(null); }, 8000);
    }
  }

  function typingChanged() {
    var now = Date.now();
    if (ui.textarea.value && now - state.typingSentAt > 2500) {
      state.typingSentAt = now;
      sendSocket({ type: "typing", is_typing: true });
    }
    clearTimeout(state.typingStopTimer);
    state.typingStopTimer = setTimeout(function () { sendTyping(false); }, 4000);
  }

  function sendTyping(isTyping) {
    clearTimeout(state.typingStopTimer);
    if (!isTyping && state.typingSentAt) {
      state.typingSentAt = 0;
      sendSocket({ type: "typing", is_typing: false });
    }
  }

  // --- Start ------------------------------------------------------------------------------------------------------
  function start(config) {
    state.config = config;
    state.agentsOnline = Boolean(config.agents_online);
    applyTextOverrides(config.texts);
    var accent = safeColor(config.color);
    host.style.setProperty("--accent", accent);
    host.style.setProperty("--on-accent", textColorOn(accent));
    buildDom();
    renderHeader();
    if (config.greeting) {
      ui.greeting.textContent = config.greeting;
      ui.greeting.hidden = false;
    }
    document.body.appendChild(host);
    if (state.token) {
      // A returning visitor: show the history and the replies that came meanwhile (the websocket is opened too,
      // unless they chose to continue by email).
      startSession({});
    }
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && state.isOpen) {
        markRead();
      }
    });
    window.addEventListener("online", function () {
      if (state.socketWanted && !state.socket) {
        state.reconnectDelay = 1000;
        connect();
      }
    });
    hostOptions.open = function () { if (!state.isOpen) { setOpen(true); } };
    hostOptions.close = function () { if (state.isOpen) { setOpen(false); } };
    window.HelpdeskChat = hostOptions;
  }

  api("GET", "config").then(start, function (error) {
    // Not allowed here (origin not on the channel's list) or the desk is down: show nothing rather than a widget
    // that cannot work. The console says why, for whoever is embedding it.
    if (window.console) {
      window.console.warn("Helpdesk chat: not started (" + (error.status || "network error") + ").");
    }
  });
})();

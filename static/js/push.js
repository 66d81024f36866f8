// "Notify me when my turn is near" (Web Push, docs/operations.md): subscribes with the server's
// VAPID key and hands the subscription over for this token; push-sw.js shows what arrives.
(function () {
  "use strict";
  var root = document.getElementById("tracker"), code = root.getAttribute("data-code");
  var key = root.getAttribute("data-vapid"), section = document.getElementById("push");
  var button = document.getElementById("push-button"), note = document.getElementById("push-message");
  var stored = "opd.push." + code, SCOPE = "/t/", nav = navigator;
  var supported = "serviceWorker" in nav && "PushManager" in window && "Notification" in window;
  // iPhones deliver Web Push only to a page added to the home screen (iOS 16.4+).
  var apple = /iPhone|iPad|iPod/.test(nav.userAgent) || (/Macintosh/.test(nav.userAgent) && nav.maxTouchPoints > 1);
  var home = nav.standalone === true || matchMedia("(display-mode: standalone)").matches;
  var on = localStorage.getItem(stored) === "1", said = null, status = null, t = null;
  // A permission withdrawn in the browser's settings since: not "on" any more.
  if (supported && on && Notification.permission !== "granted") { on = false; localStorage.removeItem(stored); }

  function bytes(b64) {
    var raw = atob((b64 + "===".slice((b64.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, function (c) { return c.charCodeAt(0); });
  }
  function send(method, body) {
    return fetch("/api/v1/track/" + encodeURIComponent(code) + "/push-subscriptions", {
      method: method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (b) { if (!r.ok) { throw new Error((b.error || {}).message || r.status); } });
    });
  }
  function subscription() {
    return nav.serviceWorker.getRegistration(SCOPE).then(function (reg) { return reg && reg.pushManager.getSubscription(); });
  }
  function show() {
    if (!t) { return; }
    section.hidden = !(status === "BOOKED" || status === "CHECKED_IN" || status === "WAITING") || !key || (!supported && !apple);
    button.hidden = !supported;
    button.textContent = t(on ? "push_off" : "push_on");
    button.setAttribute("aria-pressed", String(on));
    window.opdText(note, !supported ? (home ? "" : t("push_ios")) : said ? t(said[0], { why: said[1] }) : "");
  }
  function turnOn() {
    return Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") { said = ["push_blocked"]; return; }
      return nav.serviceWorker.register("/push-sw.js", { scope: SCOPE }).then(function () { return nav.serviceWorker.ready; })
        .then(function (reg) {
          return reg.pushManager.getSubscription().then(function (old) {
            return old || reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(key) });
          });
        }).then(function (sub) { return send("POST", sub.toJSON()); })
        .then(function () { on = true; localStorage.setItem(stored, "1"); said = ["push_active"]; });
    });
  }
  function turnOff() {
    // The browser's subscription stays: another token on this phone may use it.
    return subscription().then(function (sub) { return sub && send("DELETE", { endpoint: sub.endpoint }); })
      .then(function () { on = false; localStorage.removeItem(stored); said = null; });
  }
  button.addEventListener("click", function () {
    button.disabled = true;
    (on ? turnOff() : turnOn()).catch(function (e) { said = ["push_failed", e.message || String(e)]; })
      .then(function () { button.disabled = false; show(); });
  });
  window.OpdPush = { render: function (s, translate) { status = s; t = translate; show(); } };
})();

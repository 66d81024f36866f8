// The patient's tracker: live position and ETA, the call, and check-in by geolocation.
(function () {
  "use strict";
  var root = document.getElementById("tracker");
  var code = root.getAttribute("data-code");
  // The patient's own choice on this phone, else the language they registered with.
  var chosen = localStorage.getItem("opd.lang");
  var lang = (chosen || root.getAttribute("data-lang")) === "hi" ? "hi" : "en";
  // The view as it was when the page was made: shown at once, WebSocket or not.
  var view = JSON.parse(root.getAttribute("data-view"));
  var T = {
    en: { your_token: "Your token", position: "Position", wait: "Expected wait", status: "Status",
          checkin: "I have arrived — check in", checkin_help: "When you reach the hospital, check in to join the queue.",
          go_now: "Please go to cabin {cabin} now", min: "min", now_serving: "Now serving: {token}",
          around: "around {time}", range: "in {low}–{high} min", not_today: "Likely not today — please ask at reception",
          BOOKED: "Booked — check in when you arrive", CHECKED_IN: "In the queue", WAITING: "Called — go to the cabin",
          IN_CONSULTATION: "With the doctor", COMPLETED: "Visit complete", NO_SHOW: "Marked absent — please see reception",
          CANCELLED: "Cancelled", RESCHEDULED: "Moved to another time", locating: "Finding your location…",
          outside: "You are {distance} m away. Check-in works within {radius} m of the hospital. Come closer, or ask at reception.",
          denied: "Location permission was refused. Allow location for this page, or check in at reception.",
          checked_in: "You are checked in.", toggle: "हिन्दी · Hindi", next_turn: "You are next",
          called_at: "Called at {time} — go to the cabin", updated: "updated {s} s ago",
          booked_for: "Booked for {time}", late: "I'll be late", cancel: "Cancel my token",
          late_how: "About how late?", cancel_sure: "Cancel your token? You will lose your place.",
          cancel_yes: "Yes, cancel", cancel_no: "No, keep it",
          late_noted: "Thank you — reception knows you will be about {m} min late. Your place is kept; if you are called before you are back, ask at reception.",
          failed: "That did not work: {why}",
          push_on: "Notify me when my turn is near", push_off: "Stop notifications",
          push_active: "This phone will be notified.",
          push_blocked: "Notifications are blocked in this browser's settings.",
          push_ios: "iPhone: Share → Add to Home Screen, then open it from there to be notified.",
          push_failed: "Could not turn on notifications: {why}" },
    hi: { your_token: "आपका टोकन", position: "क्रम", wait: "अनुमानित प्रतीक्षा", status: "स्थिति",
          checkin: "मैं पहुँच गया/गई — चेक-इन करें", checkin_help: "अस्पताल पहुँचकर कतार में शामिल होने के लिए चेक-इन करें।",
          go_now: "कृपया अभी केबिन {cabin} में जाएँ", min: "मिनट", now_serving: "अभी: {token}",
          around: "लगभग {time}", range: "{low}–{high} मिनट में", not_today: "शायद आज नहीं — कृपया रिसेप्शन पर पूछें",
          BOOKED: "बुक — पहुँचकर चेक-इन करें", CHECKED_IN: "कतार में", WAITING: "बुलाया गया — केबिन में जाएँ",
          IN_CONSULTATION: "डॉक्टर के पास", COMPLETED: "परामर्श पूरा", NO_SHOW: "अनुपस्थित — रिसेप्शन पर संपर्क करें",
          CANCELLED: "रद्द", RESCHEDULED: "दूसरे समय पर", locating: "आपकी लोकेशन देखी जा रही है…",
          outside: "आप अस्पताल से {distance} मीटर दूर हैं। चेक-इन {radius} मीटर के भीतर होता है। पास आएँ या रिसेप्शन पर पूछें।",
          denied: "लोकेशन की अनुमति नहीं मिली। अनुमति दें या रिसेप्शन पर चेक-इन करें।",
          checked_in: "आपका चेक-इन हो गया।", toggle: "English", next_turn: "अगला नंबर आपका है",
          called_at: "{time} पर बुलाया गया — केबिन में जाएँ", updated: "{s} सेकंड पहले अपडेट",
          booked_for: "{time} के लिए बुक", late: "मुझे देर होगी", cancel: "टोकन रद्द करें",
          late_how: "लगभग कितनी देर?", cancel_sure: "टोकन रद्द करें? आपकी जगह चली जाएगी।",
          cancel_yes: "हाँ, रद्द करें", cancel_no: "नहीं, रखें",
          late_noted: "धन्यवाद — रिसेप्शन को पता है कि आपको लगभग {m} मिनट की देर होगी। आपकी जगह बनी रहेगी; लौटने से पहले बुलाया जाए तो रिसेप्शन पर पूछें।",
          failed: "नहीं हो पाया: {why}",
          push_on: "मेरी बारी पास आने पर सूचना दें", push_off: "सूचनाएँ बंद करें",
          push_active: "इस फ़ोन पर सूचना आएगी।",
          push_blocked: "ब्राउज़र सेटिंग में सूचनाएँ बंद हैं।",
          push_ios: "iPhone: Share → Add to Home Screen, फिर वहाँ से खोलें।",
          push_failed: "सूचनाएँ चालू नहीं हो सकीं: {why}" }
  };
  function t(key, values) {
    var text = T[lang][key] || key;
    Object.keys(values || {}).forEach(function (k) { text = text.replace("{" + k + "}", values[k]); });
    return text;
  }
  function $(id) { return document.getElementById(id); }

  function render() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = t(el.getAttribute("data-i18n")); });
    $("lang").textContent = t("toggle");
    if (!view) { return; }
    window.opdText($("token-number"), view.token_number);
    window.opdText($("doctor"), view.doctor_name + (view.cabin_number ? " · Cabin " + view.cabin_number : "") + " · " + view.dept_name);
    window.opdText($("position"), view.position ? (view.position === 1 ? "1 · " + t("next_turn") : view.position) : "–");
    var eta = etaText();
    window.opdText($("eta"), eta.time);
    window.opdText($("eta-range"), eta.range);
    // A called patient sees when: a phone that was off the network during the call still knows
    // it came, and how long ago.
    window.opdText($("status"), view.status === "WAITING" && view.called_time
      ? t("called_at", { time: clockTime(new Date(view.called_time).getTime()) }) : t(view.status));
    var serving = view.now_serving && view.now_serving !== view.token_number ? t("now_serving", { token: view.now_serving }) : "";
    var booked = view.status === "BOOKED" && view.scheduled_time
      ? t("booked_for", { time: clockTime(new Date(view.scheduled_time).getTime()) }) : "";
    window.opdText($("serving"), [booked, serving].filter(Boolean).join(" · "));
    var called = view.status === "WAITING";
    $("call-now").hidden = !called;
    // A non-breaking hyphen keeps "D-602" on one line in the big call banner.
    if (called) { $("call-now").textContent = t("go_now", { cabin: (view.cabin_number || "").replace(/-/g, "\u2011") }); }
    $("check-in").hidden = view.status !== "BOOKED";
    $("self-service").hidden = view.status !== "BOOKED" && view.status !== "CHECKED_IN";
    root.className = "status-" + view.status.toLowerCase();
    if (window.OpdPush) { window.OpdPush.render(view.status, t); }
  }

  // The expected clock time, the range, and an honest "likely not today" (docs/eta.md). The shown
  // time moves only when the estimate moved by 3 minutes or more, so small jitters do not
  // make it flicker between neighbouring minutes.
  var shownAt = null;
  var SHOWN_MOVES_AT_MS = 3 * 60 * 1000;
  // Two lines: the clock time large, the range under it smaller, so "around 10:04 am" is read
  // at a glance on a 360 px phone and the range never breaks it apart.
  function etaText() {
    if (!view || view.status !== "CHECKED_IN" || view.eta_minutes == null) { shownAt = null; return { time: "–", range: "" }; }
    if (view.eta_beyond_shift) { return { time: "", range: t("not_today") }; }
    var expected = Date.now() + view.eta_minutes * 60000;
    if (shownAt === null || Math.abs(expected - shownAt) >= SHOWN_MOVES_AT_MS) { shownAt = expected; }
    var time = clockTime(shownAt);
    var low = view.eta_low_minutes != null ? view.eta_low_minutes : view.eta_minutes;
    var high = view.eta_high_minutes != null ? view.eta_high_minutes : view.eta_minutes;
    return { time: t("around", { time: time }), range: t("range", { low: low, high: high }) };
  }

  // The hospital's clock, whatever zone the phone is set to.
  var timeZone = root.getAttribute("data-timezone") || undefined;
  function clockTime(ms) {
    return new Date(ms).toLocaleTimeString(lang === "hi" ? "hi-IN" : "en-IN",
                                           { hour: "numeric", minute: "2-digit", timeZone: timeZone });
  }

  var lastCallKey = null;
  var updatedAt = Date.now();
  function accept(data) {
    var key = data.status === "WAITING" ? data.called_time + "|" + data.call_count : null;
    if (key && lastCallKey !== null && key !== lastCallKey && typeof navigator.vibrate === "function") {
      navigator.vibrate([400, 200, 400, 200, 400]);
    }
    lastCallKey = key || "";
    view = data;
    updatedAt = Date.now();
    render();
    showUpdated();
  }

  // Never only one socket: while the WebSocket is not live (a network or proxy that blocks it,
  // a server restarting), the page asks GET /api/v1/track/{code} itself, every 10 s at first
  // and backing off to a minute while that fails too, and says how old what it shows is.
  var POLL_FIRST_MS = 5000, POLL_MIN_MS = 10000, POLL_MAX_MS = 60000;
  var liveState = "connecting", pollTimer = null, pollDelay = POLL_MIN_MS;
  function schedulePoll(delay) {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, delay + Math.round(Math.random() * 1000));
  }
  function poll() {
    if (liveState === "live") { return; }
    fetch("/api/v1/track/" + encodeURIComponent(code), { cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (data) { if (liveState !== "live") { accept(data); } pollDelay = POLL_MIN_MS; })
      .catch(function () { pollDelay = Math.min(POLL_MAX_MS, pollDelay * 2); })
      .then(function () { if (liveState !== "live") { schedulePoll(pollDelay); } });
  }
  function showUpdated() {
    var seconds = Math.round((Date.now() - updatedAt) / 1000);
    window.opdText($("updated"), liveState === "live" ? "" : t("updated", { s: seconds }));
  }
  setInterval(showUpdated, 5000);
  schedulePoll(POLL_FIRST_MS);

  new window.OpdLive([root.getAttribute("data-topic")], function (topic, data) { accept(data); }, {
    onState: function (state) {
      var was = liveState;
      liveState = state;
      if (state === "live") { clearTimeout(pollTimer); } else if (was === "live") { schedulePoll(POLL_FIRST_MS); }
      showUpdated();
    }
  });

  $("lang").addEventListener("click", function () {
    lang = lang === "en" ? "hi" : "en";
    localStorage.setItem("opd.lang", lang);
    render();
  });

  // The patient's own actions, each with a second step: cancel (asks first) and "I'll be late"
  // (how late?). Both are recorded in the token's history; reception sees the second.
  function post(path, body) {
    return fetch("/api/v1/track/" + encodeURIComponent(code) + path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {})
    }).then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); });
  }
  function said(text) { window.opdText($("self-message"), text); }
  $("late-button").addEventListener("click", function () { $("late-pick").hidden = false; $("cancel-confirm").hidden = true; });
  $("cancel-button").addEventListener("click", function () { $("cancel-confirm").hidden = false; $("late-pick").hidden = true; });
  $("cancel-no").addEventListener("click", function () { $("cancel-confirm").hidden = true; });
  $("cancel-yes").addEventListener("click", function () {
    post("/cancel").then(function (res) {
      $("cancel-confirm").hidden = true;
      if (res.ok) { accept(res.body); said(""); } else { said(t("failed", { why: (res.body.error || {}).message || "" })); }
    }).catch(function (e) { said(t("failed", { why: e.message })); });
  });
  Array.prototype.forEach.call($("late-pick").querySelectorAll("button[data-minutes]"), function (button) {
    button.addEventListener("click", function () {
      var minutes = Number(button.getAttribute("data-minutes"));
      post("/late", { minutes: minutes }).then(function (res) {
        $("late-pick").hidden = true;
        said(res.ok ? t("late_noted", { m: minutes }) : t("failed", { why: (res.body.error || {}).message || "" }));
      }).catch(function (e) { said(t("failed", { why: e.message })); });
    });
  });

  $("check-in-button").addEventListener("click", function () {
    var message = $("check-in-message");
    if (!navigator.geolocation) { message.textContent = t("denied"); return; }
    message.textContent = t("locating");
    navigator.geolocation.getCurrentPosition(function (pos) {
      fetch("/api/v1/track/" + encodeURIComponent(code) + "/check-in", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ latitude: pos.coords.latitude, longitude: pos.coords.longitude })
      }).then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (res) {
          if (res.ok) { view = res.body; message.textContent = t("checked_in"); render(); return; }
          var err = res.body.error || {};
          message.textContent = err.code === "outside_geofence"
            ? t("outside", { distance: err.distance_m, radius: err.radius_m }) : (err.message || "error");
        }).catch(function (e) { message.textContent = e.message; });
    // maximumAge 0: a fresh fix every time, since the patient may have just walked closer.
    }, function () { message.textContent = t("denied"); }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 0 });
  });

  render();
})();

// The doctor's console: the current patient, the waiting list, and the actions with shortcuts.
(function () {
  "use strict";
  var UNDO_WINDOW_MS = 30000;   // how long "Undo" stays offered after an action
  var root = document.getElementById("console");
  var doctorId = root.getAttribute("data-doctor-id");
  var api = window.OpdApi;
  var state = null;             // latest doctor snapshot
  var selected = null;          // token_id of the selected waiting row
  var busy = false;
  var undo = null;              // {label, run}

  function age(dob) {
    if (!dob) { return ""; }
    var born = new Date(dob), now = new Date();
    var years = now.getFullYear() - born.getFullYear() - (now < new Date(now.getFullYear(), born.getMonth(), born.getDate()) ? 1 : 0);
    return years + " y";
  }

  function render() {
    var current = state.now_serving;
    root.querySelector("[data-empty]").hidden = !!current;
    root.querySelector("[data-patient]").hidden = !current;
    if (current) {
      window.opdText(root.querySelector('[data-field="token_number"]'), current.token_number);
      window.opdText(root.querySelector('[data-field="patient_name"]'), current.patient_name);
      window.opdText(root.querySelector('[data-field="age"]'), age(current.date_of_birth));
      window.opdText(root.querySelector('[data-field="visit_reason"]'), current.visit_reason || "");
      window.opdText(root.querySelector('[data-field="status"]'), current.status === "WAITING" ? "called" : "in consultation");
    }
    renderCalled(current);
    window.opdText(document.getElementById("cabin-label"), state.cabin_number ? "Cabin " + state.cabin_number : "no shift today");
    document.getElementById("break-banner").hidden = !state.paused;
    window.opdText(root.querySelector('[data-action="pause"]'), state.paused ? "Resume (P)" : "Pause (P)");
    window.opdText(document.getElementById("waiting-count"), "(" + state.waiting.length + ")");
    var body = document.getElementById("waiting");
    var rows = document.createDocumentFragment();
    state.waiting.forEach(function (w) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-token", w.token_id);
      if (w.token_id === selected) { tr.className = "selected"; }
      [w.position, w.token_number, w.patient_name, ["", "normal", "senior", "emergency"][w.priority], (w.eta_beyond_shift ? "after hours" : (w.eta_low_minutes != null ? w.eta_low_minutes + "–" + w.eta_high_minutes : w.eta_minutes) + " min")]
        .forEach(function (text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); });
      var td = document.createElement("td");
      var callNow = document.createElement("button");
      callNow.textContent = "Call now"; callNow.setAttribute("data-call", w.token_id);
      td.appendChild(callNow); tr.appendChild(td);
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
  }

  // How long ago the patient now called was called, and a prompt once that passes the hospital's
  // limit: a patient who never comes must not hold the queue unnoticed (issue 13).
  var notSeenMinutes = parseInt(root.getAttribute("data-not-seen-minutes"), 10) || 3;
  // The server's clock, not this computer's: a PC whose clock is off must not say "called 40 min ago".
  var clockSkewMs = (Date.parse(root.getAttribute("data-server-now")) || Date.now()) - Date.now();
  function renderCalled(current) {
    var called = current && current.status === "WAITING" && current.called_time;
    var minutes = called ? Math.max(0, Math.floor((Date.now() + clockSkewMs - Date.parse(current.called_time)) / 60000)) : 0;
    var times = current && current.call_count > 1 ? " · called " + current.call_count + " times" : "";
    window.opdText(root.querySelector('[data-field="called"]'),
      called ? (minutes < 1 ? "Called just now" : "Called " + minutes + " min ago") + times : "");
    var prompt = document.getElementById("not-seen");
    prompt.hidden = !(called && minutes >= notSeenMinutes);
    if (!prompt.hidden) {
      window.opdText(prompt.querySelector('[data-field="not-seen-text"]'),
        "Token " + current.token_number + " has not come in " + minutes + " min after the call.");
    }
  }
  setInterval(function () { if (state) { renderCalled(state.now_serving); } }, 15000);

  // undoFor(result) returns the function that reverses this action, if it can be reversed.
  function act(promise, undoLabel, undoFor) {
    busy = true;
    root.classList.add("busy");
    return promise.then(function (result) {
      if (undoFor) { offerUndo(undoLabel, undoFor(result)); }
      return result;
    }).catch(function () { /* the toast already says what went wrong */ })
      .then(function () { busy = false; root.classList.remove("busy"); });
  }

  function offerUndo(label, run) {
    var button = document.getElementById("undo");
    undo = { run: run };
    window.opdText(button.querySelector("[data-undo-label]"), label);
    button.hidden = false;
    clearTimeout(offerUndo.timer);
    offerUndo.timer = setTimeout(function () { button.hidden = true; undo = null; }, UNDO_WINDOW_MS);
  }

  function tokenAction(path, body) { return api.call("POST", "/api/v1/tokens/" + path, body || {}); }

  var actions = {
    "call-next": function () {
      return act(api.call("POST", "/api/v1/doctors/" + doctorId + "/call-next", {}), "call",
        function (token) { return requeue(token.token_id); });
    },
    recall: function (cur) { return cur && act(tokenAction(cur.token_id + "/recall")); },
    start: function (cur) { return cur && act(tokenAction(cur.token_id + "/start"), "start", again("/undo-start")); },
    complete: function (cur) { return cur && act(tokenAction(cur.token_id + "/complete"), "complete", again("/undo-complete")); },
    "no-show": function (cur) { return cur && act(tokenAction(cur.token_id + "/no-show"), "no-show", function (token) { return requeue(token.token_id); }); },
    pause: function () {
      var paused = state && state.paused;
      return act(api.call("POST", "/api/v1/doctors/" + doctorId + (paused ? "/resume" : "/pause"), {}));
    },
    transfer: function () {
      var target = document.getElementById("transfer-to").value;
      if (!selected) { api.toast("Select a waiting patient first.", "info"); return; }
      return act(tokenAction(selected + "/transfer", { to_doctor_id: target }));
    },
    undo: function () { if (undo) { var run = undo.run; undo = null; document.getElementById("undo").hidden = true; return act(run()); } }
  };

  function requeue(tokenId) { return function () { return tokenAction(tokenId + "/requeue"); }; }
  function again(suffix) { return function (token) { return function () { return tokenAction(token.token_id + suffix); }; }; }

  function run(name) {
    if (busy || !state) { return; }   // one action at a time: a double click never calls two patients
    var fn = actions[name];
    if (fn) { fn(state.now_serving); }
  }

  root.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    var row = event.target.closest("tr[data-token]");
    if (button && button.hasAttribute("data-call")) {
      var id = button.getAttribute("data-call");
      if (!busy) { act(tokenAction(id + "/call"), "call", function () { return requeue(id); }); }
      return;
    }
    if (button && button.hasAttribute("data-action")) { run(button.getAttribute("data-action")); return; }
    if (row) { selected = row.getAttribute("data-token"); render(); }
  });

  var KEYS = { n: "call-next", r: "recall", s: "start", c: "complete", x: "no-show", p: "pause", t: "transfer", u: "undo" };
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || /INPUT|SELECT|TEXTAREA/.test(event.target.tagName)) { return; }
    var name = KEYS[event.key.toLowerCase()];
    if (name) { event.preventDefault(); run(name); }
  });

  new window.OpdLive([root.getAttribute("data-topic")], function (topic, data) { state = data; render(); },
    { onError: function (msg) { api.toast(msg.message); } });
})();

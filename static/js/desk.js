// Reception desk, today's tokens: the list is rendered by the server (/reception/tokens) and
// reloaded whenever the hospital's operations topic moves (at most once a second), every 30 s
// as a fallback, and after each action. Actions go through the JSON API (same rules, same audit).
(function () {
  "use strict";
  var api = window.OpdApi;
  var root = document.getElementById("desk");
  if (!root) { return; }
  var filters = document.getElementById("desk-filters");
  var body = document.getElementById("desk-tokens");
  var pending = null, loading = false, again = false;

  function load() {
    if (loading) { again = true; return; }
    loading = true;
    var query = new URLSearchParams(new FormData(filters)).toString();
    fetch("/reception/tokens?" + query, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error("the list could not be loaded (" + r.status + ")"); } return r.text(); })
      .then(function (html) { body.innerHTML = html; root.setAttribute("data-loaded", String(Date.now())); })
      .catch(function (err) { api.toast(err.message); })
      .then(function () { loading = false; if (again) { again = false; load(); } });
  }
  function soon() { clearTimeout(pending); pending = setTimeout(load, 300); }

  filters.addEventListener("input", soon);
  filters.addEventListener("submit", function (e) { e.preventDefault(); load(); });

  function act(tokenId, path, payload, done) {
    return api.call("POST", "/api/v1/tokens/" + tokenId + "/" + path, payload || {})
      .then(function (t) { api.toast(done + " " + t.token_number + ".", "info"); load(); })
      .catch(function () { load(); });
  }

  body.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-act]");
    if (!button) { return; }
    var row = button.closest("tr[data-token-id]"), id = row.getAttribute("data-token-id");
    var kind = button.getAttribute("data-act"), reason;
    if (kind === "check-in") {
      reason = window.prompt("Checked in at the desk: reason (e.g. 'patient at the counter')", "patient at the counter");
      if (reason) { act(id, "check-in", { override_reason: reason }, "Checked in"); }
    } else if (kind === "cancel") {
      reason = window.prompt("Why is this token cancelled?");
      if (reason) { act(id, "cancel", { reason: reason }, "Cancelled"); }
    } else if (kind === "reschedule") {
      var at = row.querySelector("[data-reschedule-at]").value;
      if (!at) { api.toast("Choose the new date and time first."); return; }
      // The time typed is the hospital's, whatever zone the desk computer is set to.
      api.call("POST", "/api/v1/tokens/" + id + "/reschedule",
               { scheduled_time: api.localToIso(at, root.getAttribute("data-timezone")), reason: "rescheduled at reception" })
        .then(function (t) { api.toast("New token " + t.token_number + ". Print its slip from the list.", "info"); load(); })
        .catch(function () { load(); });
    } else if (kind === "requeue") {
      act(id, "requeue", { reason: "back in line at reception" }, "Back in line:");
    } else if (kind === "no-show") {
      act(id, "no-show", { reason: "marked absent at reception" }, "Marked absent:");
    }
  });
  body.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-transfer-to]");
    if (!select || !select.value) { return; }
    var id = select.closest("tr[data-token-id]").getAttribute("data-token-id");
    act(id, "transfer", { to_doctor_id: select.value, reason: "transferred at reception" }, "Transferred");
  });

  load();
  setInterval(load, 30000);
  // The issue form's doctor list says how many each doctor has waiting and whether they are
  // on shift, from the same live topic.
  var doctorSelect = document.querySelector('#issue-form select[name="doctor_id"]');
  function labelDoctors(data) {
    if (!doctorSelect || !data || !data.doctors) { return; }
    var byId = {};
    data.doctors.forEach(function (d) { byId[d.doctor_id] = d; });
    Array.prototype.forEach.call(doctorSelect.options, function (o) {
      var d = byId[o.value];
      if (!d) { return; }
      if (!o.hasAttribute("data-label")) { o.setAttribute("data-label", o.textContent); }
      var state = d.on_leave ? "on leave" : (d.current_status === "OFFLINE" ? "not on shift"
        : d.pending_tokens + " waiting" + (d.last_in_line_eta != null && d.pending_tokens ? ", last in line ~" + d.last_in_line_eta + " min" : ""));
      o.textContent = o.getAttribute("data-label") + " — " + state;
    });
  }

  new window.OpdLive([root.getAttribute("data-topic")], function (topic, data) { labelDoctors(data); soon(); },
    { onError: function (msg) { api.toast(msg.message); } });
})();

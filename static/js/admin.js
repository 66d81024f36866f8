// Admin page: forms post JSON to the API; the lists are htmx fragments refreshed afterwards.
(function () {
  "use strict";
  var api = window.OpdApi;

  function refresh(name) { if (window.htmx) { window.htmx.trigger(document.body, "refresh-" + name); } }

  function bind(formId, path, build, list, after) {
    var form = document.getElementById(formId);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      api.call("POST", path, build(form.elements)).then(function (result) {
        form.reset();
        refresh(list);
        if (after) { after(result); } else { api.toast("Saved.", "info"); }
      }).catch(function () { /* shown as a toast */ });
    });
  }

  bind("pair-form", "/api/v1/displays/pair", function (f) { return { code: f.code.value, label: f.label.value }; }, "displays");
  bind("user-form", "/api/v1/users", function (f) {
    return { username: f.username.value, password: f.password.value, role: f.role.value, doctor_id: f.doctor_id.value || null };
  }, "users");
  bind("key-form", "/api/v1/api-keys", function (f) { return { role: f.role.value, label: f.label.value }; }, "keys",
    function (result) {
      var el = document.getElementById("new-key");
      el.hidden = false;
      el.textContent = "New key (shown once, copy it now): " + result.key;
    });

  function createThenReload(formId, path, build, what) {
    var form = document.getElementById(formId);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      api.call("POST", path, build(form.elements)).then(function (made) {
        api.toast(what(made) + " added. Reloading…", "info");
        setTimeout(function () { window.location.reload(); }, 800);
      }).catch(function () { /* shown as a toast */ });
    });
  }
  createThenReload("department-form", "/api/v1/departments", function (f) {
    return { name: f.name.value.trim(), code: f.code.value.trim().toUpperCase(),
             avg_consultation_time: parseInt(f.avg_consultation_time.value, 10) };
  }, function (d) { return "Department " + d.code; });
  createThenReload("cabin-form", "/api/v1/cabins", function (f) {
    return { dept_id: f.dept_id.value, cabin_number: f.cabin_number.value.trim(),
             floor_number: f.floor_number.value === "" ? null : parseInt(f.floor_number.value, 10) };
  }, function (c) { return "Cabin " + c.cabin_number; });

  var doctorForm = document.getElementById("doctor-form");
  doctorForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var f = doctorForm.elements;
    api.call("POST", "/api/v1/doctors", {
      name: f.name.value.trim(), emp_code: f.emp_code.value.trim(), specialization: f.specialization.value.trim(),
      primary_dept_id: f.primary_dept_id.value, phone: f.phone.value.trim()
    }).then(function (d) {
      api.toast(d.name + " added. Reloading to put them on the roster…", "info");
      setTimeout(function () { window.location.reload(); }, 800);
    }).catch(function () { /* shown as a toast */ });
  });

  bind("shift-form", "/api/v1/shifts", function (f) {
    return { doctor_id: f.doctor_id.value, cabin_id: f.cabin_id.value, shift_date: f.shift_date.value,
             shift_start_time: f.shift_start_time.value, shift_end_time: f.shift_end_time.value };
  }, "shifts");
  var copyForm = document.getElementById("copy-week-form");
  copyForm.addEventListener("submit", function (event) {
    event.preventDefault();
    api.call("POST", "/api/v1/shifts/copy-week", { from_date: copyForm.elements.from_date.value, to_date: copyForm.elements.to_date.value })
      .then(function (r) {
        api.toast(r.copied + " shift(s) copied" + (r.skipped ? "; " + r.skipped + " skipped (already rostered or overlapping)" : "") + ".", "info");
        refresh("shifts");
      }).catch(function () { /* shown as a toast */ });
  });

  // The leave form posts to the doctor's own path; the times typed are the hospital's.
  var leaveForm = document.getElementById("leave-form");
  var timeZone = leaveForm.getAttribute("data-timezone");
  leaveForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var f = leaveForm.elements;
    api.call("POST", "/api/v1/doctors/" + f.doctor_id.value + "/leave", {
      exception_type: f.exception_type.value, start_datetime: api.localToIso(f.start.value, timeZone),
      end_datetime: api.localToIso(f.end.value, timeZone), reason: f.reason.value || undefined
    }).then(function (r) {
      api.toast(r.needs_approval && !r.approved_at ? "Recorded; it awaits approval below."
        : "Recorded: " + (r.affected_tokens_count || 0) + " patient(s) moved.", "info");
      refresh("leave");
    }).catch(function () { /* shown as a toast */ });
  });
  document.getElementById("leave").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-leave-approve]");
    if (!button) { return; }
    if (!window.confirm("Approve? " + button.getAttribute("data-affected") + " patient(s) move to colleagues now.")) { return; }
    api.call("POST", "/api/v1/leave/" + button.getAttribute("data-leave-approve") + "/approve", {})
      .then(function (r) { api.toast("Approved: " + (r.affected_tokens_count || 0) + " patient(s) moved.", "info"); refresh("leave"); })
      .catch(function () { /* shown as a toast */ });
  });
  document.getElementById("shifts").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-shift-cancel]");
    if (!button || !window.confirm("Cancel the shift of " + button.getAttribute("data-what") + "?")) { return; }
    api.call("PATCH", "/api/v1/shifts/" + button.getAttribute("data-shift-cancel"), { status: "CANCELLED" })
      .then(function () { refresh("shifts"); }).catch(function () { /* shown as a toast */ });
  });

  var hospitalForm = document.getElementById("hospital-form");
  hospitalForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var f = hospitalForm.elements;
    api.call("PATCH", "/api/v1/hospital", {
      name: f.name.value.trim(),
      geofence_radius: parseInt(f.geofence_radius.value, 10),
      board_shows_names: f.board_shows_names.checked,
      called_not_seen_minutes: parseInt(f.called_not_seen_minutes.value, 10),
      auto_absent_minutes: f.auto_absent_minutes.value === "" ? null : parseInt(f.auto_absent_minutes.value, 10)
    }).then(function () { api.toast("Settings saved.", "info"); }).catch(function () { /* shown as a toast */ });
  });

  // Staff: deactivate (ends their sessions), reactivate, reset a password, end every session.
  document.getElementById("users").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-user-act]");
    if (!button) { return; }
    var id = button.closest("li[data-user-id]").getAttribute("data-user-id");
    var who = button.getAttribute("data-what"), kind = button.getAttribute("data-user-act"), body;
    if (kind === "deactivate") {
      if (!window.confirm("Deactivate " + who + "? They are signed out everywhere at once.")) { return; }
      body = { is_active: false };
    } else if (kind === "activate") {
      body = { is_active: true };
    } else if (kind === "password") {
      var password = window.prompt("New password for " + who + " (at least 10 characters). Tell it to them in person.");
      if (!password) { return; }
      body = { password: password };
    } else {
      body = { logout_everywhere: true };
    }
    api.call("PATCH", "/api/v1/users/" + id, body).then(function () { api.toast("Done: " + who + ".", "info"); refresh("users"); })
      .catch(function () { /* shown as a toast */ });
  });

  document.getElementById("admin").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-revoke]");
    if (!button || !window.confirm("Revoke " + button.getAttribute("data-what") + "? This takes effect at once.")) { return; }
    api.call("POST", button.getAttribute("data-revoke"), {}).then(function () { refresh(button.getAttribute("data-list")); })
      .catch(function () { /* shown as a toast */ });
  });
  // "Change or close": choosing an item fills the form with its values; saving PATCHes only
  // what the form holds (numbers as numbers, an empty floor as none), then reloads.
  ["department-edit-form", "cabin-edit-form", "doctor-edit-form"].forEach(function (formId) {
    var form = document.getElementById(formId);
    if (!form) { return; }
    var picker = form.querySelector("select[data-prefill]");
    function prefill() {
      var option = picker.options[picker.selectedIndex];
      if (!option) { return; }
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || el === picker) { return; }
        var value = option.getAttribute("data-" + el.name);
        if (value !== null) { el.value = value; }
      });
    }
    picker.addEventListener("change", prefill);
    prefill();
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = {};
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || el === picker) { return; }
        if (el.type === "number") { body[el.name] = el.value === "" ? null : parseInt(el.value, 10); }
        else { body[el.name] = el.value.trim(); }
      });
      api.call("PATCH", form.getAttribute("data-path") + picker.value, body).then(function () {
        api.toast("Saved. Reloading…", "info");
        setTimeout(function () { window.location.reload(); }, 800);
      }).catch(function () { /* shown as a toast */ });
    });
  });
  // ABDM Scan & Share: the hospital's HIP id, its counters (added, closed, reopened).
  var abdmForm = document.getElementById("abdm-facility-form");
  abdmForm.addEventListener("submit", function (event) {
    event.preventDefault();
    api.call("PUT", "/api/v1/abdm", { hip_id: abdmForm.elements.hip_id.value.trim() || null })
      .then(function () { api.toast("Saved.", "info"); }).catch(function () { /* shown as a toast */ });
  });
  bind("abdm-counter-form", "/api/v1/abdm/counters", function (f) {
    return { context: f.context.value.trim(), label: f.label.value.trim(), dept_id: f.dept_id.value,
             doctor_id: f.doctor_id.value || null };
  }, "abdm_counters");
  document.getElementById("abdm-counters").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-counter-active]");
    if (!button) { return; }
    var open = button.getAttribute("data-counter-active") === "true";
    if (!open && !window.confirm("Close counter " + button.getAttribute("data-what") + "? Its QR code then gives patients no token.")) { return; }
    var id = button.closest("li[data-counter-id]").getAttribute("data-counter-id");
    api.call("PATCH", "/api/v1/abdm/counters/" + id, { active: open })
      .then(function () { refresh("abdm_counters"); }).catch(function () { /* shown as a toast */ });
  });
  // Messages in India: the hospital's DLT entity, and each registered text (PUT, checked by the
  // server: what DLT would refuse comes back as the toast).
  var dltForm = document.getElementById("dlt-form");
  dltForm.addEventListener("submit", function (event) {
    event.preventDefault();
    api.call("PATCH", "/api/v1/hospital", {
      dlt_pe_id: dltForm.elements.dlt_pe_id.value.trim() || null,
      sms_service_implicit: dltForm.elements.sms_service_implicit.checked
    }).then(function () { api.toast("Saved.", "info"); }).catch(function () { /* shown as a toast */ });
  });
  var messageForm = document.getElementById("message-form");
  messageForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var f = messageForm.elements, body = { body: f.body.value.trim() };
    ["dlt_template_id", "sms_header", "gateway_template_id", "wa_template_name", "wa_language"].forEach(function (name) {
      body[name] = f[name].value.trim() || null;
    });
    var path = "/api/v1/message-registrations/" + f.event_type.value + "/" + f.language.value + "/" + f.channel.value;
    api.call("PUT", path, body).then(function () {
      api.toast("Registered.", "info");
      refresh("messages");
    }).catch(function () { /* what DLT would refuse is shown as a toast */ });
  });
  document.getElementById("messages").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-message-delete]");
    if (!button) { return; }
    api.call("DELETE", "/api/v1/message-registrations/" + button.getAttribute("data-message-delete"))
      .then(function () { refresh("messages"); }).catch(function () { /* shown as a toast */ });
  });
})();

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
})();

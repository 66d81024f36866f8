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

  document.getElementById("admin").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-revoke]");
    if (!button || !window.confirm("Revoke " + button.getAttribute("data-what") + "? This takes effect at once.")) { return; }
    api.call("POST", button.getAttribute("data-revoke"), {}).then(function () { refresh(button.getAttribute("data-list")); })
      .catch(function () { /* shown as a toast */ });
  });
})();

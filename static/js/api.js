// Calls the JSON API from staff pages: session cookie + CSRF header; errors shown as a toast.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  function toast(message, kind) {
    var el = document.getElementById("toast");
    if (!el) { return; }
    el.textContent = message;
    el.className = "toast " + (kind || "error");
    el.hidden = false;
    clearTimeout(el._timer);
    el._timer = setTimeout(function () { el.hidden = true; }, 5000);
  }

  function call(method, path, body) {
    return fetch(path, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var message = (data && data.error && data.error.message) || ("request failed (" + response.status + ")");
          toast(message, "error");
          var err = new Error(message); err.status = response.status; err.data = data;
          throw err;
        }
        return data;
      });
    }, function (err) { toast("Network error: " + err.message, "error"); throw err; });
  }

  window.OpdApi = { call: call, toast: toast, csrf: csrf };
})();

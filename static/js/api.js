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

  // The form being submitted, so a refusal that names a field ("patient.phone") can point at the
  // box the receptionist typed in: captured before any page handler runs.
  var submitting = null;
  document.addEventListener("submit", function (event) { submitting = event.target; }, true);

  // The words of the label around a control, without the options of a select inside it.
  function labelText(control) {
    var label = control.labels && control.labels[0];
    if (!label) { return control.getAttribute("aria-label") || control.name; }
    var copy = label.cloneNode(true);
    copy.querySelectorAll("input, select, textarea").forEach(function (el) { el.remove(); });
    return copy.textContent.replace(/\s+/g, " ").trim();
  }

  // "patient.phone: '123' is not…" → "Phone: '123' is not…", the box outlined and focused.
  function pointAtField(form, error) {
    if (!form || !error || !error.field) { return null; }
    var last = error.field.split(".").pop().replace(/\[\d+\]$/, "");
    var control = form.querySelector('[data-field="' + error.field + '"]') ||
                  (form.elements && form.elements.namedItem(last));
    if (!control || !control.labels) { return null; }
    control.setAttribute("aria-invalid", "true");
    control.addEventListener("input", function clear() {
      control.removeAttribute("aria-invalid"); control.removeEventListener("input", clear);
    });
    control.focus();
    var rest = error.message.indexOf(error.field) === 0 ? error.message.slice(error.field.length) : " " + error.message;
    return labelText(control) + ": " + rest.replace(/^[:\s]+/, "");
  }

  // A 503 "busy" means the server had no database connection free and did nothing: the same
  // request is sent again after its Retry-After, twice at most (app/db/bounded.py).
  var BUSY_RETRIES = 2;
  function send(method, path, body, attempt) {
    return fetch(path, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      if (response.status !== 503 || attempt >= BUSY_RETRIES) { return response; }
      return response.clone().json().catch(function () { return {}; }).then(function (data) {
        if (!data.error || data.error.code !== "busy") { return response; }
        toast("The server is busy — trying again…", "info");
        var wait = 1000 * (Number(response.headers.get("Retry-After")) || 1);
        return new Promise(function (resolve) { setTimeout(resolve, wait); })
          .then(function () { return send(method, path, body, attempt + 1); });
      });
    });
  }

  // options.quiet: a refusal is not shown as a toast (the caller deals with it).
  function call(method, path, body, options) {
    var form = submitting;
    submitting = null;
    return send(method, path, body, 0).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var message = (data && data.error && data.error.message) || ("request failed (" + response.status + ")");
          message = pointAtField(form, data && data.error) || message;
          if (!(options && options.quiet)) { toast(message, "error"); }
          var err = new Error(message); err.status = response.status; err.data = data;
          throw err;
        }
        return data;
      });
    }, function (err) { toast("Network error: " + err.message, "error"); throw err; });
  }

  // "2026-12-05T09:30" typed in a datetime-local field means 09:30 at the hospital, whatever
  // zone this computer is set to: the ISO instant for it in the hospital's time zone.
  function zoneOffsetMs(ms, timeZone) {
    var parts = {};
    new Intl.DateTimeFormat("en-US", { timeZone: timeZone, hourCycle: "h23", year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(new Date(ms)).forEach(function (p) { parts[p.type] = p.value; });
    return Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second) - ms;
  }
  function localToIso(value, timeZone) {
    var asUtc = Date.parse(value + (value.length === 16 ? ":00Z" : "Z"));
    if (isNaN(asUtc)) { return null; }
    if (!timeZone) { return new Date(value).toISOString(); }
    var guess = asUtc - zoneOffsetMs(asUtc, timeZone);
    return new Date(asUtc - zoneOffsetMs(guess, timeZone)).toISOString();
  }

  window.OpdApi = { call: call, toast: toast, csrf: csrf, localToIso: localToIso };
})();

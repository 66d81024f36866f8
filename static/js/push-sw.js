// The tracker's service worker (served as /push-sw.js, scope /t/): shows the Web Push messages
// the server sends for a token (app/notify/web_push.py) and opens its tracker on a tap. One tag
// per token, so a newer message replaces the older one on the phone's screen.
self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { body: event.data ? event.data.text() : "" }; }
  event.waitUntil(self.registration.showNotification(data.title || "OPD", {
    body: data.body || "",
    tag: data.tag || "opd",
    renotify: true,
    requireInteraction: !!data.urgent,   // "go to cabin 4 now" stays until the patient sees it
    vibrate: data.urgent ? [300, 120, 300, 120, 300] : [200],
    data: { url: data.url || "/" }
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data || {}).url || "/";
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    for (var i = 0; i < windows.length; i++) {
      if (windows[i].url.indexOf(url) !== -1 && "focus" in windows[i]) { return windows[i].focus(); }
    }
    return self.clients.openWindow(url);
  }));
});

// OPD live updates: one WebSocket, several topics, automatic reconnect and resync.
// Protocol: docs/protocol.md. Used by every live page; no dependencies.
(function () {
  "use strict";
  var BACKOFF_MIN_MS = 500;      // first retry after a drop
  var BACKOFF_MAX_MS = 15000;    // never wait longer than this between tries
  var PING_EVERY_MS = 25000;     // app-level ping so a dead link is noticed even when idle
  var PONG_TIMEOUT_MS = 10000;

  function Live(topics, onSnapshot, options) {
    this.topics = topics.slice();
    this.onSnapshot = onSnapshot;
    this.onError = (options && options.onError) || function () {};
    this.onState = (options && options.onState) || function () {};
    this.seen = {};               // topic -> {epoch, version}
    this.attempt = 0;
    this.statusEls = document.querySelectorAll("[data-live-status]");
    this.connect();
  }

  Live.prototype.setStatus = function (state, text) {
    document.documentElement.setAttribute("data-live", state);
    for (var i = 0; i < this.statusEls.length; i++) { this.statusEls[i].textContent = text; }
    this.onState(state);
  };

  Live.prototype.connect = function () {
    var self = this;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/ws");
    this.ws = ws;
    ws.onopen = function () {
      self.attempt = 0;
      self.setStatus("live", "live");
      // Resync: tell the server what we have; it sends only what is newer.
      self.topics.forEach(function (topic) {
        var msg = { type: "subscribe", topic: topic };
        if (self.seen[topic]) { msg.epoch = self.seen[topic].epoch; msg.version = self.seen[topic].version; }
        ws.send(JSON.stringify(msg));
      });
      self.schedulePing();
    };
    ws.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      self.lastMessage = Date.now();
      if (msg.type === "snapshot") {
        self.seen[msg.topic] = { epoch: msg.epoch, version: msg.version };
        self.onSnapshot(msg.topic, msg.data, msg);
      } else if (msg.type === "error") {
        self.onError(msg);
      }
    };
    ws.onclose = function () { self.retry(); };
    ws.onerror = function () { try { ws.close(); } catch (e) { /* already closed */ } };
  };

  Live.prototype.schedulePing = function () {
    var self = this;
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(function () {
      if (!self.ws || self.ws.readyState !== 1) { return; }
      var sentAt = Date.now();
      self.ws.send('{"type":"ping"}');
      setTimeout(function () {
        if (self.ws && self.ws.readyState === 1 && (self.lastMessage || 0) < sentAt) { self.ws.close(); }
      }, PONG_TIMEOUT_MS);
      self.schedulePing();
    }, PING_EVERY_MS);
  };

  Live.prototype.retry = function () {
    var self = this;
    clearTimeout(this.pingTimer);
    this.attempt += 1;
    // Exponential backoff with full jitter, so a hall of screens does not reconnect in lockstep.
    var ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, this.attempt));
    var delay = Math.round(Math.random() * ceiling) + 250;
    this.setStatus("reconnecting", "reconnecting…");
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(function () { self.connect(); }, delay);
  };

  window.OpdLive = Live;

  window.opdText = function (el, text) { if (el) { el.textContent = text == null ? "" : String(text); } };
})();
